"""`--emulate` is a run like any other: the compiled document's commands, scheduled by the core scheduler.

Every emulating adapter (SageMaker against moto's S3, Vertex and Kubeflow against the Cloud
Storage emulator) gets what a local run gets: independent steps at once, a run that can be
watched while it runs and cancelled, and the document's own conditions, checked against the
pipeline's so a compiler that translated one wrongly fails the step that it would mislead.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import stackhop
from stackhop.core.runs import RunStatus, StepStatus

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"

STACKS = f"""
    stacks:
      sagemaker:
        adapter: sagemaker
        artifact_root: s3://ml-artifacts/emulation
        defaults: {{image: "img:1"}}
        settings: {{role_arn: "{ROLE}"}}
      vertex:
        adapter: vertex
        artifact_root: gs://ml-artifacts/emulation-vertex
        defaults: {{image: "python:3.11"}}
        settings: {{project: my-project}}
      kfp:
        adapter: kfp
        artifact_root: gs://ml-artifacts/emulation-kfp
        defaults: {{image: "python:3.11"}}
        settings: {{host: "http://kfp.invalid"}}
"""

PAIR = """
    from stackhop import pipeline, step

    @step
    def meet(me: str, other: str, folder: str) -> str:
        import os, time
        open(os.path.join(folder, me), "w").close()
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(folder, other)):
            if time.time() > deadline:
                raise RuntimeError(f"{other} never started while {me} was running")
            time.sleep(0.05)
        return me

    @step
    def join(a: str, b: str) -> str:
        return a + b

    @pipeline
    def pair(folder: str):
        a = meet(me="a", other="b", folder=folder)
        b = meet(me="b", other="a", folder=folder)
        join(a=a.output, b=b.output)
"""

HELD = """
    from stackhop import pipeline, step

    @step
    def held(folder: str) -> int:
        import os, time
        open(os.path.join(folder, "started"), "w").close()
        while not os.path.exists(os.path.join(folder, "go")):
            time.sleep(0.05)
        return 1

    @step
    def after(x: int) -> int:
        return x + 1

    @pipeline
    def hold(folder: str):
        after(x=held(folder=folder).output)
"""

GATE = """
    from stackhop import If, pipeline, step

    @step
    def score() -> float:
        return 0.9

    @step
    def ship(s: float) -> str:
        return "shipped"

    @pipeline
    def gate(threshold: float = 0.5):
        s = score()
        with If(s.output > threshold):
            ship(s=s.output)
"""


@pytest.fixture
def stacks(project: Path, write_config, aws, gcs) -> Path:
    write_config(STACKS)
    return project


def _until(predicate, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, "the condition never came true"
        time.sleep(0.05)


BACKENDS = ["sagemaker", "vertex", "kfp"]


@pytest.mark.parametrize("stack", BACKENDS)
def test_independent_steps_of_an_emulated_run_run_at_the_same_time(stacks, write_pipeline, stack) -> None:
    pair = write_pipeline(PAIR).pair
    handle = stackhop.run(pair, stack, {"folder": str(stacks)}, emulate=True, progress=False)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("join", "output").load() == "ab"
    assert handle.ref.adapter == "local" and handle.ref.data["emulates"] == stack


@pytest.mark.parametrize("stack", BACKENDS)
def test_an_emulated_run_can_be_watched_while_it_runs_and_its_steps_logs_read(stacks, write_pipeline, stack) -> None:
    hold = write_pipeline(HELD).hold
    seen: list[dict[str, str]] = []
    handle = stackhop.run(hold, stack, {"folder": str(stacks)}, emulate=True, wait=False, progress=False)
    _until(lambda: (stacks / "started").exists())
    _until(lambda: handle.steps()["held"].status == StepStatus.RUNNING)
    assert handle.status == RunStatus.RUNNING
    assert handle.steps()["after"].status == StepStatus.PENDING
    (stacks / "go").touch()
    status = handle.wait(timeout=120, on_update=lambda s: seen.append({k: v.status.value for k, v in s.steps.items()}))
    assert status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("after", "output").load() == 2
    assert {"held": "SUCCEEDED", "after": "SUCCEEDED"} == seen[-1]
    assert handle.logs("held") is not None


@pytest.mark.parametrize("stack", BACKENDS)
def test_cancelling_an_emulated_run_stops_its_running_step_and_skips_the_rest(stacks, write_pipeline, stack) -> None:
    hold = write_pipeline(HELD).hold
    handle = stackhop.run(hold, stack, {"folder": str(stacks)}, emulate=True, wait=False, progress=False)
    _until(lambda: (stacks / "started").exists())
    handle.cancel()
    assert handle.wait(timeout=60) == RunStatus.CANCELLED
    steps = handle.steps()
    assert steps["held"].status == StepStatus.CANCELLED
    assert steps["after"].status in (StepStatus.CANCELLED, StepStatus.SKIPPED)
    record = stackhop.get_run(handle.run_id)
    assert record.status == RunStatus.CANCELLED


@pytest.mark.parametrize("stack", BACKENDS)
def test_an_emulated_run_follows_the_documents_condition(stacks, write_pipeline, stack) -> None:
    gate = write_pipeline(GATE).gate
    shipped = stackhop.run(gate, stack, emulate=True, progress=False)
    assert shipped.steps()["ship"].status == StepStatus.SUCCEEDED
    held = stackhop.run(gate, stack, {"threshold": 0.95}, emulate=True, progress=False)
    assert held.status == RunStatus.SUCCEEDED
    assert held.steps()["ship"].status == StepStatus.SKIPPED


def _invert_sagemaker(files: dict[str, bytes]) -> dict[str, bytes]:
    doc = json.loads(files["sagemaker-pipeline.json"])
    for s in doc["Steps"]:
        if s["Type"] == "Condition":
            s["Arguments"]["Conditions"] = [{"Type": "Not", "Expression": c} for c in s["Arguments"]["Conditions"]]
    return {**files, "sagemaker-pipeline.json": json.dumps(doc).encode()}


def _invert_vertex(files: dict[str, bytes]) -> dict[str, bytes]:
    doc = json.loads(files["pipeline.json"])
    for task in doc["root"]["dag"]["tasks"].values():
        cond = task.get("triggerPolicy", {}).get("condition")
        if cond:
            task["triggerPolicy"]["condition"] = f"!({cond})"
    return {**files, "pipeline.json": json.dumps(doc).encode()}


@pytest.mark.parametrize("stack,invert", [("sagemaker", _invert_sagemaker), ("vertex", _invert_vertex)])
def test_a_document_whose_condition_disagrees_with_the_pipeline_fails_the_step_it_would_mislead(
        stacks, write_pipeline, stack, invert, monkeypatch) -> None:
    from stackhop.core.adapter import Compiled
    from stackhop.core.plugins import adapter_class

    cls = adapter_class(stack, where="test")
    compile_ = cls.compile

    def miscompiled(self, ir):
        good = compile_(self, ir)
        return Compiled(good.adapter, invert(good.files), good.notes)

    monkeypatch.setattr(cls, "compile", miscompiled)
    gate = write_pipeline(GATE).gate
    handle = stackhop.run(gate, stack, emulate=True, progress=False)
    assert handle.status == RunStatus.FAILED
    ship = handle.steps()["ship"]
    assert ship.status == StepStatus.FAILED
    assert "compiled the condition wrongly" in ship.message and "skips step ship" in ship.message


def test_a_stack_whose_adapter_cannot_emulate_says_so_before_recording_a_run(project, write_config, write_pipeline,
                                                                             aws) -> None:
    write_config("""
        stacks:
          k8s:
            adapter: kubernetes
            artifact_root: s3://ml-artifacts/k8s
            defaults: {image: "python:3.11"}
    """)
    from stackhop.core.api import project_store
    from stackhop.errors import StackhopError

    single = write_pipeline("""
        from stackhop import pipeline, step

        @step
        def one() -> int:
            return 1

        @pipeline
        def single():
            one()
    """).single
    with pytest.raises(StackhopError, match=r"stack 'k8s': adapter 'kubernetes' cannot emulate"):
        stackhop.run(single, "k8s", emulate=True, progress=False)
    assert project_store().list() == []


def test_this_python_stands_in_for_the_images_python_and_other_commands_run_as_named() -> None:
    import sys

    from stackhop.core.emulation import this_python

    assert this_python(["python3", "-m", "stackhop.entrypoint"]) == [sys.executable, "-m", "stackhop.entrypoint"]
    assert this_python(["/usr/local/bin/python3.11", "x.py"])[0] == sys.executable
    assert this_python(["busybox", "echo", "hi"]) == ["busybox", "echo", "hi"]
    assert this_python(["python3-config"]) == ["python3-config"]


LIMITS = """
    from stackhop import pipeline, step

    @step(timeout=1)
    def sleepy() -> int:
        import time
        time.sleep(60)
        return 1

    @step(retries=2)
    def flaky(marker: str) -> int:
        import os
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("the first attempt fails")
        return 7

    @pipeline
    def limits(marker: str):
        sleepy()
        flaky(marker=marker)
"""


@pytest.mark.parametrize("stack", ["sagemaker", "vertex"])
def test_an_emulated_step_is_killed_at_its_timeout_and_a_flaky_one_retried(stacks, write_pipeline, stack) -> None:
    limits = write_pipeline(LIMITS).limits
    handle = stackhop.run(limits, stack, {"marker": str(stacks / "marker")}, emulate=True, progress=False)
    steps = handle.steps()
    assert steps["sleepy"].status == StepStatus.FAILED and "timed out after 1s" in steps["sleepy"].message
    assert steps["flaky"].status == StepStatus.SUCCEEDED and steps["flaky"].attempts == 2
    assert handle.artifact("flaky", "output").load() == 7
    assert handle.status == RunStatus.FAILED


def test_an_emulated_run_whose_runner_is_killed_is_failed_by_the_next_reader(stacks, write_pipeline) -> None:
    import os
    import signal

    hold = write_pipeline(HELD).hold
    handle = stackhop.run(hold, "sagemaker", {"folder": str(stacks)}, emulate=True, wait=False, progress=False)
    _until(lambda: (stacks / "started").exists())
    os.kill(handle.ref.data["pid"], signal.SIGKILL)
    _until(lambda: handle.status.terminal)
    assert handle.status == RunStatus.FAILED
    assert "died while step held ran" in handle.state().message
    assert stackhop.get_run(handle.run_id).status == RunStatus.FAILED
