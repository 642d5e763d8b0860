"""`ParallelFor(config.lrs)`: an inner loop over a list held in each item of the loop around it.

kfp writes it as a loop over a `-subvar-` channel of the outer item; every backend that runs
the core scheduler expands it per outer item; SageMaker unrolls it when the outer list is static.
"""

from __future__ import annotations

import json

import pytest

import stackhop
from stackhop.core.runs import RunStatus, StepStatus
from stackhop.errors import StackhopError
from stackhop.testing.kubernetes import FakeKubernetes

from conftest import emulated_stacks, k8s_stack, output_of

GRID = """
from stackhop import Collected, ParallelFor, pipeline, step


@step
def train(lr: float, name: str) -> str:
    return f"{name}@{lr}"


@step
def summary(runs: list[str]) -> str:
    return ",".join(runs)


@pipeline
def grid(configs: list = [{"name": "small", "lrs": [0.1, 0.2]}, {"name": "large", "lrs": [0.3]}]):
    with ParallelFor(configs) as config:
        with ParallelFor(config.lrs) as lr:
            trained = train(lr=lr, name=config.name)
    summary(runs=Collected(trained.output))


@pipeline
def fixed_grid():
    with ParallelFor([{"name": "small", "lrs": [0.1, 0.2]}, {"name": "large", "lrs": [0.3]}]) as config:
        with ParallelFor(config.lrs) as lr:
            trained = train(lr=lr, name=config.name)
    summary(runs=Collected(trained.output))
"""

RESULT = "small@0.1,small@0.2,large@0.3"


@pytest.fixture
def module(write_pipeline, write_config):
    write_config(emulated_stacks("subvar"))
    return write_pipeline(GRID)



def test_each_config_trains_at_every_rate_it_lists(module) -> None:
    handle = stackhop.run(module.grid, cache=False, progress=False)

    assert output_of(handle, "summary") == RESULT
    assert [k for k in handle.steps() if k.startswith("train")] == ["train[0][0]", "train[0][1]", "train[1][0]"]
    assert handle.artifact("train[1][0]", "output").value == "large@0.3"


def test_the_rates_come_from_the_configs_the_run_was_given(module) -> None:
    configs = [{"name": "tiny", "lrs": [0.5, 0.6, 0.7]}]
    handle = stackhop.run(module.grid, parameters={"configs": configs}, cache=False, progress=False)
    assert output_of(handle, "summary") == "tiny@0.5,tiny@0.6,tiny@0.7"


def test_the_inner_loop_runs_through_the_fake_kubernetes_server(module, project, write_config) -> None:
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        handle = stackhop.run(module.grid, cache=False, progress=False)
        assert handle.wait(timeout=240) == RunStatus.SUCCEEDED, handle.state().message
        assert output_of(handle, "summary") == RESULT
        jobs = [j["metadata"]["annotations"].get("stackhop.dev/step-name") for j in kube.objects("Job")]
        assert jobs.count("train") == 3


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_the_inner_loop_runs_from_its_compiled_pipeline_spec(module, gcs, stack) -> None:
    handle = stackhop.run(module.grid, stack, emulate=True, cache=False, progress=False)
    assert output_of(handle, "summary") == RESULT


KFP_GRID = """
from typing import Dict, List

from kfp import dsl


@dsl.component(base_image="python:3.11")
def train(lr: float, name: str) -> str:
    return f"{name}@{lr}"


@dsl.pipeline
def grid(configs: List[Dict] = [{"name": "small", "lrs": [0.1, 0.2]}, {"name": "large", "lrs": [0.3]}]):
    with dsl.ParallelFor(configs) as config:
        with dsl.ParallelFor(config.lrs) as lr:
            train(lr=lr, name=config.name)
"""


def test_the_inner_loop_has_kfps_own_shape(module, write_pipeline, tmp_path) -> None:
    """The loop task and its channels equal kfp 2.17's. kfp types the `-subvar-` channels STRING where they hold a
    list and a float, and hands `name=config.name` to the inner task as the constant "configs-loop-item" (a kfp
    bug); there stackhop passes the field and types what it knows."""
    import yaml
    from kfp import compiler

    compiler.Compiler().compile(write_pipeline(KFP_GRID).grid, str(tmp_path / "kfp.yaml"))
    theirs = yaml.safe_load((tmp_path / "kfp.yaml").read_text())
    ours = json.loads(stackhop.compile(module.grid, "vertex").files["pipeline.json"])

    def loop(doc: dict) -> dict:
        task = doc["components"]["comp-for-loop-1"]["dag"]["tasks"]["for-loop-2"]
        params = {k: v for k, v in task["inputs"]["parameters"].items() if "stackhop_" not in k}
        return {"parameterIterator": task["parameterIterator"], "inputs": params}

    assert loop(ours) == loop(theirs)
    assert ours["root"]["dag"]["tasks"]["for-loop-1"]["parameterIterator"] == \
        theirs["root"]["dag"]["tasks"]["for-loop-1"]["parameterIterator"]
    inner = ours["components"]["comp-for-loop-2"]["inputDefinitions"]["parameters"]
    assert inner.keys() - {"pipelinechannel--stackhop_code"} == \
        theirs["components"]["comp-for-loop-2"]["inputDefinitions"]["parameters"].keys()
    assert inner["pipelinechannel--configs-loop-item-subvar-lrs"] == {"parameterType": "LIST"}
    name = ours["components"]["comp-for-loop-2"]["dag"]["tasks"]["train"]["inputs"]["parameters"]["name"]
    assert name == {"componentInputParameter": "pipelinechannel--configs-loop-item",
                    "parameterExpressionSelector": 'parseJson(string_value)["name"]'}


def test_sagemaker_unrolls_an_inner_loop_whose_outer_list_is_static(module, aws) -> None:
    definition = json.loads(stackhop.compile(module.fixed_grid, "sm").files["sagemaker-pipeline.json"])
    assert sum(1 for s in definition["Steps"] if s["Name"].startswith("train")) == 3
    handle = stackhop.run(module.fixed_grid, "sm", emulate=True, cache=False, progress=False)
    assert output_of(handle, "summary") == RESULT


def test_sagemaker_refuses_an_inner_loop_over_a_list_parameters_items(module, aws) -> None:
    with pytest.raises(StackhopError) as caught:
        stackhop.compile(module.grid, "sm")
    assert "loops over parameter 'configs', a list only known at run time" in str(caught.value)


@pytest.mark.parametrize("body, fragment", [
    ("""
    with ParallelFor([{"name": "a", "lrs": 0.1}]) as config:
        with ParallelFor(config.lrs) as lr:
            show(x=lr)
""", "field 'lrs' of the item of for-1, but item {'name': 'a', 'lrs': 0.1} holds float, not a list"),
    ("""
    with ParallelFor([{"name": "a"}]) as config:
        pass
    with ParallelFor(config.lrs) as lr:
        show(x=lr)
""", "a loop it is not inside"),
])
def test_a_loop_over_no_list_of_an_outer_item_is_refused_in_one_sentence(write_pipeline, body, fragment) -> None:
    source = f"""
from stackhop import ParallelFor, pipeline, step


@step
def show(x: float) -> None:
    print(x)


@pipeline
def bad():
{body}
"""
    with pytest.raises(StackhopError) as caught:
        write_pipeline(source).bad.build()
    assert fragment in str(caught.value)
    assert str(caught.value).count(". ") == 0, "one sentence"


def test_an_item_without_a_list_at_run_time_fails_that_loop_in_one_sentence(module) -> None:
    configs = [{"name": "ok", "lrs": [0.1]}, {"name": "broken", "lrs": "0.2"}]
    handle = stackhop.run(module.grid, parameters={"configs": configs}, cache=False, progress=False)

    assert handle.status is RunStatus.FAILED
    steps = handle.steps()
    assert steps["train[0][0]"].status is StepStatus.SUCCEEDED
    broken = steps["train[1][*]"]
    assert broken.status is StepStatus.FAILED
    assert "field 'lrs' of the item of for-1, which holds str \"0.2\"" in broken.message
    assert steps["summary"].status is StepStatus.SKIPPED
