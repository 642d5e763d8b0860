"""`Collected` of a step under an `If` inside its loop: the list holds the iterations that ran, in order.

kfp compiles it (the condition DAG re-exports the output, the loop DAG gathers it) and its
driver leaves out the iterations whose condition was false; the core scheduler and the
PipelineSpec emulator do the same. SageMaker refuses it in one sentence: a step there cannot
read the properties of a step its ConditionStep skipped.
"""

from __future__ import annotations

import json

import pytest

import stackhop
from stackhop.core.runs import RunStatus, StepStatus
from stackhop.errors import StackhopError
from stackhop.testing.kubernetes import FakeKubernetes

from conftest import emulated_stacks, k8s_stack, output_of

SOURCE = """
from stackhop import Collected, Dataset, If, Input, Output, ParallelFor, pipeline, step


@step
def measure(shard: int) -> float:
    return shard / 10


@step
def keep(shard: int, score: float, part: Output[Dataset]) -> float:
    with open(part.path, "w") as f:
        f.write(f"shard {shard}")
    return score


@step
def report(scores: list[float], parts: Input[list[Dataset]]) -> str:
    texts = []
    for p in parts:
        with open(p.path) as f:
            texts.append(f.read())
    return f"{scores}|{texts}"


@pipeline
def filtered(cutoff: float = 0.15, shards: list = [1, 2, 3, 4]):
    with ParallelFor(shards) as shard:
        m = measure(shard=shard)
        with If(m.output > cutoff):
            kept = keep(shard=shard, score=m.output)
    report(scores=Collected(kept.output), parts=Collected(kept.outputs["part"]))
"""

KEPT = "[0.2, 0.3, 0.4]|['shard 2', 'shard 3', 'shard 4']"


@pytest.fixture
def module(write_pipeline, write_config):
    write_config(emulated_stacks("collected-if"))
    return write_pipeline(SOURCE)



def test_the_list_holds_the_iterations_whose_if_held_in_order(module) -> None:
    handle = stackhop.run(module.filtered, cache=False, progress=False)

    assert output_of(handle, "report") == KEPT
    assert handle.steps()["keep[0]"].status is StepStatus.SKIPPED
    assert handle.steps()["report"].status is StepStatus.SUCCEEDED


def test_when_no_iteration_holds_the_step_gets_empty_lists(module) -> None:
    handle = stackhop.run(module.filtered, parameters={"cutoff": 1.0}, cache=False, progress=False)
    assert output_of(handle, "report") == "[]|[]"


def test_a_failed_iteration_still_skips_the_collecting_step(write_pipeline, write_config) -> None:
    write_config(emulated_stacks("collected-if"))
    module = write_pipeline(SOURCE.replace("    return shard / 10", "    if shard == 3:\n        raise ValueError('bad shard')\n"
                                                                 "    return shard / 10"))
    handle = stackhop.run(module.filtered, cache=False, progress=False)

    assert handle.status is RunStatus.FAILED
    assert handle.steps()["keep[2]"].native == "upstream_failed"
    assert handle.steps()["report"].status is StepStatus.SKIPPED


def test_it_runs_through_the_fake_kubernetes_server(module, project, write_config) -> None:
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        handle = stackhop.run(module.filtered, cache=False, progress=False)
        assert handle.wait(timeout=240) == RunStatus.SUCCEEDED, handle.state().message
        assert output_of(handle, "report") == KEPT


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_it_runs_from_the_compiled_pipeline_spec(module, gcs, stack) -> None:
    handle = stackhop.run(module.filtered, stack, emulate=True, cache=False, progress=False)
    assert output_of(handle, "report") == KEPT


KFP_SOURCE = """
from typing import List

from kfp import dsl


@dsl.component(base_image="python:3.11")
def measure(shard: int) -> float:
    return shard / 10


@dsl.component(base_image="python:3.11")
def keep(shard: int, score: float, part: dsl.Output[dsl.Dataset]) -> float:
    return score


@dsl.component(base_image="python:3.11")
def report(scores: List[float], parts: dsl.Input[List[dsl.Dataset]]) -> str:
    return ""


@dsl.pipeline
def filtered(cutoff: float = 0.15, shards: List[int] = [1, 2, 3, 4]):
    with dsl.ParallelFor(shards) as shard:
        m = measure(shard=shard)
        with dsl.If(m.output > cutoff):
            kept = keep(shard=shard, score=m.output)
    report(scores=dsl.Collected(kept.outputs["Output"]), parts=dsl.Collected(kept.outputs["part"]))
"""


def test_the_condition_and_loop_dags_hand_the_list_up_as_kfp_compiles_them(module, write_pipeline, tmp_path) -> None:
    import yaml
    from kfp import compiler

    compiler.Compiler().compile(write_pipeline(KFP_SOURCE).filtered, str(tmp_path / "kfp.yaml"))
    theirs = json.loads(json.dumps(yaml.safe_load((tmp_path / "kfp.yaml").read_text())).replace("-Output", "-output")
                        .replace('"Output"', '"output"'))
    ours = json.loads(stackhop.compile(module.filtered, "vertex").files["pipeline.json"])

    def hand_up(doc: dict, comp: str) -> tuple[dict, dict]:
        c = doc["components"][comp]
        outputs = {kind: {k: v for k, v in sel.items() if "stackhop" not in k} for kind, sel in c["dag"]["outputs"].items()}
        defs = {kind: {k: v for k, v in d.items() if "stackhop" not in k} for kind, d in c["outputDefinitions"].items()}
        return outputs, defs

    (their_if,) = [c for c in theirs["components"] if c.startswith("comp-condition-")]
    (our_if,) = [c for c in ours["components"] if c.startswith("comp-condition-")]
    ours = json.loads(json.dumps(ours).replace(our_if.removeprefix("comp-"), their_if.removeprefix("comp-")))
    for comp in (their_if, "comp-for-loop-1"):  # kfp numbers groups across kinds (condition-2), stackhop per kind
        assert hand_up(ours, comp) == hand_up(theirs, comp), comp


def test_sagemaker_refuses_it_in_one_sentence_naming_the_step_and_who_can(write_pipeline, write_config, aws) -> None:
    write_config(emulated_stacks("collected-if"))
    unrolled = write_pipeline(SOURCE.replace("ParallelFor(shards)", "ParallelFor([1, 2, 3, 4])")).filtered
    with pytest.raises(StackhopError) as caught:
        stackhop.compile(unrolled, "sm")
    message = str(caught.value)
    assert "step 'report' collects keep.output, which runs under an If inside its loop" in message
    assert "kfp, kubernetes, local or vertex" in message
    assert message.rstrip(".").count(". ") == 0
