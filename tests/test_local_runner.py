"""The local backend, end to end: every step a real process, real artifacts on disk."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.core.api import get_run
from stackhop.core.store import RunStore
from stackhop.errors import PipelineDefinitionError

from conftest import EXAMPLES


LAUNCHERS = pytest.mark.parametrize("launcher", ["fork", "spawn"])


def statuses(handle: stackhop.RunHandle) -> dict[str, str]:
    return {k: v.status.value for k, v in handle.steps().items()}


def local_stack(write_config, **settings: object) -> None:
    import yaml

    write_config(yaml.safe_dump({"default_stack": "dev", "stacks": {"dev": {"adapter": "local", "settings": settings}}}))


# ----------------------------------------------------------------------------- the example


def test_example_training_pipeline_deploys_and_skips_deploy_at_a_high_threshold(project: Path, write_pipeline) -> None:
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    module = write_pipeline((project / "training_example.py").read_text(), name="training_example")

    deployed = stackhop.run(module.training_pipeline)
    assert deployed.status == RunStatus.SUCCEEDED, deployed.state().message
    assert statuses(deployed)["deploy_model"] == "SUCCEEDED"
    accuracy = deployed.artifact("evaluate_model", "metrics").load()["accuracy"]
    assert 0.85 <= accuracy < 0.999
    assert (project / ".stackhop/deployments/production/model.pkl").exists()
    assert deployed.artifact("train_model", "model").uri.startswith((project / ".stackhop/artifacts").as_uri())

    skipped = stackhop.run(module.training_pipeline, parameters={"min_accuracy": 0.999})
    assert skipped.status == RunStatus.SUCCEEDED
    steps = skipped.steps()
    assert steps["deploy_model"].status == StepStatus.SKIPPED
    assert steps["deploy_model"].native == "condition_false"
    assert steps["evaluate_model"].status == StepStatus.SUCCEEDED  # its input changed, so it re-ran
    assert steps["train_model"].status == StepStatus.CACHED
    assert skipped.artifact("evaluate_model", "output").load() == "no"


# ----------------------------------------------------------------------------- parallelism

TIMED = """
    import time, json, os
    from stackhop import step, pipeline

    @step
    def work(i: int) -> str:
        start = time.time()
        time.sleep(0.6)
        return json.dumps([start, time.time(), os.getpid()])

    @pipeline
    def fan(n: int = 4):
        for i in range(4):
            work(i=i).set_caching(False)
"""


def _intervals(handle: stackhop.RunHandle) -> list[tuple[float, float]]:
    return [tuple(json.loads(a.value)[:2]) for a in handle.artifacts() if a.output == "output"]


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


@LAUNCHERS
def test_independent_steps_run_in_parallel_up_to_max_workers(project: Path, write_pipeline, write_config, launcher: str) -> None:
    module = write_pipeline(TIMED)
    local_stack(write_config, max_workers=2, launcher=launcher)
    handle = stackhop.run(module.fan)
    assert handle.status == RunStatus.SUCCEEDED
    intervals = _intervals(handle)
    assert len(intervals) == 4
    assert _max_overlap(intervals) == 2
    pids = {json.loads(a.value)[2] for a in handle.artifacts() if a.output == "output"}
    assert len(pids) == 4, "every step runs in its own process"
    assert os.getpid() not in pids


def test_one_worker_runs_steps_one_at_a_time(project: Path, write_pipeline, write_config) -> None:
    module = write_pipeline(TIMED)
    local_stack(write_config, max_workers=1)
    handle = stackhop.run(module.fan)
    assert handle.status == RunStatus.SUCCEEDED
    assert _max_overlap(_intervals(handle)) == 1


# ----------------------------------------------------------------------------- caching

CACHED = """
    from stackhop import step, pipeline, Output, Dataset, Input

    @step
    def make(n: int, data: Output[Dataset]) -> None:
        open(data.path, "w").write("x" * n)

    @step
    def measure(data: Input[Dataset]) -> int:
        return len(open(data.path).read())

    @pipeline
    def cached(n: int = 3):
        made = make(n=n)
        measure(data=made.outputs["data"])
"""


def test_a_rerun_with_the_same_inputs_is_served_from_cache(project: Path, write_pipeline) -> None:
    module = write_pipeline(CACHED)
    first = stackhop.run(module.cached)
    second = stackhop.run(module.cached)
    assert statuses(first) == {"make": "SUCCEEDED", "measure": "SUCCEEDED"}
    assert statuses(second) == {"make": "CACHED", "measure": "CACHED"}
    assert second.artifact("measure", "output").load() == 3
    assert second.artifact("make", "data").uri == first.artifact("make", "data").uri


def test_changing_a_parameter_reruns_only_what_depends_on_it(project: Path, write_pipeline) -> None:
    module = write_pipeline(CACHED)
    stackhop.run(module.cached)
    changed = stackhop.run(module.cached, parameters={"n": 5})
    assert statuses(changed) == {"make": "SUCCEEDED", "measure": "SUCCEEDED"}
    assert changed.artifact("measure", "output").load() == 5


def test_editing_a_step_invalidates_its_cache_entry(project: Path, write_pipeline) -> None:
    stackhop.run(write_pipeline(CACHED, name="editable").cached)
    edited = write_pipeline(CACHED.replace("return len(open(data.path).read())", "return 2 * len(open(data.path).read())"), name="editable")
    handle = stackhop.run(edited.cached)
    assert statuses(handle) == {"make": "CACHED", "measure": "SUCCEEDED"}
    assert handle.artifact("measure", "output").load() == 6


def test_caching_can_be_disabled_per_run_and_per_step(project: Path, write_pipeline) -> None:
    module = write_pipeline(CACHED)
    stackhop.run(module.cached)
    assert statuses(stackhop.run(module.cached, cache=False)) == {"make": "SUCCEEDED", "measure": "SUCCEEDED"}
    no_cache = write_pipeline(CACHED.replace('measure(data=made.outputs["data"])', 'measure(data=made.outputs["data"]).set_caching(False)'))
    stackhop.run(no_cache.cached)
    assert statuses(stackhop.run(no_cache.cached)) == {"make": "CACHED", "measure": "SUCCEEDED"}


def test_a_cache_entry_whose_artifact_was_deleted_is_a_miss(project: Path, write_pipeline) -> None:
    module = write_pipeline(CACHED)
    first = stackhop.run(module.cached)
    os.remove(first.artifact("make", "data").uri.removeprefix("file://"))
    assert statuses(stackhop.run(module.cached))["make"] == "SUCCEEDED"


# ----------------------------------------------------------------------------- failures, retries

FLAKY = """
    import os
    from stackhop import step, pipeline, Output, Dataset, Input

    @step
    def produce(data: Output[Dataset]) -> None:
        open(data.path, "w").write("precious")

    @step
    def flaky(data: Input[Dataset], fail_times: int, counter: str) -> str:
        n = int(open(counter).read()) if os.path.exists(counter) else 0
        open(counter, "w").write(str(n + 1))
        if n < fail_times:
            raise RuntimeError(f"boom on attempt {n + 1}")
        return "ok"

    @step
    def after(x: str) -> str:
        return x + "!"

    @pipeline
    def flaky_pipe(fail_times: int = 2, counter: str = "counter.txt"):
        made = produce()
        f = flaky(data=made.outputs["data"], fail_times=fail_times, counter=counter)
        f.set_retry(max_retries=2, backoff_seconds=0.3, backoff_factor=2).set_caching(False)
        after(x=f.output)
"""


@LAUNCHERS
def test_a_failing_step_is_retried_with_backoff_until_it_succeeds(project: Path, write_pipeline, write_config, launcher: str) -> None:
    local_stack(write_config, launcher=launcher)
    module = write_pipeline(FLAKY)
    started = time.time()
    handle = stackhop.run(module.flaky_pipe)
    assert handle.status == RunStatus.SUCCEEDED
    step = handle.steps()["flaky"]
    assert step.attempts == 3
    assert time.time() - started >= 0.3 + 0.6, "backoff of 0.3s then 0.6s"
    log = handle.logs("flaky")
    assert "boom on attempt 1" in log and "boom on attempt 2" in log and "===== attempt 3 =====" in log


def test_a_step_failing_every_retry_fails_the_run_and_keeps_finished_work(project: Path, write_pipeline) -> None:
    module = write_pipeline(FLAKY)
    handle = stackhop.run(module.flaky_pipe, parameters={"fail_times": 10})
    assert handle.status == RunStatus.FAILED
    steps = handle.steps()
    assert steps["flaky"].status == StepStatus.FAILED and steps["flaky"].attempts == 3
    assert "boom on attempt 3" in steps["flaky"].message
    assert steps["after"].status == StepStatus.SKIPPED and steps["after"].native == "upstream_failed"
    assert "flaky" in handle.state().message
    produced = handle.artifact("produce", "data")
    assert produced.load() == b"precious"
    record = get_run(handle.run_id)._store.get(handle.run_id)
    assert record.status == "FAILED" and record.finished_at is not None
    run_dir = Path(produced.uri.removeprefix("file://")).parent.parent
    assert not (run_dir / "flaky" / "_stackhop" / "outputs.json").exists()


def test_an_output_the_step_did_not_write_fails_the_step_with_its_name(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline, Output, Model

        @step
        def lazy(model: Output[Model]) -> None:
            pass

        @pipeline
        def lazy_pipe():
            lazy()
    """)
    handle = stackhop.run(module.lazy_pipe)
    assert handle.status == RunStatus.FAILED
    assert "did not write output 'model'" in handle.steps()["lazy"].message


# ----------------------------------------------------------------------------- timeouts and cancel

SLEEPY = """
    import os, subprocess, sys, time
    from stackhop import step, pipeline

    @step
    def sleepy(seconds: float, pidfile: str) -> None:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open(pidfile, "w").write(f"{os.getpid()} {child.pid}")
        time.sleep(seconds)

    @step
    def never(x: int = 0) -> None:
        pass

    @pipeline
    def sleepy_pipe(seconds: float = 30.0, pidfile: str = "pids.txt"):
        s = sleepy(seconds=seconds, pidfile=pidfile).set_caching(False)
        never().after(s)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def _wait_for(path: Path, seconds: float = 20) -> str:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


@LAUNCHERS
def test_a_step_over_its_timeout_is_killed_with_everything_it_started(project: Path, write_pipeline, write_config, launcher: str) -> None:
    local_stack(write_config, kill_grace_seconds=0.5, launcher=launcher)
    module = write_pipeline(SLEEPY.replace(".set_caching(False)", ".set_caching(False).set_timeout(1.5)"))
    started = time.time()
    handle = stackhop.run(module.sleepy_pipe)
    assert time.time() - started < 15
    step = handle.steps()["sleepy"]
    assert handle.status == RunStatus.FAILED
    assert step.status == StepStatus.FAILED and step.native == "timeout"
    assert "timed out after 1.5s" in step.message
    pids = [int(p) for p in (project / "pids.txt").read_text().split()]
    time.sleep(0.3)
    assert not any(_alive(p) for p in pids), "the step's process group is gone"


@LAUNCHERS
def test_cancel_stops_running_steps_and_marks_the_rest_cancelled(project: Path, write_pipeline, write_config, launcher: str) -> None:
    local_stack(write_config, kill_grace_seconds=0.5, launcher=launcher)
    module = write_pipeline(SLEEPY)
    handle = stackhop.run(module.sleepy_pipe, wait=False)
    pids = [int(p) for p in _wait_for(project / "pids.txt").split()]
    handle.cancel()
    assert handle.wait(timeout=20) == RunStatus.CANCELLED
    steps = handle.steps()
    assert steps["sleepy"].status == StepStatus.CANCELLED
    assert steps["never"].status == StepStatus.CANCELLED
    time.sleep(0.3)
    assert not any(_alive(p) for p in pids)
    assert get_run(handle.run_id)._store.get(handle.run_id).status == "CANCELLED"


def test_processes_a_step_started_do_not_outlive_it(project: Path, write_pipeline) -> None:
    handle = stackhop.run(write_pipeline(SLEEPY).sleepy_pipe, parameters={"seconds": 0.2})
    assert handle.status == RunStatus.SUCCEEDED
    _, child = (int(p) for p in (project / "pids.txt").read_text().split())
    time.sleep(0.3)
    assert not _alive(child)


def test_wait_false_returns_at_once_and_any_process_can_follow_the_run(project: Path, write_pipeline) -> None:
    module = write_pipeline(SLEEPY)
    started = time.time()
    handle = stackhop.run(module.sleepy_pipe, parameters={"seconds": 1.0}, wait=False)
    assert time.time() - started < 3
    assert handle.status in (RunStatus.PENDING, RunStatus.RUNNING)
    again = get_run(handle.run_id[:12])
    assert again.wait(timeout=30) == RunStatus.SUCCEEDED


# ----------------------------------------------------------------------------- control flow


def test_parallel_for_runs_each_item_and_respects_its_parallelism(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        import time, json
        from stackhop import step, pipeline, ParallelFor

        @step
        def square(x: int) -> str:
            start = time.time(); time.sleep(0.4)
            return json.dumps([x * x, start, time.time()])

        @pipeline
        def squares(xs: list = [1, 2, 3, 4]):
            with ParallelFor(xs, parallelism=2) as x:
                square(x=x).set_caching(False)
    """)
    handle = stackhop.run(module.squares, parameters={"xs": [2, 3, 4, 5, 6]})
    assert handle.status == RunStatus.SUCCEEDED
    results = {a.step: json.loads(a.value) for a in handle.artifacts()}
    assert sorted(r[0] for r in results.values()) == [4, 9, 16, 25, 36]
    assert set(results) == {f"square[{i}]" for i in range(5)}
    assert _max_overlap([(r[1], r[2]) for r in results.values()]) <= 2


def test_loop_items_can_be_dicts_read_field_by_field(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline, ParallelFor

        @step
        def describe(name: str, size: int) -> str:
            return f"{name}:{size}"

        @pipeline
        def configs():
            with ParallelFor([{"name": "small", "size": 1}, {"name": "large", "size": 9}]) as cfg:
                describe(name=cfg.name, size=cfg.size)
    """)
    handle = stackhop.run(module.configs)
    assert sorted(a.value for a in handle.artifacts()) == ["large:9", "small:1"]


def test_the_exit_handler_runs_after_a_failure_and_the_run_still_fails(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline, ExitHandler

        @step
        def boom() -> None:
            raise ValueError("nope")

        @step
        def cleanup(marker: str) -> None:
            open(marker, "w").write("cleaned")

        @pipeline
        def guarded(marker: str = "cleanup.txt"):
            done = cleanup(marker=marker).set_caching(False)
            with ExitHandler(done):
                boom()
    """)
    handle = stackhop.run(module.guarded)
    assert handle.status == RunStatus.FAILED
    assert statuses(handle) == {"boom": "FAILED", "cleanup": "SUCCEEDED"}
    assert (project / "cleanup.txt").read_text() == "cleaned"


def test_nested_conditions_with_and_or_not(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline, If

        @step
        def score() -> float:
            return 0.7

        @step
        def mark(label: str) -> str:
            return label

        @pipeline
        def gates(mode: str = "fast"):
            s = score()
            with If((s.output > 0.5) & (mode == "fast")):
                mark(label="a")
                with If(~(s.output.is_in([0.7]))):
                    mark(label="b")
            with If((s.output < 0.1) | (mode != "fast")):
                mark(label="c")
    """)
    handle = stackhop.run(module.gates)
    assert statuses(handle) == {"score": "SUCCEEDED", "mark": "SUCCEEDED", "mark-2": "SKIPPED", "mark-3": "SKIPPED"}
    assert statuses(stackhop.run(module.gates, parameters={"mode": "slow"}))["mark-3"] == "SUCCEEDED"


def test_container_steps_fill_placeholders_and_parse_scalar_outputs(project: Path, write_pipeline) -> None:
    shutil.copy(EXAMPLES / "container_pipeline.py", project / "container_example.py")
    module = write_pipeline((project / "container_example.py").read_text(), name="container_example")
    handle = stackhop.run(module.container_pipeline)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("count-words", "count").load() == 6
    assert handle.artifact("summarize", "output").load() == "6 long words"
    assert b"- kubernetes" in handle.artifact("count-words", "report").load()


# ----------------------------------------------------------------------------- secrets, code, values

SECRET = """
    import os
    from stackhop import step, pipeline

    @step
    def use_secret() -> int:
        return len(os.environ["DB_PASSWORD"])

    @pipeline
    def secretive():
        use_secret().set_secret_env("DB_PASSWORD", secret="db-creds", key="password")
"""


@LAUNCHERS
def test_secrets_reach_the_step_but_never_the_run_spec_state_or_logs(
    project: Path, write_pipeline, write_config, monkeypatch, launcher: str
) -> None:
    monkeypatch.setenv("MY_DB_PW", "s3cr3t-value")
    local_stack(write_config, secrets={"db-creds": {"password": "MY_DB_PW"}}, launcher=launcher)
    handle = stackhop.run(write_pipeline(SECRET).secretive)
    assert handle.status == RunStatus.SUCCEEDED
    assert handle.artifact("use_secret", "output").load() == len("s3cr3t-value")
    for path in (project / ".stackhop").rglob("*"):
        if path.is_file():
            assert b"s3cr3t-value" not in path.read_bytes(), path


def test_an_unmapped_secret_fails_the_step_with_the_fix(project: Path, write_pipeline) -> None:
    handle = stackhop.run(write_pipeline(SECRET).secretive)
    assert handle.status == RunStatus.FAILED
    assert "settings.secrets.db-creds.password" in handle.steps()["use_secret"].message


@LAUNCHERS
def test_steps_can_run_from_the_content_addressed_code_archive(project: Path, write_pipeline, write_config, launcher: str) -> None:
    local_stack(write_config, code="archive", launcher=launcher)
    module = write_pipeline(CACHED)
    handle = stackhop.run(module.cached)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    spec = json.loads(next((project / ".stackhop").rglob("run.json")).read_text())
    assert spec["code"]["source_dir"] is None and spec["code"]["archive_uri"].endswith(".tar.gz")
    assert list((project / ".code-cache").iterdir()), "the archive was extracted for the step"


def test_return_values_go_through_materializers_and_an_unstorable_type_is_refused_before_running(
        project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        import numpy as np
        from stackhop import step, pipeline

        class Opaque:
            pass

        @step
        def arrays() -> np.ndarray:
            return np.arange(6).reshape(2, 3)

        @step
        def total(values: np.ndarray) -> int:
            return int(values.sum())

        @step
        def raw() -> bytes:
            return b"\\x00\\x01"

        @step
        def opaque() -> Opaque:
            return Opaque()

        @pipeline
        def values():
            total(values=arrays().output)
            raw()

        @pipeline
        def unsafe():
            opaque()
    """)
    handle = stackhop.run(module.values)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("total", "output").load() == 15
    assert handle.artifact("arrays", "output").load().tolist() == [[0, 1, 2], [3, 4, 5]]
    assert handle.artifact("raw", "output").load() == b"\x00\x01"
    with pytest.raises(PipelineDefinitionError, match=r"step 'opaque' .* returns a .*Opaque, which no materializer stores.*allow_pickle=True"):
        stackhop.run(module.unsafe)
    assert [r.pipeline for r in RunStore(project / ".stackhop" / "runs.db").list()] == ["values"]


def test_concurrent_runs_share_one_store_safely(project: Path, write_pipeline) -> None:
    module = write_pipeline(CACHED)
    handles = [stackhop.run(module.cached, parameters={"n": n}, wait=False, cache=False) for n in range(6)]
    assert all(h.wait(timeout=60) == RunStatus.SUCCEEDED for h in handles)
    from stackhop.core.api import project_store

    records = project_store().list()
    assert {r.run_id for r in records} >= {h.run_id for h in handles}
    assert all(r.status == "SUCCEEDED" for r in records)


@pytest.mark.parametrize("signum", [signal.SIGTERM])
def test_the_runner_process_handles_termination_as_a_cancel(project: Path, write_pipeline, signum: int) -> None:
    module = write_pipeline(SLEEPY)
    handle = stackhop.run(module.sleepy_pipe, wait=False)
    _wait_for(project / "pids.txt")
    os.kill(handle.ref.data["pid"], signum)
    assert handle.wait(timeout=20) == RunStatus.CANCELLED


def test_namedtuple_returns_become_separate_typed_outputs_at_run_time(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from __future__ import annotations
        from typing import NamedTuple
        from stackhop import step, pipeline, If

        class Scores(NamedTuple):
            accuracy: float
            verdict: str

        class Single(NamedTuple):
            count: int

        @step
        def score() -> Scores:
            return Scores(0.75, "good")

        @step
        def count() -> Single:
            return Single(3)

        @step
        def report(accuracy: float, n: int) -> str:
            return f"{accuracy}/{n}"

        @pipeline
        def scored():
            s = score()
            with If(s.outputs["verdict"] == "good"):
                report(accuracy=s.outputs["accuracy"], n=count().outputs["count"])
    """)
    handle = stackhop.run(module.scored)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("score", "verdict").load() == "good"
    assert handle.artifact("count", "count").load() == 3
    assert handle.artifact("report", "output").load() == "0.75/3"


GATED = """
    from stackhop import step, pipeline, If, fail_step

    @step
    def score(value: float) -> float:
        return value

    @step
    def publish() -> str:
        return "published"

    @pipeline
    def gated(value: float = 0.5, threshold: float = 0.8):
        s = score(value=value)
        with If(s.output < threshold):
            fail_step("accuracy is below the threshold; not publishing")
        publish().after(s)
"""


def test_a_fail_step_ends_the_run_as_failed_with_its_message_only_when_reached(project, write_pipeline) -> None:
    module = write_pipeline(GATED)
    failed = stackhop.run(module.gated)
    assert failed.status == RunStatus.FAILED
    assert failed.steps()["fail"].message == "accuracy is below the threshold; not publishing"
    assert "accuracy is below the threshold" in failed.state().message
    passed = stackhop.run(module.gated, parameters={"value": 0.9})
    assert passed.status == RunStatus.SUCCEEDED
    assert passed.steps()["fail"].status == StepStatus.SKIPPED


def test_a_module_that_prints_when_imported_runs_with_the_fork_server(project: Path, write_pipeline) -> None:
    (project / "noisy_helpers.py").write_text("import os\nprint('helpers loaded')\nos.write(1, b'raw bytes on fd 1\\n')\n")
    module = write_pipeline("""
        import noisy_helpers
        from stackhop import pipeline, step

        print("loading the pipeline module")

        @step
        def a() -> int:
            return 1

        @pipeline
        def noisy():
            a()
    """)

    handle = stackhop.run(module.noisy, progress=False)

    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("a", "output").value == 1


def test_a_value_returned_without_a_return_annotation_is_reported_in_the_steps_log(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import pipeline, step

        @step
        def make():
            return {"rows": 3}

        @pipeline
        def unannotated():
            make()
    """)

    handle = stackhop.run(module.unannotated, progress=False)

    assert handle.status == RunStatus.SUCCEEDED
    assert ("step 'make' returned a dict, which is not stored because the function has no return annotation"
            in handle.logs("make"))
