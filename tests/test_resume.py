"""`runs resume`: continue a run that failed or whose runner died, without running a finished step twice.

Each step appends to a marker file when it runs, so the marker counts prove what ran. The
pipeline is loaded again from its file, as its code is now; a step reused from the origin run
is CACHED with native "resumed", and every other step says why it ran again.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import stackhop
from stackhop.cli.main import main
from stackhop.core.runs import RunStatus, StepStatus
from stackhop.errors import StackhopError
from stackhop.testing.kubernetes import FakeKubernetes

from conftest import k8s_stack

SOURCE = """
import os
import time

from stackhop import ParallelFor, pipeline, step

HERE = os.path.dirname(os.path.abspath(__file__))


def mark(name: str) -> None:
    with open(os.path.join(HERE, "marks-" + name), "a") as f:
        f.write("x")


@step
def prepare(rows: int) -> int:
    mark("prepare")
    return rows


@step
def train(rows: int, lr: float) -> float:
    mark(f"train-{lr}")
    if os.path.exists(os.path.join(HERE, f"broken-{lr}")):
        raise RuntimeError("the GPU fell over")
    while os.path.exists(os.path.join(HERE, "hold")):
        time.sleep(0.05)
    return rows * lr


@step
def report(score: float) -> str:
    mark("report")
    return f"score {score}"


@pipeline
def flaky(rows: int = 100):
    data = prepare(rows=rows)
    with ParallelFor([0.1, 0.2]) as lr:
        train(rows=data.output, lr=lr)
    report(score=data.output)
"""


def marks(folder: Path) -> dict[str, int]:
    return {p.name.removeprefix("marks-"): len(p.read_text()) for p in sorted(folder.glob("marks-*"))}


def until(predicate, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not predicate():
        assert time.time() < deadline, "the condition never came true"
        time.sleep(0.05)


def source(project: Path) -> str:
    """The pipeline, keeping its markers in the project wherever its steps run (a Kubernetes pod runs shipped code)."""
    return SOURCE.replace("os.path.dirname(os.path.abspath(__file__))", repr(str(project)))


@pytest.fixture
def flaky(project, write_pipeline):
    return write_pipeline(source(project), name="flaky_pipeline").flaky


def failed_once(project: Path, flaky) -> stackhop.RunHandle:
    (project / "broken-0.2").touch()
    handle = stackhop.run(flaky, progress=False)
    assert handle.status is RunStatus.FAILED
    (project / "broken-0.2").unlink()
    return handle


def test_a_failed_run_resumes_and_no_finished_step_runs_twice(project, flaky) -> None:
    origin = failed_once(project, flaky)
    assert marks(project) == {"prepare": 1, "report": 1, "train-0.1": 1, "train-0.2": 1}

    resumed = origin.resume(progress=False)

    assert resumed.status is RunStatus.SUCCEEDED
    assert marks(project) == {"prepare": 1, "report": 1, "train-0.1": 1, "train-0.2": 2}, "only the failed one again"
    steps = resumed.steps()
    assert {k: s.native for k, s in steps.items() if s.status is StepStatus.CACHED} == {
        "prepare": "resumed", "train[0]": "resumed", "report": "resumed"}
    assert steps["train[1]"].cache["changed"] == [f"it failed in run {origin.run_id}"]
    assert resumed.store.get(resumed.run_id).origin_run_id == origin.run_id
    assert resumed.artifact("train[1]", "output").value == 20.0


def test_from_a_step_runs_it_and_everything_downstream_again(project, write_pipeline) -> None:
    chain = write_pipeline(source(project).replace("    report(score=data.output)", "    report(score=prepare(rows=data.output)"
                                          ".set_name('again').output)"), name="chain_pipeline").flaky
    origin = stackhop.run(chain, progress=False)
    before = marks(project)

    resumed = origin.resume(from_step="again", progress=False)

    assert resumed.status is RunStatus.SUCCEEDED
    after = marks(project)
    assert after["report"] == before["report"] + 1 and after["prepare"] == before["prepare"] + 1
    assert after["train-0.1"] == before["train-0.1"], "upstream of the resume point: reused"
    assert resumed.steps()["report"].cache["changed"] == ["resumed from again"]


def test_a_skipped_step_and_the_steps_that_read_it_are_left_out(project, write_pipeline) -> None:
    chain = write_pipeline(source(project).replace("    report(score=data.output)", "    report(score=prepare(rows=data.output)"
                                          ".set_name('again').output)"), name="chain_pipeline").flaky
    (project / "broken-0.2").touch()
    origin = stackhop.run(chain, progress=False)
    assert origin.status is RunStatus.FAILED and marks(project)["report"] == 1

    resumed = origin.resume(from_step="again", skip=["again"], progress=False)

    assert resumed.status is RunStatus.FAILED, "train[1] still fails: skipping one step does not hide another"
    steps = resumed.steps()
    assert (steps["again"].status, steps["again"].message) == (StepStatus.SKIPPED, "left out of the resumed run (--skip)")
    assert (steps["report"].status, steps["report"].native) == (StepStatus.SKIPPED, "upstream_skipped")
    assert marks(project)["report"] == 1 and marks(project)["train-0.2"] == 2
    assert main(["runs", "resume", origin.run_id, "--skip", "deploy"]) == 2


def test_code_changed_upstream_runs_again_and_says_what_changed(project, flaky, write_pipeline) -> None:
    origin = failed_once(project, flaky)
    path = project / "flaky_pipeline.py"
    path.write_text(path.read_text().replace("    return rows\n", "    return rows + 0\n"))

    resumed = origin.resume(progress=False)

    assert resumed.status is RunStatus.SUCCEEDED
    assert marks(project)["prepare"] == 2
    assert resumed.steps()["prepare"].cache["changed"] == ["code changed: function prepare"]


def test_a_changed_parameter_reruns_the_steps_that_read_it(project, flaky) -> None:
    origin = failed_once(project, flaky)

    resumed = origin.resume(parameters={"rows": 50}, progress=False)

    assert resumed.artifact("report", "output").value == "score 50.0"
    assert resumed.steps()["prepare"].cache["changed"] == ["input rows: 100 -> 50"]


def test_a_run_whose_runner_was_killed_resumes(project, flaky) -> None:
    (project / "hold").touch()
    origin = stackhop.run(flaky, wait=False, progress=False)
    until(lambda: marks(project).get("train-0.1") and marks(project).get("train-0.2"))
    os.kill(origin.ref.data["pid"], signal.SIGKILL)
    until(lambda: origin.status.terminal)
    assert origin.status is RunStatus.FAILED
    (project / "hold").unlink()

    resumed = origin.resume(progress=False)

    assert resumed.status is RunStatus.SUCCEEDED, resumed.state().message
    assert marks(project) == {"prepare": 1, "report": 1, "train-0.1": 2, "train-0.2": 2}, \
        "the finished step is reused; the two the runner died under run again, and the one it never started runs"
    assert resumed.steps()["train[0]"].cache["changed"] == [f"it failed in run {origin.run_id}"], "the reader that saw the runner dead failed it"


def test_the_cli_says_what_it_reused_and_why_the_rest_ran(project, flaky, capsys) -> None:
    origin = failed_once(project, flaky)
    capsys.readouterr()

    assert main(["runs", "resume", origin.run_id]) == 0
    err = capsys.readouterr().err
    assert f"reused 3 step(s) of run {origin.run_id}: prepare, train[0], report" in err
    assert f"ran train[1] again: it failed in run {origin.run_id}" in err
    resumed = stackhop.get_run(next(r.run_id for r in origin.store.list() if r.origin_run_id == origin.run_id))
    assert main(["runs", "show", resumed.run_id]) == 0
    assert f"resumed from run {origin.run_id}" in capsys.readouterr().out
    assert main(["runs", "resume", origin.run_id, "--from", "evaluate"]) == 2
    refused = capsys.readouterr().err
    assert "pipeline 'flaky' has no step 'evaluate' to resume from; its steps are prepare, train, report" in refused
    assert "resuming run" not in refused, "a refused resume prints its error alone"


def test_a_run_whose_file_is_gone_is_refused_in_one_sentence(project, flaky) -> None:
    origin = failed_once(project, flaky)
    (project / "flaky_pipeline.py").unlink()

    with pytest.raises(StackhopError, match=r"the file that defined pipeline 'flaky' \(.*flaky_pipeline.py\) is not "
                                            r"there to resume it from; pass the pipeline, get_run\('.*'\)"
                                            r"\.resume\(pipeline=\.\.\.\), as a notebook must\.$"):
        origin.resume(progress=False)


def test_a_failed_run_on_the_fake_kubernetes_server_resumes(project, flaky, write_config) -> None:
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        (project / "broken-0.2").touch()
        origin = stackhop.run(flaky, progress=False)
        assert origin.wait(timeout=240) is RunStatus.FAILED
        (project / "broken-0.2").unlink()
        jobs = len(kube.objects("Job"))

        resumed = origin.resume(progress=False)

        assert resumed.wait(timeout=240) is RunStatus.SUCCEEDED, resumed.state().message
        assert len(kube.objects("Job")) == jobs + 1, "one Job, for the iteration that failed"
        assert marks(project)["train-0.2"] == 2 and marks(project)["prepare"] == 1


@pytest.mark.parametrize("stack", ["sm", "vertex"])
def test_an_emulated_run_resumes_from_its_compiled_document(project, flaky, write_config, gcs, aws, stack) -> None:
    from conftest import emulated_stacks

    write_config(emulated_stacks("resume"))
    (project / "broken-0.2").touch()
    origin = stackhop.run(flaky, stack, emulate=True, progress=False)
    assert origin.status is RunStatus.FAILED
    (project / "broken-0.2").unlink()

    resumed = origin.resume(progress=False)

    assert resumed.status is RunStatus.SUCCEEDED, resumed.state().message
    assert resumed.ref.data.get("emulates") == origin.ref.data.get("emulates")
    assert marks(project) == {"prepare": 1, "report": 1, "train-0.1": 1, "train-0.2": 2}


def test_the_projects_runs_are_handles_chosen_by_pipeline_stack_and_status(project, flaky) -> None:
    origin = failed_once(project, flaky)
    resumed = origin.resume(progress=False)

    assert [h.run_id for h in stackhop.runs(flaky)] == [resumed.run_id, origin.run_id], "newest first"
    assert [h.run_id for h in stackhop.runs("flaky", status="failed")] == [origin.run_id]
    assert [h.run_id for h in stackhop.runs(stack="local", status=RunStatus.SUCCEEDED, limit=1)] == [resumed.run_id]
    assert stackhop.runs("another-pipeline") == []
    with pytest.raises(StackhopError, match=r"^runs\(status='done'\): not a run status; use one of PENDING, "):
        stackhop.runs(status="done")


def test_an_in_cluster_driver_whose_pod_is_deleted_is_replaced_and_continues_the_same_run(project, flaky,
                                                                                          write_config) -> None:
    from kubernetes import client, config as kube_config

    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project, driver="in-cluster", driver_image="registry.example.com/stackhop:0.1")
        (project / "hold").touch()
        run = stackhop.run(flaky, wait=False, progress=False)
        until(lambda: {"prepare", "report", "train-0.1", "train-0.2"} <= set(marks(project)), 120)
        until(lambda: run.steps().get("report") and run.steps()["report"].status is StepStatus.SUCCEEDED, 60)
        api = kube_config.new_client_from_config(str(project / "kubeconfig"))
        for job in kube.objects("Job", "ml"):  # as ttlSecondsAfterFinished would: only the run's state says they ran
            if job["metadata"]["annotations"]["stackhop.dev/step-name"] in ("prepare", "report"):
                client.BatchV1Api(api).delete_namespaced_job(job["metadata"]["name"], "ml",
                                                             propagation_policy="Background")
        jobs = {j["metadata"]["uid"] for j in kube.objects("Job", "ml")}
        driver_job = run.ref.data["driver_job"]
        first, = [p["metadata"]["name"] for p in kube.objects("Pod", "ml")
                  if p["metadata"]["labels"].get("job-name") == driver_job]

        core = client.CoreV1Api(api)
        core.delete_namespaced_pod(first, "ml", grace_period_seconds=0)
        until(lambda: [p for p in kube.objects("Pod", "ml") if p["metadata"]["labels"].get("job-name") == driver_job
                       and p["metadata"]["name"] != first], 120)
        (project / "hold").unlink()

        assert run.wait(timeout=240) is RunStatus.SUCCEEDED, run.state().message
        assert marks(project) == {"prepare": 1, "report": 1, "train-0.1": 1, "train-0.2": 1}, "nothing ran twice"
        assert {j["metadata"]["uid"] for j in kube.objects("Job", "ml")} <= jobs, \
            "the new driver adopted the running Jobs and made none: not even for the finished steps whose Jobs are gone"
        steps = run.steps()
        assert {k: s.status for k, s in steps.items()} == {k: StepStatus.SUCCEEDED for k in steps}


def test_a_killed_client_mode_driver_is_seen_dead_and_its_run_resumes(project, flaky, write_config) -> None:
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        (project / "hold").touch()
        origin = stackhop.run(flaky, wait=False, progress=False)
        until(lambda: {"prepare", "train-0.1", "train-0.2"} <= set(marks(project)), 120)
        os.kill(origin.ref.data["pid"], signal.SIGKILL)
        until(lambda: origin.status.terminal, 60)
        assert (origin.status, origin.state().message) == (
            RunStatus.FAILED, "the driver stopped before the run finished; see its log")
        (project / "hold").unlink()

        resumed = origin.resume(progress=False)

        assert resumed.wait(timeout=240) is RunStatus.SUCCEEDED, resumed.state().message
        assert marks(project)["prepare"] == 1, "the step that finished before the driver died is reused"
        assert resumed.steps()["prepare"].native == "resumed"
        assert resumed.steps()["train[0]"].cache["changed"] == [f"it did not finish in run {origin.run_id}"]


@pytest.mark.parametrize("stack", ["sm", "vertex"])
def test_an_emulated_run_whose_runner_was_killed_resumes(project, flaky, write_config, gcs, aws, stack) -> None:
    from conftest import emulated_stacks

    write_config(emulated_stacks("killed"))
    (project / "hold").touch()
    origin = stackhop.run(flaky, stack, emulate=True, wait=False, progress=False)
    until(lambda: marks(project).get("train-0.1") and marks(project).get("train-0.2"), 120)
    os.kill(origin.ref.data["pid"], signal.SIGKILL)
    until(lambda: origin.status.terminal)
    (project / "hold").unlink()

    resumed = origin.resume(progress=False)

    assert resumed.status is RunStatus.SUCCEEDED, resumed.state().message
    assert marks(project)["prepare"] == 1 and marks(project)["report"] == 1


def test_skip_works_on_an_emulated_run_whose_scheduler_is_stackhops(project, flaky, write_config, gcs, aws) -> None:
    from conftest import emulated_stacks

    write_config(emulated_stacks("skip"))
    (project / "broken-0.2").touch()
    origin = stackhop.run(flaky, "vertex", emulate=True, progress=False)
    (project / "broken-0.2").unlink()

    resumed = origin.resume(skip=["report"], progress=False)

    assert resumed.status is RunStatus.SUCCEEDED, resumed.state().message
    assert resumed.steps()["report"].status is StepStatus.SKIPPED
