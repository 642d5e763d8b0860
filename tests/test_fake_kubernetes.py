"""The fake Kubernetes cluster, proven with the official client over real HTTP.

Every check goes through `kubernetes` (typed APIs, Watch, DynamicClient) against the socket the
fake serves, and objects the fake stores are re-validated with the official strict schemas, so
what passes here is what a real API server would accept and return.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, TypeVar

import kubernetes_validate
import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client import ApiException

from stackhop.testing.kubernetes import FakeKubernetes

T = TypeVar("T")
NS = "default"


# -- helpers ---------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll until `predicate()` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def job(name: str, command: list[str], *, restart: str = "Never", **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "python:3.11-slim", "command": command}
    container.update(spec.pop("container", {}))
    pod_spec = {"restartPolicy": restart, "containers": [container]}
    pod_spec.update(spec.pop("pod", {}))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": {"spec": pod_spec}, **spec},
    }


def python(code: str) -> list[str]:
    return ["python", "-c", code]


def conditions(job_obj: Any) -> list[tuple[str, str, str | None]]:
    return [(c.type, c.status, c.reason) for c in (job_obj.status.conditions or [])]


def finished(batch: client.BatchV1Api, name: str, timeout: float = 15.0) -> Any:
    """Wait for the Job's terminal condition (Complete or Failed) and return the Job."""

    def done() -> Any:
        current = batch.read_namespaced_job(name, NS)
        types = {t for t, status, _ in conditions(current) if status == "True"}
        return current if types & {"Complete", "Failed"} else None

    return wait_for(done, timeout)


def job_pods(core: client.CoreV1Api, name: str) -> list[Any]:
    return core.list_namespaced_pod(NS, label_selector=f"batch.kubernetes.io/job-name={name}").items


def status_of(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def causes(exc: ApiException) -> list[str]:
    return [c["field"] for c in status_of(exc)["details"]["causes"]]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def kube() -> Any:
    with FakeKubernetes(version="1.37", time_scale=0.02) as fake:
        yield fake


@pytest.fixture
def batch(kube: FakeKubernetes) -> client.BatchV1Api:
    return client.BatchV1Api(kube.api_client())


@pytest.fixture
def core(kube: FakeKubernetes) -> client.CoreV1Api:
    return client.CoreV1Api(kube.api_client())


# -- API basics ------------------------------------------------------------------------------


def test_discovery_serves_dynamic_client(kube: FakeKubernetes, tmp_path: Path) -> None:
    api_client = kube.api_client()
    assert client.VersionApi(api_client).get_code().git_version == "v1.37.0"
    core_names = {r.name for r in client.CoreV1Api(api_client).get_api_resources().resources}
    assert {
        "pods",
        "pods/log",
        "pods/status",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "events",
        "namespaces",
    } <= core_names
    groups = {g.name for g in client.ApisApi(api_client).get_api_versions().groups}
    assert {"batch", "rbac.authorization.k8s.io", "apiextensions.k8s.io"} <= groups

    dyn = dynamic.DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))
    jobs = dyn.resources.get(api_version="batch/v1", kind="Job")
    assert jobs.namespaced and jobs.name == "jobs"
    configmaps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    configmaps.create(namespace=NS, body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "via-dynamic"}})
    assert [i.metadata.name for i in configmaps.get(namespace=NS).items] == ["via-dynamic"]


def test_crud_status_codes_and_conflicts(kube: FakeKubernetes, core: client.CoreV1Api) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg", "labels": {"a": "1"}},
        "data": {"k": "v"},
    }
    created, code, _ = core.create_namespaced_config_map_with_http_info(NS, body)
    assert code == 201
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    assert created.metadata.namespace == NS

    with pytest.raises(ApiException) as duplicate:
        core.create_namespaced_config_map(NS, body)
    assert duplicate.value.status == 409 and status_of(duplicate.value)["reason"] == "AlreadyExists"

    fetched, code, _ = core.read_namespaced_config_map_with_http_info("cfg", NS)
    assert code == 200 and fetched.data == {"k": "v"}

    fetched.data = {"k": "v2"}
    replaced = core.replace_namespaced_config_map("cfg", NS, fetched)
    assert int(replaced.metadata.resource_version) > int(fetched.metadata.resource_version)
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("cfg", NS, fetched)  # still carries the old resourceVersion
    assert stale.value.status == 409 and status_of(stale.value)["reason"] == "Conflict"

    patched = core.patch_namespaced_config_map("cfg", NS, {"metadata": {"labels": {"b": "2"}}})
    assert patched.metadata.labels == {"a": "1", "b": "2"}
    patched = core.patch_namespaced_config_map("cfg", NS, [{"op": "replace", "path": "/data/k", "value": "v3"}])
    assert patched.data == {"k": "v3"}
    with pytest.raises(ApiException) as failed_test:
        core.patch_namespaced_config_map("cfg", NS, [{"op": "test", "path": "/data/k", "value": "nope"}])
    assert failed_test.value.status == 422

    # Server-side apply creates, then removes what the same manager stops applying.
    # Sent through call_api with the header set: kubernetes<31 (which kfp pins) has no `_content_type`.
    def apply(body: dict) -> tuple[Any, int]:
        result, code, _ = core.api_client.call_api(
            f"/api/v1/namespaces/{NS}/configmaps/ssa", "PATCH", query_params=[("fieldManager", "tests")],
            header_params={"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
            body=body, response_type="V1ConfigMap", auth_settings=["BearerToken"], _return_http_data_only=False)
        return result, code

    applied_body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"x": "1", "y": "2"}}
    _, code = apply(applied_body)
    assert code == 201
    applied_body["data"] = {"x": "1"}
    applied, _ = apply(applied_body)
    assert applied.data == {"x": "1"}
    assert any(m.manager == "tests" and m.operation == "Apply" for m in applied.metadata.managed_fields)

    dry = core.create_namespaced_config_map(NS, {"metadata": {"name": "dry"}}, dry_run="All")
    assert dry.metadata.name == "dry"
    with pytest.raises(ApiException) as not_stored:
        core.read_namespaced_config_map("dry", NS)
    assert not_stored.value.status == 404

    result, code, _ = core.delete_namespaced_config_map_with_http_info("cfg", NS)
    status = result["status"] if isinstance(result, dict) else result.status  # a dict from kubernetes>=31
    assert code == 200 and status == "Success"
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_config_map("cfg", NS)
    assert gone.value.status == 404 and status_of(gone.value)["reason"] == "NotFound"


def test_create_body_without_content_type_is_json(kube: FakeKubernetes) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "raw"}})
    connection = http.client.HTTPConnection(kube.url.removeprefix("http://"))
    connection.putrequest("POST", f"/api/v1/namespaces/{NS}/configmaps")  # no Content-Type, like the client's creates
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body.encode())
    response = connection.getresponse()
    assert response.status == 201
    assert json.loads(response.read())["metadata"]["name"] == "raw"
    connection.close()


def _pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["template"]["spec"]


def _container(manifest: dict[str, Any]) -> dict[str, Any]:
    return _pod_spec(manifest)["containers"][0]


_GPU = "nvidia.com/gpu"
_INVALID_JOBS: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "unknown-field": (lambda j: j["spec"].update(foo=1), "spec.foo"),
    "bad-name": (lambda j: j["metadata"].update(name="Bad_Name"), "metadata.name"),
    "name-too-long-for-job-label": (lambda j: j["metadata"].update(name="x" * 64), "metadata.name"),
    "bad-label-key": (lambda j: j["metadata"].update(labels={"bad key!": "v"}), "metadata.labels"),
    "restart-always": (lambda j: _pod_spec(j).update(restartPolicy="Always"), "spec.template.spec.restartPolicy"),
    "restart-defaulted-to-always": (lambda j: _pod_spec(j).pop("restartPolicy"), "spec.template.spec.restartPolicy"),
    "gpu-request-not-limit": (
        lambda j: _container(j).update(resources={"requests": {_GPU: "2"}, "limits": {_GPU: "1"}}),
        f"spec.template.spec.containers[0].resources.requests[{_GPU}]",
    ),
    "fractional-gpu": (
        lambda j: _container(j).update(resources={"limits": {_GPU: "500m"}}),
        f"spec.template.spec.containers[0].resources.limits[{_GPU}]",
    ),
    "bad-quantity": (
        lambda j: _container(j).update(resources={"limits": {"memory": "1GB"}}),
        "spec.template.spec.containers[0].resources.limits[memory]",
    ),
    "request-above-limit": (
        lambda j: _container(j).update(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
        "spec.template.spec.containers[0].resources.requests",
    ),
    "duplicate-container": (
        lambda j: _pod_spec(j)["containers"].append({"name": "main", "image": "x", "command": ["x"]}),
        "spec.template.spec.containers[1].name",
    ),
    "container-name-not-dns-label": (
        lambda j: _container(j).update(name="Main"),
        "spec.template.spec.containers[0].name",
    ),
    "env-name": (
        lambda j: _container(j).update(env=[{"name": "A=B", "value": "1"}]),
        "spec.template.spec.containers[0].env[0].name",
    ),
    "pod-failure-policy-needs-never": (
        lambda j: (
            _pod_spec(j).update(restartPolicy="OnFailure"),
            j["spec"].update(
                podFailurePolicy={"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}
            ),
        ),
        "spec.template.spec.restartPolicy",
    ),
}


@pytest.mark.parametrize(("mutate", "field"), list(_INVALID_JOBS.values()), ids=list(_INVALID_JOBS))
def test_invalid_jobs_are_rejected_with_422(
    kube: FakeKubernetes, batch: client.BatchV1Api, tmp_path: Path, mutate: Callable[[dict], Any], field: str
) -> None:
    # The typed client would refuse some of these itself (pydantic); the dynamic client sends them as they are.
    jobs = dynamic.DynamicClient(kube.api_client(), cache_file=str(tmp_path / "discovery.json")).resources.get(
        api_version="batch/v1", kind="Job"
    )
    manifest = job("valid", python("pass"))
    mutate(manifest)
    with pytest.raises(ApiException) as rejected:
        jobs.create(body=manifest, namespace=NS)
    assert rejected.value.status == 422
    body = status_of(rejected.value)
    assert body["kind"] == "Status" and body["reason"] == "Invalid" and body["code"] == 422
    assert field in causes(rejected.value), body
    assert batch.list_namespaced_job(NS).items == []


def test_version_pin_changes_rules_and_conditions(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not supported"):
        FakeKubernetes(version="1.99")
    relaxed_env = job(
        "env", python("import os; print(os.environ['my var'])"), container={"env": [{"name": "my var", "value": "1"}]}
    )
    with FakeKubernetes(version="1.30", time_scale=0.02) as kube:
        batch = client.BatchV1Api(kube.api_client())
        assert client.VersionApi(kube.api_client()).get_code().minor == "30"
        with pytest.raises(ApiException) as strict_env:
            batch.create_namespaced_job(NS, relaxed_env)  # env names were C identifiers before 1.32
        assert strict_env.value.status == 422
        batch.create_namespaced_job(NS, job("old", python("pass")))
        assert [t for t, _, _ in conditions(finished(batch, "old"))] == [
            "Complete"
        ]  # no SuccessCriteriaMet before 1.31
    with FakeKubernetes(version="1.37", time_scale=0.02) as kube:
        batch = client.BatchV1Api(kube.api_client())
        batch.create_namespaced_job(NS, relaxed_env)
        assert [t for t, _, _ in conditions(finished(batch, "env"))] == ["SuccessCriteriaMet", "Complete"]


# -- jobs and pods -------------------------------------------------------------------------


def test_job_completes_with_conditions_events_and_logs(
    kube: FakeKubernetes, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    created = batch.create_namespaced_job(NS, job("hello", python("print('hi')")))
    assert created.spec.backoff_limit == 6 and created.spec.completions == 1 and created.spec.parallelism == 1
    uid = created.metadata.uid
    assert created.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": uid}
    labels = created.spec.template.metadata.labels
    assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "hello"
    assert labels["controller-uid"] == labels["batch.kubernetes.io/controller-uid"] == uid

    done = finished(batch, "hello")
    assert conditions(done) == [
        ("SuccessCriteriaMet", "True", "CompletionsReached"),
        ("Complete", "True", "CompletionsReached"),
    ]
    assert done.status.succeeded == 1 and not done.status.active and not done.status.failed
    assert done.status.start_time <= done.status.completion_time

    (pod,) = job_pods(core, "hello")
    assert pod.metadata.name.startswith("hello-") and len(pod.metadata.name) == len("hello-") + 5
    owner = pod.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("Job", "hello", uid, True)
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    assert core.read_namespaced_pod_log(pod.metadata.name, NS) == "hi\n"
    assert core.read_namespaced_pod_log(pod.metadata.name, NS, container="main", tail_lines=1) == "hi\n"

    job_events = {e.reason for e in core.list_namespaced_event(NS, field_selector="involvedObject.name=hello").items}
    assert {"SuccessfulCreate", "Completed"} <= job_events
    pod_events = {
        e.reason
        for e in core.list_namespaced_event(NS, field_selector=f"involvedObject.name={pod.metadata.name}").items
    }
    assert {"Scheduled", "Pulled", "Created", "Started"} <= pod_events

    for kind in ("Job", "Pod", "Event", "Namespace", "ServiceAccount"):
        for stored in kube.objects(kind):
            kubernetes_validate.validate(stored, "1.37", strict=True)  # the fake stores only valid objects


def test_log_follow_streams_while_the_pod_runs(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.2)"
    batch.create_namespaced_job(NS, job("chatty", python(code)))
    pod = wait_for(lambda: [p for p in job_pods(core, "chatty") if p.status and p.status.phase == "Running"])[0]
    arrivals = []
    for line in watch.Watch().stream(core.read_namespaced_pod_log, pod.metadata.name, NS, follow=True):
        arrivals.append((time.monotonic(), line))
    assert [line for _, line in arrivals] == ["0", "1", "2"]
    assert arrivals[-1][0] - arrivals[0][0] > 0.3  # lines arrived as printed, not all at the end
    assert core.read_namespaced_pod_log(pod.metadata.name, NS, timestamps=True).split("\n")[0].endswith("Z 0")


def test_missing_service_account_blocks_pod_creation_until_it_exists(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job("needs-sa", python("pass"), pod={"serviceAccountName": "runner"}))
    event = wait_for(
        lambda: [
            e
            for e in core.list_namespaced_event(NS, field_selector="involvedObject.name=needs-sa").items
            if e.reason == "FailedCreate"
        ]
    )[0]
    assert event.type == "Warning" and 'serviceaccount "runner" not found' in event.message
    assert job_pods(core, "needs-sa") == []
    core.create_namespaced_service_account(NS, {"metadata": {"name": "runner"}})
    assert conditions(finished(batch, "needs-sa"))[-1][0] == "Complete"


def test_env_from_secret_field_refs_and_expansion(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    core.create_namespaced_secret(
        NS, {"metadata": {"name": "creds"}, "data": {"token": base64.b64encode(b"s3cret").decode()}}
    )
    env = [
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "GREETING", "value": "token=$(TOKEN)"},
    ]
    code = "import os, sys; print(os.environ['GREETING'], os.environ['POD'], sys.argv[1], sep='|')"
    batch.create_namespaced_job(NS, job("env", python(code) + ["$(TOKEN)", "$$(TOKEN)"], container={"env": env}))
    assert conditions(finished(batch, "env"))[-1][0] == "Complete"
    (pod,) = job_pods(core, "env")
    assert core.read_namespaced_pod_log(pod.metadata.name, NS) == f"token=s3cret|{pod.metadata.name}|s3cret\n"


def test_missing_secret_is_create_container_config_error_until_it_exists(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    batch.create_namespaced_job(NS, job("cfg", python("import os; print(os.environ['TOKEN'])"), container={"env": env}))

    def waiting() -> Any:
        pods = job_pods(core, "cfg")
        statuses = pods[0].status.container_statuses if pods and pods[0].status else None
        return (
            statuses
            and statuses[0].state.waiting
            and statuses[0].state.waiting.reason == "CreateContainerConfigError"
            and pods[0]
        )

    pod = wait_for(waiting)
    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.message == 'secret "later" not found'
    with pytest.raises(ApiException) as not_started:
        core.read_namespaced_pod_log(pod.metadata.name, NS)
    assert not_started.value.status == 400 and "waiting to start" in status_of(not_started.value)["message"]

    core.create_namespaced_secret(NS, {"metadata": {"name": "later"}, "stringData": {"token": "now"}})
    assert conditions(finished(batch, "cfg"))[-1][0] == "Complete"
    assert core.read_namespaced_pod_log(pod.metadata.name, NS) == "now\n"


def test_backoff_limit_retries_then_fails(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job("flaky", python("import sys; print('boom'); sys.exit(3)"), backoffLimit=2))
    done = finished(batch, "flaky")
    assert conditions(done) == [
        ("FailureTarget", "True", "BackoffLimitExceeded"),
        ("Failed", "True", "BackoffLimitExceeded"),
    ]
    assert done.status.failed == 3 and not done.status.succeeded and done.status.completion_time is None
    pods = job_pods(core, "flaky")
    assert len(pods) == 3 and {p.status.phase for p in pods} == {"Failed"}
    assert {p.status.container_statuses[0].state.terminated.exit_code for p in pods} == {3}
    events = core.list_namespaced_event(NS, field_selector="involvedObject.name=flaky").items
    assert any(e.reason == "BackoffLimitExceeded" and e.type == "Warning" for e in events)


def test_active_deadline_kills_the_process(tmp_path: Path, batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    # time_scale 0.02: 150 simulated seconds are three real ones, time enough for a loaded machine to start Python.
    batch.create_namespaced_job(NS, job("slow", python(code), activeDeadlineSeconds=150, backoffLimit=0))
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
    done = finished(batch, "slow")
    assert conditions(done) == [("FailureTarget", "True", "DeadlineExceeded"), ("Failed", "True", "DeadlineExceeded")]
    assert done.status.failed == 1
    wait_for(lambda: not pid_alive(pid))
    wait_for(lambda: job_pods(core, "slow") == [])


def test_injected_oom_kill_and_image_pull_failure(
    kube: FakeKubernetes, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    kube.inject_pod_failure("oom", "OOMKilled")
    kube.inject_pod_failure("pull", "ImagePullBackOff")
    batch.create_namespaced_job(NS, job("oom", python("import time; time.sleep(30)"), backoffLimit=0))
    batch.create_namespaced_job(NS, job("pull", python("print('never')")))

    done = finished(batch, "oom")
    assert conditions(done)[-1][:2] == ("Failed", "True")
    (oom_pod,) = job_pods(core, "oom")
    terminated = oom_pod.status.container_statuses[0].state.terminated
    assert (terminated.reason, terminated.exit_code, oom_pod.status.phase) == ("OOMKilled", 137, "Failed")

    def pull_waiting() -> Any:
        pods = job_pods(core, "pull")
        statuses = pods and pods[0].status and pods[0].status.container_statuses
        return (
            statuses
            and statuses[0].state.waiting
            and statuses[0].state.waiting.reason == "ImagePullBackOff"
            and pods[0]
        )

    pull_pod = wait_for(pull_waiting)
    assert pull_pod.status.phase == "Pending"
    assert not batch.read_namespaced_job("pull", NS).status.conditions
    with pytest.raises(ApiException) as no_logs:
        core.read_namespaced_pod_log(pull_pod.metadata.name, NS)
    assert no_logs.value.status == 400


def test_eviction_ignored_by_pod_failure_policy(
    kube: FakeKubernetes, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    kube.inject_pod_failure("evict", "Evicted")
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    batch.create_namespaced_job(
        NS, job("evict", python("import time; time.sleep(0.5); print('done')"), backoffLimit=0, podFailurePolicy=policy)
    )
    done = finished(batch, "evict")
    assert conditions(done)[-1][:2] == ("Complete", "True")
    assert done.status.succeeded == 1 and not done.status.failed  # the eviction did not count against backoffLimit
    pods = {p.status.phase: p for p in job_pods(core, "evict")}
    evicted = pods["Failed"]
    assert evicted.status.reason == "Evicted"
    assert any(c.type == "DisruptionTarget" and c.status == "True" for c in evicted.status.conditions)
    assert "Succeeded" in pods


def test_pod_failure_policy_fail_job_on_exit_code(batch: client.BatchV1Api) -> None:
    policy = {
        "rules": [{"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]
    }
    batch.create_namespaced_job(NS, job("fatal", python("raise SystemExit(42)"), podFailurePolicy=policy))
    done = finished(batch, "fatal")
    assert [c[2] for c in conditions(done)] == ["PodFailurePolicy", "PodFailurePolicy"]
    assert "failed with exit code 42 matching FailJob rule at index 0" in done.status.conditions[-1].message
    assert done.status.failed == 1  # no retries despite the default backoffLimit of 6


def test_ttl_after_finished_deletes_job_and_pods(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job("short-lived", python("pass"), ttlSecondsAfterFinished=10))
    wait_for(lambda: not batch.list_namespaced_job(NS, field_selector="metadata.name=short-lived").items)
    wait_for(lambda: job_pods(core, "short-lived") == [])


def test_suspended_job_has_no_pods_until_resumed(batch: client.BatchV1Api, core: client.CoreV1Api) -> None:
    batch.create_namespaced_job(NS, job("paused", python("pass"), suspend=True))
    suspended = wait_for(lambda: (j := batch.read_namespaced_job("paused", NS)).status.conditions and j)
    assert conditions(suspended) == [("Suspended", "True", "JobSuspended")]
    assert suspended.status.start_time is None and job_pods(core, "paused") == []
    batch.patch_namespaced_job("paused", NS, {"spec": {"suspend": False}})
    done = finished(batch, "paused")
    assert ("Suspended", "False", "JobResumed") in conditions(done)
    assert conditions(done)[-1][0] == "Complete"


# -- deletion ---------------------------------------------------------------------------------


def test_foreground_deletion_waits_for_pods(
    tmp_path: Path, kube: FakeKubernetes, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    batch.create_namespaced_job(NS, job("busy", python(code)))
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
    wait_for(lambda: batch.read_namespaced_job("busy", NS).status.ready == 1)

    # Read raw: kubernetes<31 (which kfp pins) would squeeze the returned Job into a V1Status.
    response = json.loads(batch.delete_namespaced_job("busy", NS, propagation_policy="Foreground",
                                                      _preload_content=False).data)
    assert response["metadata"]["deletionTimestamp"] and "foregroundDeletion" in response["metadata"]["finalizers"]
    wait_for(lambda: not batch.list_namespaced_job(NS).items)
    assert job_pods(core, "busy") == []
    wait_for(lambda: not pid_alive(pid))


def test_job_deletion_orphans_pods_by_default_like_batch_v1(
    kube: FakeKubernetes, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(NS, job("orphaner", python("pass")))
    finished(batch, "orphaner")
    _, _, headers = batch.delete_namespaced_job_with_http_info("orphaner", NS)
    assert "propagationPolicy=Background" in headers["Warning"]
    wait_for(lambda: not batch.list_namespaced_job(NS).items)
    (pod,) = job_pods(core, "orphaner")
    assert not pod.metadata.owner_references


def test_delete_collection_by_label_kills_matching_jobs_pods(
    tmp_path: Path, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    batch.create_namespaced_job(
        NS, {**job("doomed", python(code)), "metadata": {"name": "doomed", "labels": {"run": "r1"}}}
    )
    batch.create_namespaced_job(
        NS, {**job("kept", python("pass"), suspend=True), "metadata": {"name": "kept", "labels": {"run": "r2"}}}
    )
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text()))
    batch.delete_collection_namespaced_job(NS, label_selector="run=r1", propagation_policy="Background")
    wait_for(lambda: [j.metadata.name for j in batch.list_namespaced_job(NS).items] == ["kept"])
    wait_for(lambda: job_pods(core, "doomed") == [])
    wait_for(lambda: not pid_alive(pid))


def test_unsupported_methods_and_paths(kube: FakeKubernetes) -> None:
    connection = http.client.HTTPConnection(kube.url.removeprefix("http://"))
    for method, path, expected in [
        ("PUT", f"/api/v1/namespaces/{NS}/configmaps", 405),  # no update on a collection
        ("POST", "/api/v1/pods", 405),  # creating needs a namespace
        ("GET", "/apis/example.com/v1/widgets", 404),
        ("GET", f"/api/v1/namespaces/{NS}/pods/nope/exec", 404),
    ]:
        connection.request(method, path, body="{}", headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        body = json.loads(response.read())
        assert (response.status, body["kind"], body["code"]) == (expected, "Status", expected), (method, path)
    connection.close()


def test_owner_references_cascade_recursively(core: client.CoreV1Api) -> None:
    def owned(name: str, owner: Any | None) -> Any:
        meta: dict[str, Any] = {"name": name}
        if owner is not None:
            meta["ownerReferences"] = [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid}
            ]
        return core.create_namespaced_config_map(NS, {"metadata": meta})

    root = owned("root", None)
    child = owned("child", root)
    owned("grandchild", child)
    owned("bystander", None)
    core.delete_namespaced_config_map("root", NS)
    wait_for(lambda: [c.metadata.name for c in core.list_namespaced_config_map(NS).items] == ["bystander"])


# -- watch, selectors, pagination -------------------------------------------------------------


def test_watch_streams_job_events_from_a_resource_version(batch: client.BatchV1Api) -> None:
    start = batch.list_namespaced_job(NS).metadata.resource_version
    batch.create_namespaced_job(NS, job("watched", python("pass"), suspend=True))
    wait_for(lambda: batch.read_namespaced_job("watched", NS).status.conditions)
    batch.delete_namespaced_job("watched", NS, propagation_policy="Background")

    stream = watch.Watch().stream(batch.list_namespaced_job, NS, resource_version=start, timeout_seconds=1)
    events = [(e["type"], e["object"].metadata.name) for e in stream]
    assert events[0] == ("ADDED", "watched") and events[-1] == ("DELETED", "watched")
    assert ("MODIFIED", "watched") in events
    assert isinstance(e_obj := batch.list_namespaced_job(NS), client.V1JobList) and e_obj.items == []


def test_watch_delivers_live_events_with_selectors(kube: FakeKubernetes, core: client.CoreV1Api) -> None:
    import threading

    core.create_namespaced_config_map(NS, {"metadata": {"name": "before", "labels": {"app": "x"}}})
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        for event in watch.Watch().stream(
            core.list_namespaced_config_map, NS, label_selector="app=x", timeout_seconds=1
        ):
            seen.append((event["type"], event["object"].metadata.name))

    consumer = threading.Thread(target=consume)
    consumer.start()
    wait_for(lambda: ("ADDED", "before") in seen)  # no resourceVersion: initial state as synthetic ADDED
    core.create_namespaced_config_map(NS, {"metadata": {"name": "other", "labels": {"app": "y"}}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "live", "labels": {"app": "x"}}})
    core.patch_namespaced_config_map("live", NS, {"metadata": {"labels": {"app": "z"}}})  # leaves the selection
    consumer.join()
    assert seen == [("ADDED", "before"), ("ADDED", "live"), ("DELETED", "live")]


def test_watch_from_compacted_resource_version_is_410(tmp_path: Path) -> None:
    with FakeKubernetes(time_scale=0.02, watch_history=5) as kube:
        batch = client.BatchV1Api(kube.api_client())
        old = batch.list_namespaced_job(NS).metadata.resource_version
        for i in range(4):
            batch.create_namespaced_job(NS, job(f"churn-{i}", python("pass"), suspend=True))
        wait_for(lambda: len(kube.objects("Event")) >= 4)  # Suspended events and status updates
        with pytest.raises(ApiException) as expired:
            list(watch.Watch().stream(batch.list_namespaced_job, NS, resource_version=old, timeout_seconds=1))
        assert expired.value.status == 410
        # The raw stream is what the real server sends: HTTP 200 and one ERROR event with a 410 Status.
        raw = urllib.request.urlopen(f"{kube.url}/apis/batch/v1/namespaces/{NS}/jobs?watch=true&resourceVersion={old}")
        event = json.loads(raw.readline())
        assert event["type"] == "ERROR" and event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"


def test_label_and_field_selectors_and_pagination(
    kube: FakeKubernetes, core: client.CoreV1Api, batch: client.BatchV1Api
) -> None:
    for name, labels in [
        ("a", {"tier": "web", "env": "prod"}),
        ("b", {"tier": "db", "env": "prod"}),
        ("c", {"tier": "web"}),
    ]:
        core.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": labels}})

    def names(**kwargs: Any) -> list[str]:
        return [c.metadata.name for c in core.list_namespaced_config_map(NS, **kwargs).items]

    assert names(label_selector="tier=web") == ["a", "c"]
    assert names(label_selector="tier==web,env=prod") == ["a"]
    assert names(label_selector="env!=prod") == ["c"]  # also matches objects without the label
    assert names(label_selector="tier in (db, cache)") == ["b"]
    assert names(label_selector="tier notin (web)") == ["b"]
    assert names(label_selector="env") == ["a", "b"]
    assert names(label_selector="!env") == ["c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b,metadata.namespace=default") == ["a", "c"]
    with pytest.raises(ApiException) as bad_label:
        core.list_namespaced_config_map(NS, label_selector="tier in (web")
    assert bad_label.value.status == 400
    with pytest.raises(ApiException) as bad_field:
        core.list_namespaced_config_map(NS, field_selector="data.x=1")
    assert bad_field.value.status == 400

    first = core.list_namespaced_config_map(NS, limit=2)
    assert [c.metadata.name for c in first.items] == ["a", "b"] and first.metadata.remaining_item_count == 1
    rest = core.list_namespaced_config_map(NS, limit=2, _continue=first.metadata._continue)
    assert [c.metadata.name for c in rest.items] == ["c"] and not rest.metadata._continue
    assert int(first.metadata.resource_version) > 0

    batch.create_namespaced_job(NS, job("phase", python("pass")))
    finished(batch, "phase")
    assert len(core.list_namespaced_pod(NS, field_selector="status.phase=Succeeded").items) == 1
    assert core.list_namespaced_pod(NS, field_selector="status.phase=Running").items == []
    assert len(core.list_pod_for_all_namespaces(label_selector="job-name=phase").items) == 1


# -- other kinds ------------------------------------------------------------------------------


def test_custom_resource_definition_serves_custom_objects(kube: FakeKubernetes, tmp_path: Path) -> None:
    api_client = kube.api_client()
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "trainings.ml.example.com"},
        "spec": {
            "group": "ml.example.com",
            "scope": "Namespaced",
            "names": {"plural": "trainings", "singular": "training", "kind": "Training"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {"type": "object", "properties": {"epochs": {"type": "integer"}}},
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    }
    client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd)
    wait_for(
        lambda: any(
            c.type == "Established" and c.status == "True"
            for c in client.ApiextensionsV1Api(api_client)
            .read_custom_resource_definition("trainings.ml.example.com")
            .status.conditions
            or []
        )
    )
    custom = client.CustomObjectsApi(api_client)
    body = {"apiVersion": "ml.example.com/v1", "kind": "Training", "metadata": {"name": "t1"}, "spec": {"epochs": 3}}
    created = custom.create_namespaced_custom_object("ml.example.com", "v1", NS, "trainings", body)
    assert created["metadata"]["generation"] == 1 and "status" not in created
    with pytest.raises(ApiException) as wrong_type:
        custom.create_namespaced_custom_object(
            "ml.example.com", "v1", NS, "trainings", {**body, "metadata": {"name": "t2"}, "spec": {"epochs": "many"}}
        )
    assert wrong_type.value.status == 422 and causes(wrong_type.value) == ["spec.epochs"]

    updated = kube.set_status(
        "ml.example.com/v1", "Training", NS, "t1", {"phase": "Running", "conditions": [{"type": "Ready"}]}
    )
    fetched = custom.get_namespaced_custom_object("ml.example.com", "v1", NS, "trainings", "t1")
    assert fetched["status"]["phase"] == "Running"
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    patched = custom.patch_namespaced_custom_object_status(
        "ml.example.com", "v1", NS, "trainings", "t1", {"status": {"phase": "Done"}}
    )
    assert patched["status"] == {"phase": "Done", "conditions": [{"type": "Ready"}]}
    spec_patch = custom.patch_namespaced_custom_object(
        "ml.example.com", "v1", NS, "trainings", "t1", {"spec": {"epochs": 5}, "status": {"phase": "ignored"}}
    )
    assert spec_patch["metadata"]["generation"] == 2 and spec_patch["status"]["phase"] == "Done"

    dyn = dynamic.DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))
    trainings = dyn.resources.get(api_version="ml.example.com/v1", kind="Training")
    assert [t.metadata.name for t in trainings.get(namespace=NS).items] == ["t1"]

    client.ApiextensionsV1Api(api_client).delete_custom_resource_definition("trainings.ml.example.com")
    with pytest.raises(ApiException) as unserved:
        wait_for(
            lambda: custom.list_namespaced_custom_object("ml.example.com", "v1", NS, "trainings") and False, timeout=2
        )
    assert unserved.value.status == 404


def test_rbac_service_accounts_and_admission(core: client.CoreV1Api, kube: FakeKubernetes) -> None:
    rbac = client.RbacAuthorizationV1Api(kube.api_client())
    core.create_namespaced_service_account(NS, {"metadata": {"name": "runner"}})
    rbac.create_namespaced_role(
        NS,
        {
            "metadata": {"name": "job-runner"},
            "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]}],
        },
    )
    binding = rbac.create_namespaced_role_binding(
        NS,
        {
            "metadata": {"name": "job-runner"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "job-runner"},
            "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": NS}],
        },
    )
    binding.role_ref.name = "other"
    with pytest.raises(ApiException) as immutable:
        rbac.replace_namespaced_role_binding("job-runner", NS, binding)
    assert immutable.value.status == 422 and causes(immutable.value) == ["roleRef"]
    with pytest.raises(ApiException) as no_verbs:
        rbac.create_namespaced_role(
            NS, {"metadata": {"name": "bad"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": []}]}
        )
    assert no_verbs.value.status == 422

    pod = {
        "metadata": {"name": "p"},
        "spec": {
            "serviceAccountName": "ghost",
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "i", "command": ["true"]}],
        },
    }
    with pytest.raises(ApiException) as forbidden:
        core.create_namespaced_pod(NS, pod)
    assert forbidden.value.status == 403 and 'serviceaccount "ghost" not found' in status_of(forbidden.value)["message"]
    # Every namespace exists implicitly and has its default ServiceAccount.
    assert core.read_namespaced_service_account("default", "fresh").metadata.namespace == "fresh"


def test_injected_api_errors(kube: FakeKubernetes, core: client.CoreV1Api) -> None:
    kube.inject_api_errors(500, method="GET", path_contains="/configmaps")
    kube.inject_api_errors(429, count=2, method="POST")
    with pytest.raises(ApiException) as internal:
        core.list_namespaced_config_map(NS)
    assert internal.value.status == 500 and status_of(internal.value)["reason"] == "InternalError"
    assert core.list_namespaced_config_map(NS).items == []
    for _ in range(2):
        with pytest.raises(ApiException) as throttled:
            core.create_namespaced_config_map(NS, {"metadata": {"name": "x"}})
        assert throttled.value.status == 429 and throttled.value.headers["Retry-After"] == "1"
        assert status_of(throttled.value)["details"]["retryAfterSeconds"] == 1
    assert core.create_namespaced_config_map(NS, {"metadata": {"name": "x"}}).metadata.name == "x"
    methods = [m for m, path, _ in kube.requests if path.endswith("/configmaps")]
    assert methods == ["GET", "GET", "POST", "POST", "POST"]


def test_kubeconfig_points_the_official_loader_at_the_fake(kube: FakeKubernetes, tmp_path: Path) -> None:
    path = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="team-a")
    api_client = config.new_client_from_config(config_file=str(path), context="fake")
    assert api_client.configuration.host == kube.url
    _, active = config.list_kube_config_contexts(config_file=str(path))
    assert active["context"]["namespace"] == "team-a"
    assert "default" in [n.metadata.name for n in client.CoreV1Api(api_client).list_namespace().items]


def test_native_sidecars_run_beside_the_main_container_and_stop_after_it(
    batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    """A sidecar (an init container with restartPolicy Always) starts before the next init container, keeps running
    beside the main container, gets SIGTERM once the main container has exited, and does not decide the phase;
    every container sees the pod's emptyDir at its mountPath."""
    mount = [{"name": "shared", "mountPath": "/shared"}]
    sidecar = {"name": "saver", "image": "python:3.11-slim", "restartPolicy": "Always", "volumeMounts": mount,
               "command": python(
                   "import signal, sys, time\n"
                   "signal.signal(signal.SIGTERM, lambda *a: (print(open('/shared/out').read(), end='', flush=True), "
                   "sys.exit(3)))\n"
                   "open('/shared/listening', 'w').close()\n"
                   "while True: time.sleep(0.1)")}
    init = {"name": "stage", "image": "busybox", "volumeMounts": mount,
            "command": ["sh", "-c", "while [ ! -e /shared/listening ]; do sleep 0.05; done; echo staged > /shared/in"]}
    batch.create_namespaced_job(NS, job(
        "sidecar", ["sh", "-c", "cat /shared/in > /shared/out; echo main done"],
        container={"volumeMounts": mount},
        pod={"initContainers": [sidecar, init], "volumes": [{"name": "shared", "emptyDir": {}}]}))

    done = finished(batch, "sidecar")
    assert done.status.succeeded == 1
    (pod,) = job_pods(core, "sidecar")
    assert pod.status.phase == "Succeeded"
    statuses = {s.name: s for s in pod.status.init_container_statuses}
    assert statuses["saver"].state.terminated.exit_code == 3, "stopped after main, and its exit code is ignored"
    assert statuses["stage"].state.terminated.exit_code == 0
    assert core.read_namespaced_pod_log(pod.metadata.name, NS, container="main") == "main done\n"
    assert core.read_namespaced_pod_log(pod.metadata.name, NS, container="saver") == "staged\n", \
        "the sidecar read what main wrote from what the init container wrote"
