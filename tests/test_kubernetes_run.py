"""Kubernetes runs end to end: the official client over real HTTP against the project's fake API server,
whose kubelet runs each container's command as a local process, so artifacts really flow."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.testing.kubernetes import FakeKubernetes

from conftest import EXAMPLES, k8s_stack


@pytest.fixture
def kube():
    with FakeKubernetes(version="1.37", time_scale=0.05) as fake:
        yield fake


def statuses(handle) -> dict[str, str]:
    return {k: v.status.value for k, v in handle.steps().items()}


def test_the_training_example_runs_on_kubernetes_and_skips_deploy_at_a_high_threshold(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    module = write_pipeline((project / "training_example.py").read_text(), name="training_example")

    handle = stackhop.run(module.training_pipeline, parameters={"deploy_dir": str(project / "deployed")})
    assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
    assert statuses(handle) == {s: "SUCCEEDED" for s in ("load_data", "train_model", "evaluate_model", "deploy_model")}
    assert (project / "deployed" / "production" / "model.pkl").exists()
    jobs = kube.objects("Job", "ml")
    assert len(jobs) == 4 and all(j["metadata"]["labels"]["stackhop.dev/run"] == handle.run_id for j in jobs)
    assert "accuracy=" in handle.logs("evaluate_model")

    skipped = stackhop.run(module.training_pipeline, parameters={"min_accuracy": 0.999, "deploy_dir": str(project / "deployed")})
    assert skipped.status == RunStatus.SUCCEEDED
    steps = skipped.steps()
    assert steps["deploy_model"].status == StepStatus.SKIPPED and steps["deploy_model"].native == "condition_false"
    assert steps["train_model"].status == StepStatus.CACHED
    assert skipped.artifact("evaluate_model", "output").load() == "no"


FLAKY = """
    import os
    from stackhop import step, pipeline

    @step
    def flaky(counter: str, fail_times: int) -> int:
        n = int(open(counter).read()) if os.path.exists(counter) else 0
        open(counter, "w").write(str(n + 1))
        if n < fail_times:
            raise RuntimeError(f"boom {n + 1}")
        return n + 1

    @pipeline
    def flaky_pipe(counter: str = "", fail_times: int = 1):
        flaky(counter=counter, fail_times=fail_times).set_retry(2).set_caching(False)
"""


def test_a_failed_pod_is_retried_by_the_job_and_its_logs_are_kept(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline(FLAKY)
    handle = stackhop.run(module.flaky_pipe, parameters={"counter": str(project / "count.txt")})
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    step = handle.steps()["flaky"]
    assert step.attempts == 2
    assert handle.artifact("flaky", "output").load() == 2
    log = handle.logs("flaky")
    assert "boom 1" in log and "attempt 2" in log
    job = kube.objects("Job", "ml")[0]
    assert job["spec"]["backoffLimit"] == 2


def test_retries_exhausted_fail_the_run_with_the_jobs_reason(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    handle = stackhop.run(write_pipeline(FLAKY).flaky_pipe, parameters={"counter": str(project / "c.txt"), "fail_times": 9})
    assert handle.status == RunStatus.FAILED
    step = handle.steps()["flaky"]
    assert step.status == StepStatus.FAILED
    assert step.native == "BackoffLimitExceeded"
    assert "BackoffLimitExceeded" in step.message and "exit code 1" in step.message
    assert "RuntimeError: boom 3" in step.message, "the step's own error reaches the user"


def test_a_step_over_its_deadline_fails_with_deadline_exceeded(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline("""
        import time
        from stackhop import step, pipeline

        @step
        def slow() -> None:
            time.sleep(30)

        @pipeline
        def slow_pipe():
            slow().set_timeout(1).set_caching(False)
    """)
    started = time.time()
    handle = stackhop.run(module.slow_pipe)
    assert handle.status == RunStatus.FAILED
    assert time.time() - started < 20
    assert handle.steps()["slow"].native == "DeadlineExceeded"


def test_cancel_deletes_the_running_jobs_in_the_foreground(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline("""
        import time
        from stackhop import step, pipeline

        @step
        def slow(marker: str) -> None:
            print("warming up", flush=True)
            open(marker, "w").write("started")
            time.sleep(60)

        @step
        def later() -> None: ...

        @pipeline
        def slow_pipe(marker: str = ""):
            later().after(slow(marker=marker).set_caching(False))
    """)
    marker = project / "started.txt"
    handle = stackhop.run(module.slow_pipe, parameters={"marker": str(marker)}, wait=False)
    deadline = time.time() + 30
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert marker.exists()
    assert "warming up" in handle.logs("slow"), "a running step's log is read from its pod"
    handle.cancel()
    assert handle.wait(timeout=30) == RunStatus.CANCELLED
    assert statuses(handle) == {"slow": "CANCELLED", "later": "CANCELLED"}
    deletes = [r for r in kube.requests if r[0] == "DELETE" and "/jobs/" in r[1]]
    assert deletes and "propagationPolicy=Foreground" in deletes[0][2]
    assert kube.objects("Job", "ml") == []


def test_an_image_that_cannot_be_pulled_fails_the_step_after_the_grace_period(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline("""
        from stackhop import step, pipeline

        @step
        def pulled() -> None: ...

        @pipeline
        def pull_pipe():
            pulled().set_image("registry.example.com/missing:1").set_caching(False)
    """)
    kube.inject_pod_failure("pull-pipe-pulled", "ImagePullBackOff")
    handle = stackhop.run(module.pull_pipe)
    assert handle.status == RunStatus.FAILED
    step = handle.steps()["pulled"]
    assert step.native == "ImagePullBackOff" and "ImagePullBackOff" in step.message


RESOURCE_OPS = """
    from stackhop import step, pipeline, resource_op

    CRD = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "trainings.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "trainings", "singular": "training", "kind": "Training"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                               "subresources": {"status": {}}}]},
    }

    @step
    def use(name: str) -> str:
        return "configured " + name

    @pipeline
    def ops():
        cm = resource_op("make-config", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                                          "data": {"lr": "0.1"}}, "apply",
                         success_condition="data.lr == 0.1", outputs={"name": "metadata.name"})
        use(name=cm.outputs["name"])

    @pipeline
    def watched():
        resource_op("start-training", {"apiVersion": "example.com/v1", "kind": "Training", "metadata": {"name": "t1"},
                                        "spec": {"epochs": 3}}, "create",
                    success_condition="status.phase == Done", failure_condition="status.phase == Failed")
"""


def test_a_resource_op_applies_a_manifest_waits_for_success_and_passes_outputs_on(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    handle = stackhop.run(write_pipeline(RESOURCE_OPS).ops)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("use", "output").load() == "configured settings"
    cm = next(c for c in kube.objects("ConfigMap", "ml") if c["metadata"]["name"] == "settings")
    assert cm["metadata"]["labels"]["stackhop.dev/run"] == handle.run_id


def test_a_resource_op_fails_when_its_failure_condition_holds(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline(RESOURCE_OPS)
    from kubernetes import client, config

    api = kube.api_client()
    client.ApiextensionsV1Api(api).create_custom_resource_definition(module.CRD)
    handle = stackhop.run(module.watched, wait=False)
    deadline = time.time() + 20
    while not kube.objects("Training", "ml") and time.time() < deadline:
        time.sleep(0.1)
    kube.set_status("example.com/v1", "Training", "ml", "t1", {"phase": "Failed"})
    assert handle.wait(timeout=30) == RunStatus.FAILED
    assert "failure condition status.phase == Failed holds" in handle.steps()["start-training"].message


def test_a_status_poll_costs_one_labelled_call_not_one_per_step(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline("""
        from stackhop import step, pipeline

        @step
        def noop(i: int) -> int:
            return i

        @pipeline
        def wide():
            for i in range(12):
                noop(i=i).set_caching(False)
    """)
    handle = stackhop.run(module.wide)
    assert handle.status == RunStatus.SUCCEEDED
    job_gets = [r for r in kube.requests if r[0] == "GET" and "/jobs/" in r[1] and "watch" not in r[2]]
    assert job_gets == [], "the driver never reads Jobs one by one"
    lists = [r for r in kube.requests if r[0] == "GET" and r[1].endswith("/jobs") and "watch=true" not in r[2].lower()]
    assert len(lists) <= 3, lists


SMALL = """
    import time
    from stackhop import step, pipeline, If

    @step
    def score() -> float:
        return 0.8

    @step
    def ship(marker: str, wait: float) -> str:
        open(marker, "w").write("shipping")
        time.sleep(wait)
        return "shipped"

    @pipeline
    def small(marker: str = "", wait: float = 0.0):
        s = score()
        with If(s.output > 0.5):
            ship(marker=marker, wait=wait).set_caching(False)
"""


def test_the_in_cluster_driver_runs_as_a_job_and_owns_the_step_jobs(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project, driver="in-cluster", driver_image="registry.example.com/stackhop:0.1")
    handle = stackhop.run(write_pipeline(SMALL).small, parameters={"marker": str(project / "m.txt")})
    assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
    assert statuses(handle) == {"score": "SUCCEEDED", "ship": "SUCCEEDED"}
    jobs = {j["metadata"]["annotations"]["stackhop.dev/step-name"]: j for j in kube.objects("Job", "ml")}
    driver = jobs["_driver"]
    assert driver["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == ["--driver", "kubernetes"]
    for step in ("score", "ship"):
        owners = jobs[step]["metadata"]["ownerReferences"]
        assert owners[0]["kind"] == "Job" and owners[0]["uid"] == driver["metadata"]["uid"]
    role = kube.objects("Role", "ml")[0]
    assert {"batch"} == {g for r in role["rules"] for g in r["apiGroups"] if g}
    assert kube.objects("ServiceAccount", "ml") and kube.objects("RoleBinding", "ml")


def test_cancelling_an_in_cluster_run_deletes_the_driver_and_everything_it_owns(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project, driver="in-cluster", driver_image="registry.example.com/stackhop:0.1")
    marker = project / "m.txt"
    handle = stackhop.run(write_pipeline(SMALL).small, parameters={"marker": str(marker), "wait": 60.0}, wait=False)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert marker.exists()
    handle.cancel()
    assert handle.wait(timeout=60) == RunStatus.CANCELLED
    deadline = time.time() + 20
    while kube.objects("Job", "ml") and time.time() < deadline:
        time.sleep(0.1)
    assert kube.objects("Job", "ml") == []


LOOPED = """
    from stackhop import step, pipeline, ParallelFor, ExitHandler

    @step
    def square(x: int) -> int:
        return x * x

    @step
    def boom(fail: bool) -> None:
        if fail:
            raise ValueError("planned failure")

    @step
    def cleanup(marker: str) -> None:
        open(marker, "w").write("cleaned")

    @pipeline
    def looped(xs: list = [1, 2, 3], fail: bool = False, marker: str = ""):
        done = cleanup(marker=marker).set_caching(False)
        with ExitHandler(done):
            with ParallelFor(xs, parallelism=2) as x:
                square(x=x)
            boom(fail=fail).set_caching(False)
"""


def test_parallel_for_and_the_exit_handler_run_as_jobs(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    marker = project / "cleaned.txt"
    handle = stackhop.run(write_pipeline(LOOPED).looped, parameters={"fail": True, "marker": str(marker)})
    assert handle.status == RunStatus.FAILED
    assert statuses(handle) == {"square[0]": "SUCCEEDED", "square[1]": "SUCCEEDED", "square[2]": "SUCCEEDED",
                                "boom": "FAILED", "cleanup": "SUCCEEDED"}
    assert sorted(a.value for a in handle.artifacts() if a.step.startswith("square")) == [1, 4, 9]
    assert marker.read_text() == "cleaned"
    names = {j["metadata"]["name"] for j in kube.objects("Job", "ml")}
    assert {handle.steps()[k].name for k in handle.steps()} and len(names) == 5
    state = json.loads(next((project / ".stackhop").rglob("state.json")).read_text())
    assert {s["backend_name"] for s in state["steps"].values()} == names, "the run record names every Job it created"


def test_an_oom_killed_step_reports_the_reason_and_exit_code(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    module = write_pipeline(SMALL.replace("return 0.8", "time.sleep(3)\n        return 0.8"))
    kube.inject_pod_failure("small-score", "OOMKilled")
    handle = stackhop.run(module.small, parameters={"marker": str(project / "m.txt")})
    assert handle.status == RunStatus.FAILED
    step = handle.steps()["score"]
    assert "OOMKilled" in step.message and "137" in step.message
    assert handle.steps()["ship"].status == StepStatus.SKIPPED


def test_the_job_watcher_relists_when_its_resource_version_is_too_old() -> None:
    from kubernetes import client

    from stackhop.adapters.kubernetes.driver import JobWatcher

    with FakeKubernetes(version="1.37", watch_history=3) as fake:
        batch = client.BatchV1Api(fake.api_client())
        watcher = JobWatcher(batch, "ml", "stackhop.dev/run=r1", timeout_seconds=1)
        try:
            for i in range(5):
                batch.create_namespaced_job("ml", {
                    "apiVersion": "batch/v1", "kind": "Job",
                    "metadata": {"name": f"j{i}", "labels": {"stackhop.dev/run": "r1"}},
                    "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never", "containers": [
                        {"name": "main", "image": "busybox", "command": ["true"]}]}}},
                })
            def settled() -> bool:
                jobs = watcher.snapshot()
                return len(jobs) == 5 and all(
                    any(c["type"] == "Suspended" for c in (j.get("status") or {}).get("conditions") or [])
                    for j in jobs.values())

            deadline = time.time() + 10
            while not settled() and time.time() < deadline:
                time.sleep(0.05)
            assert settled(), "the watcher saw every Job and its Suspended condition"
            time.sleep(0.3)  # no more events are coming; the next reconnect uses what we set below
            # The first list, plus one more if a reconnect fell behind the 3-event history during the burst above.
            listed = watcher.relists
            assert listed >= 1
            watcher.resource_version = "1"  # as if the watch had been away while history moved on
            deadline = time.time() + 10
            while watcher.relists <= listed and time.time() < deadline:
                time.sleep(0.05)
            assert watcher.relists == listed + 1, "a 410 Gone made the watcher list again"
            batch.delete_namespaced_job("j0", "ml", propagation_policy="Background")
            deadline = time.time() + 10
            while "j0" in watcher.snapshot() and time.time() < deadline:
                time.sleep(0.05)
            assert "j0" not in watcher.snapshot(), "and it keeps watching afterwards"
        finally:
            watcher.stop()


def test_transient_api_errors_on_job_creation_are_retried(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    kube.inject_api_errors(500, count=2, method="POST", path_contains="/jobs")
    handle = stackhop.run(write_pipeline(SMALL).small, parameters={"marker": str(project / "m.txt")})
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message


def test_a_rejected_job_fails_the_step_naming_the_object_and_the_servers_message(project, write_pipeline, write_config, kube) -> None:
    k8s_stack(write_config, kube, project)
    kube.inject_api_errors(503, count=50, method="POST", path_contains="/jobs")
    handle = stackhop.run(write_pipeline(SMALL).small, parameters={"marker": str(project / "m.txt")})
    assert handle.status == RunStatus.FAILED
    message = handle.steps()["score"].message
    assert message.startswith("creating Job ml/small-score-") and "failed:" in message
