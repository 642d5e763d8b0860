"""If / Elif / Else, as kfp users write them: exactly one branch of a chain runs, on every backend.

Each Elif or Else is a condition of its own (the earlier branches negated, and its own), as kfp
writes them for its backend, so local, Kubernetes, SageMaker and PipelineSpec all run them with
the conditions they already have.
"""

from __future__ import annotations

import pytest

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.errors import PipelineDefinitionError
from stackhop.testing.kubernetes import FakeKubernetes

from conftest import emulated_stacks, k8s_stack

DEPLOY = """
from stackhop import Elif, Else, If, pipeline, step


@step
def evaluate(accuracy: float) -> float:
    return accuracy


@step
def deploy(where: str) -> str:
    return where


@pipeline
def release(accuracy: float = 0.5, production: float = 0.9, staging: float = 0.7):
    score = evaluate(accuracy=accuracy)
    with If(score.output >= production):
        deploy(where="production").set_name("to-production")
    with Elif(score.output >= staging):
        deploy(where="staging").set_name("to-staging")
    with Else():
        deploy(where="nowhere").set_name("hold")
"""

BRANCHES = ("to-production", "to-staging", "hold")
STACKS = emulated_stacks("branches")
CASES = [(0.95, "to-production"), (0.8, "to-staging"), (0.1, "hold")]


def ran(handle) -> list[str]:
    steps = handle.steps()
    assert all(steps[b].status in (StepStatus.SUCCEEDED, StepStatus.SKIPPED) for b in BRANCHES)
    return [b for b in BRANCHES if steps[b].status == StepStatus.SUCCEEDED]


@pytest.fixture
def release(write_pipeline, write_config):
    write_config(STACKS)
    return write_pipeline(DEPLOY).release


@pytest.mark.parametrize("accuracy,branch", CASES)
def test_exactly_the_first_branch_that_holds_runs_locally(release, accuracy, branch) -> None:
    handle = stackhop.run(release, parameters={"accuracy": accuracy}, cache=False)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert ran(handle) == [branch]


def test_the_chain_runs_through_the_fake_kubernetes_server(release, project, write_config) -> None:
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        for accuracy, branch in CASES[1:]:
            handle = stackhop.run(release, parameters={"accuracy": accuracy}, cache=False)
            assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
            assert ran(handle) == [branch]


def test_the_chain_runs_from_its_compiled_sagemaker_definition(release, aws) -> None:
    for accuracy, branch in CASES:
        handle = stackhop.run(release, "sm", {"accuracy": accuracy}, emulate=True, cache=False, progress=False)
        assert handle.status == RunStatus.SUCCEEDED, handle.state().message
        assert ran(handle) == [branch]


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_the_chain_runs_from_its_compiled_pipeline_spec(release, gcs, stack) -> None:
    for accuracy, branch in CASES[::2]:
        handle = stackhop.run(release, stack, {"accuracy": accuracy}, emulate=True, cache=False, progress=False)
        assert handle.status == RunStatus.SUCCEEDED, handle.state().message
        assert ran(handle) == [branch]


def test_an_elif_is_the_earlier_branches_negated_and_its_own_condition(release) -> None:
    ir = release.build()
    conditions = [g.condition for g in ir.groups if g.kind == "condition"]
    from stackhop.core.ir import describe_expr

    assert [describe_expr(c) for c in conditions] == [
        "evaluate.output >= params.production",
        "(not (evaluate.output >= params.production)) and (evaluate.output >= params.staging)",
        "(not (evaluate.output >= params.production)) and (not (evaluate.output >= params.staging))",
    ]


@pytest.mark.parametrize("body,fragment", [
    ("    with Else():\n        one()\n", "Else must come right after a `with If(...)` or `with Elif(...)` block"),
    ("    with If(x.output > 1):\n        one()\n    one()\n    with Elif(x.output > 0):\n        one()\n",
     "with no step in between"),
    ("    with If(x.output > 1):\n        one()\n    with Else():\n        one()\n    with Else():\n        one()\n",
     "Else cannot follow an Else block"),
])
def test_a_branch_out_of_place_is_refused_in_one_sentence(write_pipeline, body, fragment) -> None:
    module = write_pipeline(
        "from stackhop import Elif, Else, If, pipeline, step\n\n@step\ndef one() -> int:\n    return 1\n\n"
        "@pipeline\ndef misplaced():\n    x = one()\n" + body)
    with pytest.raises(PipelineDefinitionError) as caught:
        module.misplaced.build()
    assert fragment in str(caught.value)
    assert str(caught.value).count(". ") == 0, "one sentence"
