"""A local runner that dies: every reader says FAILED, nothing of the run lives on, nothing half-written shows."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.core.api import get_run, list_runs, project_store
from stackhop.testing.crashes import READERS, figures, kill_once, make_project, read

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="the specs look for processes in /proc")


# ----------------------------------------------------------------------------- killing a real runner


def test_killing_the_runner_at_random_points_always_ends_failed_with_nothing_left(project: Path) -> None:
    make_project(project)
    rng = random.Random(7)
    outcomes = [kill_once(project, rng, how="cli" if i % 2 else "api") for i in range(5)]
    for o in outcomes:
        assert o.ok, o
    assert figures(outcomes)["failed_within_5s"] == 5


def test_the_fork_server_and_the_steps_die_with_the_runner_before_anything_reads_the_run(project: Path) -> None:
    make_project(project)
    outcome = kill_once(project, _delay_into_a_step(), how="cli", wait_first=True)
    assert outcome.left_without_reader == [], outcome
    assert outcome.ok, outcome


def test_spawned_steps_and_what_they_started_die_with_the_runner_too(project: Path) -> None:
    make_project(project, launcher="spawn")
    outcome = kill_once(project, _delay_into_a_step(), how="api", wait_first=True)
    assert outcome.left_without_reader == [], outcome
    assert outcome.ok, outcome


def _delay_into_a_step() -> random.Random:
    """A generator whose first draw puts the kill in the middle of the first step."""

    class Fixed(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return 1.2

    return Fixed(0)


# ----------------------------------------------------------------------------- the rules, on a crafted run

ONE_STEP = """
    from stackhop import Dataset, Output, pipeline, step

    @step
    def make(data: Output[Dataset]) -> int:
        open(data.path, "w").write("complete")
        return 1

    @step
    def after(n: int) -> int:
        return n

    @pipeline
    def one():
        after(n=make().output)
"""


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _as_if_in_flight(handle: stackhop.RunHandle, pid: int, pid_start: int | None) -> Path:
    """Rewrite a finished run's records as a runner `pid` would have left them while `make` ran."""
    state_path = Path(handle.ref.data["state"].removeprefix("file://"))
    state = json.loads(state_path.read_text())
    state.update(status="RUNNING", native="running", pid=pid, pid_start=pid_start, finished_at=None)
    state["steps"]["make"].update(status="RUNNING", native="attempt 1", finished_at=None)
    state["steps"]["after"].update(status="PENDING", native="waiting", attempts=0, started_at=None, finished_at=None)
    state_path.write_text(json.dumps(state))
    handle._store.set_status(handle.run_id, "RUNNING")
    return state_path


def test_a_commit_the_runner_never_recorded_is_rolled_back(project: Path, write_pipeline) -> None:
    handle = stackhop.run(write_pipeline(ONE_STEP).one)
    assert handle.status == RunStatus.SUCCEEDED
    data = Path(handle.artifact("make", "data").uri.removeprefix("file://"))
    pid = _dead_pid()
    _as_if_in_flight(handle, pid, None)

    again = get_run(handle.run_id)
    assert again.status == RunStatus.FAILED
    assert again.state().message == f"the runner process (pid {pid}) died while step make ran."
    steps = again.steps()
    assert steps["make"].status == StepStatus.FAILED and steps["make"].native == "runner_died"
    assert steps["after"].status == StepStatus.SKIPPED
    assert again.artifacts() == []
    assert not data.exists()
    assert not (data.parent / "_stackhop" / "outputs.json").exists()


def test_temp_files_of_killed_writes_are_never_listed_and_are_removed_when_the_run_is_marked_failed(
        project: Path, write_pipeline) -> None:
    handle = stackhop.run(write_pipeline(ONE_STEP).one)
    step_dir = Path(handle.artifact("make", "data").uri.removeprefix("file://")).parent
    half_file = step_dir / "data.tmp-4242-0badc0de"
    half_file.write_text("compl")
    half_dir = step_dir / "model.tmp-4242-deadbeef"
    half_dir.mkdir()
    (half_dir / "weights").write_text("half")
    (step_dir / "_stackhop" / "outputs.json.tmp-4242-00000000").write_text("{")
    assert {(a.step, a.output) for a in get_run(handle.run_id).artifacts()} == {
        ("make", "data"), ("make", "output"), ("after", "output")}

    _as_if_in_flight(handle, _dead_pid(), None)
    assert get_run(handle.run_id).status == RunStatus.FAILED
    assert [p for p in step_dir.rglob("*") if ".tmp-" in p.name] == []


def test_a_reused_pid_is_not_mistaken_for_a_live_runner(project: Path, write_pipeline) -> None:
    from stackhop.adapters.local.lifeline import start_time

    handle = stackhop.run(write_pipeline(ONE_STEP).one)
    _as_if_in_flight(handle, os.getpid(), (start_time(os.getpid()) or 0) + 1)
    assert get_run(handle.run_id).status == RunStatus.FAILED


def test_a_run_whose_runner_lives_is_never_flipped(project: Path, write_pipeline) -> None:
    from stackhop.adapters.local.lifeline import start_time

    handle = stackhop.run(write_pipeline(ONE_STEP).one)
    _as_if_in_flight(handle, os.getpid(), start_time(os.getpid()))
    for reader in READERS:
        assert read(reader, handle.run_id)[0] == "RUNNING", reader
    assert project_store().get(handle.run_id).status == "RUNNING"


def test_runs_in_progress_read_as_running_and_then_succeed(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        import time
        from stackhop import pipeline, step

        @step
        def nap() -> int:
            time.sleep(1.0)
            return 1

        @pipeline
        def napping():
            nap().set_caching(False)
    """)
    handle = stackhop.run(module.napping, wait=False, progress=False)
    seen = {rec.status for rec in list_runs(project_store())}
    assert seen <= {"PENDING", "RUNNING"}
    assert get_run(handle.run_id).status in (RunStatus.PENDING, RunStatus.RUNNING)
    assert handle.wait(timeout=30) == RunStatus.SUCCEEDED
    assert [r.status for r in list_runs(project_store())] == ["SUCCEEDED"]


def test_a_runner_that_dies_before_writing_any_state_is_failed_with_its_log(project: Path, write_pipeline) -> None:
    handle = stackhop.run(write_pipeline(ONE_STEP).one)
    state_path = Path(handle.ref.data["state"].removeprefix("file://"))
    state_path.unlink()
    pid = _dead_pid()
    ref = dict(handle.ref.data, pid=pid, pid_start=None)
    handle._store.set_status(handle.run_id, "PENDING", backend_ref={"adapter": "local", **ref})
    [rec] = list_runs(project_store())
    assert rec.status == "FAILED"
    assert rec.message.startswith(f"the runner process (pid {pid}) died before it started the run; ")
