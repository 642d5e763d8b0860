"""OneOf: the output of whichever branch of an If/Elif/Else chain ran, as kfp's `dsl.OneOf`.

A chain with an Elif or Else is one group holding its branches (kfp's condition-branches), so
the step after it reads the one branch that ran, a value or an artifact, on every backend that
can choose at run time; SageMaker, whose ConditionSteps hand nothing on, refuses it in one
sentence.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.errors import CapabilityError, ValidationError
from stackhop.testing.kubernetes import FakeKubernetes

from conftest import emulated_stacks, k8s_stack

CHOOSING = """
from stackhop import Elif, Else, If, Input, Model, OneOf, Output, pipeline, step


@step
def measure(size: int) -> int:
    return size * 10


@step
def fit(kind: str, model: Output[Model]) -> str:
    with open(model.path, "w") as f:
        f.write(kind)
    return kind


@step
def report(kind: str, model: Input[Model]) -> str:
    return f"{kind}:{open(model.path).read()}"


@pipeline
def choose(size: int = 1):
    rows = measure(size=size)
    with If(rows.output > 100):
        big = fit(kind="forest")
    with Elif(rows.output > 10):
        mid = fit(kind="boosted")
    with Else():
        small = fit(kind="linear")
    report(kind=OneOf(big.output, mid.output, small.output),
           model=OneOf(big.outputs["model"], mid.outputs["model"], small.outputs["model"]))
"""

CASES = [(50, "forest:forest"), (5, "boosted:boosted"), (1, "linear:linear")]


@pytest.fixture
def choose(write_pipeline, write_config):
    """The chain, with a local default stack and a SageMaker, Vertex and KFP stack beside it."""
    write_config(emulated_stacks("oneof"))
    return write_pipeline(CHOOSING).choose


def chosen(handle) -> str:
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    ran = [k for k, s in handle.steps().items() if k.startswith("fit") and s.status == StepStatus.SUCCEEDED]
    assert len(ran) == 1
    return handle.artifact("report", "output").value


@pytest.mark.parametrize("size,expected", CASES)
def test_the_step_after_the_chain_reads_the_branch_that_ran_locally(choose, size, expected) -> None:
    assert chosen(stackhop.run(choose, parameters={"size": size}, cache=False, progress=False)) == expected


def test_the_chain_hands_on_its_branch_through_the_fake_kubernetes_server(choose, project, write_config) -> None:
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        handle = stackhop.run(choose, parameters={"size": 5}, cache=False, progress=False)
        assert handle.wait(timeout=180) == RunStatus.SUCCEEDED, handle.state().message
        assert chosen(handle) == "boosted:boosted"


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_the_compiled_pipeline_spec_picks_the_branch_that_ran(choose, gcs, stack) -> None:
    for size, expected in CASES[::2]:
        handle = stackhop.run(choose, stack, {"size": size}, emulate=True, cache=False, progress=False)
        assert chosen(handle) == expected


def test_sagemaker_refuses_oneof_naming_the_step_and_who_can(choose, aws) -> None:
    with pytest.raises(CapabilityError) as caught:
        stackhop.compile(choose, "sm")
    assert "step 'report' needs one_of" in str(caught.value) and "kfp, kubernetes, local, vertex" in str(caught.value)


KFP_CHOOSING = """
from kfp import dsl


@dsl.component(base_image="python:3.11")
def measure(size: int) -> int:
    return 1


@dsl.component(base_image="python:3.11")
def fit(kind: str, model: dsl.Output[dsl.Model]) -> str:
    return kind


@dsl.component(base_image="python:3.11")
def report(kind: str, model: dsl.Input[dsl.Model]) -> str:
    return kind


@dsl.pipeline
def choose(size: int = 1):
    rows = measure(size=size)
    with dsl.If(rows.output > 100):
        big = fit(kind="forest")
    with dsl.Elif(rows.output > 10):
        mid = fit(kind="boosted")
    with dsl.Else():
        small = fit(kind="linear")
    report(kind=dsl.OneOf(big.outputs["Output"], mid.outputs["Output"], small.outputs["Output"]),
           model=dsl.OneOf(big.outputs["model"], mid.outputs["model"], small.outputs["model"]))
"""


def _shape(spec: dict) -> dict:
    """The chain's structure with each group's number dropped (kfp counts groups differently) and `Output` spelled
    `output`, as stackhop names a return value."""
    text = json.dumps(spec).replace('-Output"', '-output"').replace('"Output"', '"output"')
    for old, new in (("condition-branches-1", "BRANCHES"), ("condition-2", "IF"), ("condition-3", "ELIF"),
                     ("condition-4", "ELSE")):
        text = text.replace(old, new)
    return json.loads(text)


def test_the_chain_and_its_oneof_have_kfps_own_shape(choose, write_pipeline, tmp_path) -> None:
    from kfp import compiler

    compiler.Compiler().compile(write_pipeline(KFP_CHOOSING).choose, str(tmp_path / "kfp.yaml"))
    theirs = _shape(yaml.safe_load((tmp_path / "kfp.yaml").read_text()))
    ours = json.loads(re.sub(r"condition-(\d+)", lambda m: f"condition-{int(m.group(1)) + 1}",
                             stackhop.compile(choose, "vertex").files["pipeline.json"].decode()))
    ours = _shape(ours)  # kfp numbers the chain's holder before its branches, we number each kind apart
    branches_theirs, branches_ours = theirs["components"]["comp-BRANCHES"], ours["components"]["comp-BRANCHES"]
    assert branches_ours["dag"]["outputs"] == branches_theirs["dag"]["outputs"]
    assert branches_ours["outputDefinitions"] == branches_theirs["outputDefinitions"]
    assert sorted(branches_ours["dag"]["tasks"]) == sorted(branches_theirs["dag"]["tasks"]) == ["ELIF", "ELSE", "IF"]
    for branch in ("IF", "ELIF", "ELSE"):
        assert ours["components"][f"comp-{branch}"]["dag"]["outputs"] == theirs["components"][f"comp-{branch}"]["dag"]["outputs"]
    report_theirs, report_ours = theirs["root"]["dag"]["tasks"]["report"], ours["root"]["dag"]["tasks"]["report"]
    assert report_ours["dependentTasks"] == report_theirs["dependentTasks"] == ["BRANCHES"]
    for kind in ("parameters", "artifacts"):
        assert {k: v for k, v in report_ours["inputs"][kind].items() if k in report_theirs["inputs"][kind]} == \
            report_theirs["inputs"][kind]
    from kfp.components import load_component_from_text

    assert load_component_from_text(stackhop.compile(choose, "vertex").files["pipeline.json"].decode()).name == "choose"


@pytest.mark.parametrize("body,fragment", [
    ("    report(kind=OneOf(big.output, mid.outputs['model']), model=big.outputs['model'])\n",
     "over outputs of different types (fit gives str, fit-2 gives Model)"),
    ("    report(kind=OneOf(rows.output, mid.output), model=mid.outputs['model'])\n",
     "but step 'measure' is in no branch of an If/Elif/Else chain"),
    ("    with If(rows.output > 1000):\n        other = fit(kind='x')\n    with Else():\n        fit(kind='y')\n"
     "    report(kind=OneOf(big.output, other.output), model=big.outputs['model'])\n",
     "whose outputs come from different If/Elif/Else chains"),
])
def test_a_oneof_that_cannot_choose_is_refused_in_one_sentence(write_pipeline, body, fragment) -> None:
    source = CHOOSING.split("    report(kind=OneOf(")[0] + body
    with pytest.raises(ValidationError) as caught:
        write_pipeline(source).choose.build()
    assert fragment in str(caught.value)
    assert str(caught.value).count(". ") == 0, "one sentence"


def test_a_oneof_inside_its_own_chain_is_refused(write_pipeline) -> None:
    source = CHOOSING.split("    report(kind=OneOf(")[0].replace(
        "        small = fit(kind=\"linear\")\n",
        "        small = fit(kind=\"linear\")\n        report(kind=OneOf(big.output, mid.output), model=small.outputs['model'])\n")
    with pytest.raises(ValidationError) as caught:
        write_pipeline(source).choose.build()
    assert "inside the If/Elif/Else chain it chooses from" in str(caught.value)


def test_a_pipeline_returns_the_branch_that_ran(write_pipeline, write_config, gcs) -> None:
    write_config(emulated_stacks("oneof-out"))
    source = CHOOSING.replace("    report(kind=OneOf(", "    return OneOf(big.outputs['model'], mid.outputs['model'], "
                                                         "small.outputs['model'])\n    report(kind=OneOf(")
    module = write_pipeline(source)
    for stack, emulate in (("laptop", False), ("kfp", True)):
        handle = stackhop.run(module.choose, stack, {"size": 5}, emulate=emulate, cache=False, progress=False)
        assert handle.status == RunStatus.SUCCEEDED, handle.state().message
        assert (handle.outputs["output"].step, handle.outputs["output"].type) == ("fit-2", "Model"), stack
    root = json.loads(stackhop.compile(module.choose, "vertex").files["pipeline.json"])["root"]
    assert root["dag"]["outputs"]["artifacts"]["output"] == {"artifactSelectors": [
        {"outputArtifactKey": "pipelinechannel--condition-branches-1-oneof-1", "producerSubtask": "condition-branches-1"}]}
