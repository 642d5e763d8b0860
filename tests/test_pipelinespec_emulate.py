"""`--emulate` on Vertex and Kubeflow stacks: the compiled PipelineSpec itself, run here against Cloud Storage.

The walker reads the document (tasks, trigger policies, iterators, placeholders), never the
IR, so what passes here is what the backends are handed. Cloud Storage is gcp-storage-emulator
on loopback, reached by gcsfs over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import stackhop
from stackhop.adapters.pipelinespec.cel import CelError, evaluate
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.runs import RunStatus, StepStatus

from conftest import EXAMPLES

STACKS = """
stacks:
  vertex:
    adapter: vertex
    artifact_root: gs://ml-artifacts/emulated
    defaults: {image: "python:3.11"}
    settings: {project: my-project}
  kfp:
    adapter: kfp
    artifact_root: gs://ml-artifacts/emulated-kfp
    defaults: {image: "python:3.11"}
    settings: {host: "http://kfp.invalid"}
"""

SINK = """
from stackhop import ExitHandler, If, ParallelFor, pipeline, step

@step
def flaky(marker: str) -> int:
    import os
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("the first attempt fails")
    return 7

@step
def shard(i: int, name: str) -> str:
    return f"{name}-{i}"

@step
def boom(n: int, fail_on: int) -> int:
    if n == fail_on:
        raise ValueError(f"n is {n}")
    return n

@step
def notify(report: str) -> None:
    import os
    with open(report, "w") as f:
        f.write(os.environ["STACKHOP_PIPELINE_TASK_FINAL_STATUS"])

@pipeline
def sink(report: str, marker: str, fail_on: int = 2,
         shards: list = [{"i": 1, "name": "a"}, {"i": 2, "name": "b"}]):
    cleanup = notify(report=report)
    with ExitHandler(cleanup):
        f = flaky(marker=marker).set_retry(2, backoff_seconds=0)
        with ParallelFor(shards) as item:
            shard(i=item.i, name=item["name"])
        with If(f.output > 5):
            with ParallelFor([1, 2, 3]) as n:
                boom(n=n, fail_on=fail_on)
"""


# ----------------------------------------------------------------------------- CEL


@pytest.mark.parametrize("expression, values, expected", [
    ("inputs.parameter_values['a'] == 'yes'", {"a": "yes"}, True),
    ("int(inputs.parameter_values['n']) > 3", {"n": 4.0}, True),
    ("inputs.parameter_values['x'] <= 0.5 && !(inputs.parameter_values['s'] in ['a', 'b'])", {"x": 0.5, "s": "c"}, True),
    ("(inputs.parameter_values['x'] > 1) || (inputs.parameter_values['b'] == true)", {"x": 0, "b": True}, True),
    ("inputs.parameter_values['s'] != 'it\\'s'", {"s": "it's"}, False),
])
def test_cel_conditions_evaluate_as_the_backends_do(expression, values, expected) -> None:
    assert evaluate(expression, values) is expected


@pytest.mark.parametrize("expression, values, message", [
    ("inputs.parameter_values['missing'] == 1", {}, "not an input of the task"),
    ("inputs.parameter_values['s'] > 1", {"s": "a"}, "no matching overload"),
    ("size(inputs.parameter_values['s']) > 1", {"s": "a"}, "unsupported 'size'"),
    ("inputs.parameter_values['n']", {"n": 1}, "is not a boolean"),
])
def test_cel_refuses_what_it_cannot_read_exactly(expression, values, message) -> None:
    with pytest.raises(CelError, match=message):
        evaluate(expression, values)


# ----------------------------------------------------------------------------- the example, end to end


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_the_training_example_runs_from_its_compiled_spec_deploy_taken_then_skipped(project, write_config, gcs,
                                                                                     stack) -> None:
    write_config(STACKS)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_pipeline.py")
    env = {**os.environ, "PYTHONPATH": ""}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stackhop.cli.main", "run", "training_pipeline.py", "--stack",
                               stack, "--emulate", *args], cwd=project, env=env, capture_output=True, text=True,
                              timeout=300)

    taken = run()
    assert taken.returncode == 0, taken.stderr
    assert "deploy_model: SUCCEEDED" in taken.stderr
    skipped = run("-p", "min_accuracy=0.999")
    assert skipped.returncode == 0, skipped.stderr
    assert "deploy_model: SKIPPED" in skipped.stderr

    runs = json.loads(subprocess.run([sys.executable, "-m", "stackhop.cli.main", "runs", "list", "--json"], cwd=project,
                                     env=env, capture_output=True, text=True, check=True).stdout)
    first = stackhop.get_run(runs[-1]["run_id"])
    model = first.artifact("train_model", "model")
    root = "gs://ml-artifacts/emulated" + ("" if stack == "vertex" else "-kfp")
    assert model.uri == f"{root}/training-pipeline/{first.run_id}/train_model/model"
    assert ArtifactStore.for_uri(model.uri).exists(model.uri)
    assert first.artifact("evaluate_model", "output").value == "yes"
    assert "accuracy=" in first.logs("evaluate_model")


# ----------------------------------------------------------------------------- control flow


def test_loops_retries_conditions_and_the_exit_handler_run_as_the_spec_says(project, write_config, write_pipeline, gcs,
                                                                           tmp_path) -> None:
    write_config(STACKS)
    module = write_pipeline(SINK)
    report, marker = tmp_path / "final-status.json", tmp_path / "marker"

    handle = stackhop.run(module.sink, "vertex", {"report": str(report), "marker": str(marker)}, emulate=True)

    steps = handle.steps()
    assert handle.status is RunStatus.FAILED
    assert steps["flaky"].status is StepStatus.SUCCEEDED and steps["flaky"].attempts == 2
    assert [handle.artifact(f"shard[{i}]", "output").value for i in (0, 1)] == ["a-1", "b-2"]
    assert [steps[f"boom[{i}]"].status for i in range(3)] == [StepStatus.SUCCEEDED, StepStatus.FAILED,
                                                              StepStatus.SUCCEEDED]
    assert "n is 2" in steps["boom[1]"].message
    assert steps["notify"].status is StepStatus.SUCCEEDED
    final = json.loads(report.read_text())
    assert final["state"] == "FAILED" and final["pipelineTaskName"] == "exit-handler-1"


def test_a_false_condition_skips_its_steps_and_the_run_succeeds(project, write_config, write_pipeline, gcs,
                                                                 tmp_path) -> None:
    write_config(STACKS)
    module = write_pipeline(SINK.replace("f.output > 5", "f.output > 50"))
    marker = tmp_path / "marker"
    marker.touch()

    handle = stackhop.run(module.sink, "kfp", {"report": str(tmp_path / "r.json"), "marker": str(marker)}, emulate=True)

    assert handle.status is RunStatus.SUCCEEDED
    assert handle.steps()["flaky"].attempts == 1
    assert [handle.steps()[f"boom[{i}]"].status for i in range(3)] == [StepStatus.SKIPPED] * 3
    assert json.loads((tmp_path / "r.json").read_text())["state"] == "SUCCEEDED"
