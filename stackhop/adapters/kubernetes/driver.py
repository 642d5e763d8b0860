"""The Kubernetes driver: the core scheduler, with Jobs as attempts.

Runs either on the user's machine (client mode, a detached process) or inside the cluster
as a Job (`python -m stackhop.entrypoint --driver kubernetes`), with the same code. It
creates each step's Job from the compiled template when the step is ready, follows all of
the run's Jobs through one labelled watch (re-listing when the server answers 410 Gone),
lists pods only while a Job is still waiting to run, copies each finished step's pod logs to
the artifact store before the Job's TTL removes them, and deletes Jobs in the foreground
when the run is cancelled.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from typing import Any

from stackhop.adapters.kubernetes import status as kstatus
from stackhop.adapters.kubernetes.client import api_client, api_message
from stackhop.adapters.kubernetes.container import ANN_FILL, fill_values
from stackhop.adapters.kubernetes.manifests import (
    ANN_ACTION, ANN_FAILURE, ANN_OUTPUTS, ANN_SUCCESS, LABEL_RUN, bind_job, bind_resource, owner_reference, step_of,
)
from stackhop.adapters.kubernetes.settings import KubernetesSettings
from stackhop.core.scheduler import AttemptEnd, Instance, Scheduler


def with_retries(call: Any, attempts: int = 5) -> Any:
    """Retry what the API server says is transient (429, 5xx), honouring Retry-After."""
    from kubernetes.client.exceptions import ApiException

    for attempt in range(1, attempts + 1):
        try:
            return call()
        except ApiException as exc:
            if exc.status not in (429, 500, 502, 503, 504) or attempt == attempts:
                raise
            wait = float((exc.headers or {}).get("Retry-After") or 0) or min(0.2 * 2 ** attempt, 5.0)
            time.sleep(wait)


class JobWatcher:
    """Keeps a current copy of the run's Jobs: one list, then a watch from its resourceVersion."""

    def __init__(self, batch: Any, namespace: str, selector: str, timeout_seconds: int = 30):
        self.batch, self.namespace, self.selector = batch, namespace, selector
        self.timeout_seconds = timeout_seconds
        self.jobs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.relists = 0
        self._relist()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _relist(self) -> str:
        data = json.loads(self.batch.list_namespaced_job(
            self.namespace, label_selector=self.selector, _preload_content=False).data)
        with self.lock:
            self.jobs = {j["metadata"]["name"]: j for j in data["items"]}
        self.relists += 1
        self.resource_version = data["metadata"].get("resourceVersion", "")
        return self.resource_version

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        while not self.stopped.is_set():
            try:
                w = watch.Watch()
                for event in w.stream(self.batch.list_namespaced_job, self.namespace, label_selector=self.selector,
                                      resource_version=self.resource_version, timeout_seconds=self.timeout_seconds,
                                      allow_watch_bookmarks=False):
                    if self.stopped.is_set():
                        w.stop()
                        return
                    if event["type"] == "ERROR":
                        self._relist()
                        break
                    obj = event["raw_object"]
                    self.resource_version = obj["metadata"].get("resourceVersion", self.resource_version)
                    with self.lock:
                        if event["type"] == "DELETED":
                            self.jobs.pop(obj["metadata"]["name"], None)
                        else:
                            self.jobs[obj["metadata"]["name"]] = obj
            except ApiException as exc:
                if exc.status == 410:
                    self._relist()
                elif not self.stopped.is_set():
                    time.sleep(1)
            except Exception:
                if not self.stopped.is_set():
                    time.sleep(1)
                    try:
                        self._relist()
                    except Exception:
                        pass

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return dict(self.jobs)

    def stop(self) -> None:
        self.stopped.set()


class KubernetesDriver(Scheduler):
    backend_retries = True

    def __init__(self, spec: dict[str, Any]):
        super().__init__(spec)
        self.k8s = KubernetesSettings.model_validate(spec["settings"])
        self.ns = self.k8s.namespace
        self.templates = {step_of(d): d for d in spec["kubernetes"]["documents"]}
        from kubernetes import client

        self.api = api_client(self.k8s)
        self.batch = client.BatchV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.selector = f"{LABEL_RUN}={self.view.run_id}"
        self.owner = self._owner()
        self.watcher = JobWatcher(self.batch, self.ns, self.selector)
        self.seen: set[str] = set()
        self.stuck_since: dict[str, float] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        self._dynamic: Any = None

    def _owner(self) -> dict[str, Any] | None:
        """In-cluster, step Jobs are owned by the driver's Job, so deleting the run deletes them."""
        pod_name = os.environ.get("STACKHOP_DRIVER_POD")
        if not pod_name:
            return None
        pod = json.loads(self.core.read_namespaced_pod(pod_name, self.ns, _preload_content=False).data)
        for ref in pod["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "Job":
                job = json.loads(self.batch.read_namespaced_job(ref["name"], self.ns, _preload_content=False).data)
                return owner_reference(job)
        return None

    def wait_seconds(self) -> float:
        return self.k8s.poll_seconds

    # ------------------------------------------------------------------ starting
    def start(self, inst: Instance) -> None:
        from kubernetes.client.exceptions import ApiException

        template = self.templates.get(inst.step)
        if template is None:
            self.settle(inst, "FAILED", "not_compiled", f"the compiled document has no object for step {inst.step!r}")
            return
        if template.get("kind") != "Job" or step_of(template) == "_driver":
            self._start_resource(inst, template)
            return
        fill = (template["metadata"].get("annotations") or {}).get(ANN_FILL)
        try:
            values = fill_values(self.view, self.view.steps[inst.step], inst.index, json.loads(fill)) if fill else None
        except Exception as exc:
            self.settle(inst, "FAILED", "inputs", f"the inputs of container step {inst.key!r} cannot be read: {exc}")
            return
        job = bind_job(template, self.view.run_id, inst.index, self.owner, values)
        name = job["metadata"]["name"]
        try:
            with_retries(lambda: self.batch.create_namespaced_job(self.ns, job))
        except ApiException as exc:
            if exc.status != 409:  # 409: a restarted driver finds its own Job and adopts it
                self.settle(inst, "FAILED", f"api {exc.status}",
                            f"creating Job {self.ns}/{name} failed: {api_message(exc)}")
                return
        inst.handle = name

    def stop(self, inst: Instance) -> None:
        from kubernetes.client.exceptions import ApiException

        if inst.key in self.resources:
            self.events.put(AttemptEnd(inst.key, inst.attempts, ok=False, reason="cancelled"))
            return
        try:
            self.batch.delete_namespaced_job(inst.handle, self.ns, propagation_policy="Foreground")
        except ApiException as exc:
            if exc.status == 404:
                self.events.put(AttemptEnd(inst.key, inst.attempts, ok=False, reason="cancelled"))

    # ------------------------------------------------------------------ watching
    def tick(self) -> None:
        jobs = self.watcher.snapshot()
        running = [i for i in self.instances.values() if i.handle is not None and i.key not in self.resources]
        waiting = [i for i in running if i.handle in jobs and not (jobs[i.handle].get("status") or {}).get("succeeded")
                   and kstatus.job_outcome(jobs[i.handle], []).state == "running"]
        pods_by_job: dict[str, list[dict[str, Any]]] = {}
        if waiting:
            pods = json.loads(self.core.list_namespaced_pod(
                self.ns, label_selector=self.selector, _preload_content=False).data)["items"]
            for pod in pods:
                job_name = (pod["metadata"].get("labels") or {}).get("job-name", "")
                pods_by_job.setdefault(job_name, []).append(pod)
        now = time.time()
        for inst in running:
            job = jobs.get(inst.handle)
            if job is None:
                if inst.handle in self.seen and not inst.stopping:
                    self.events.put(AttemptEnd(inst.key, inst.attempts, ok=False, reason=f"Job {inst.handle} was deleted",
                                               native="Deleted", retryable=False))
                elif inst.stopping and inst.handle in self.seen:
                    self.events.put(AttemptEnd(inst.key, inst.attempts, ok=False, reason="cancelled"))
                continue
            self.seen.add(inst.handle)
            outcome = kstatus.job_outcome(job, pods_by_job.get(inst.handle, []))
            inst.native = outcome.native
            status = job.get("status") or {}
            inst.attempts = max(inst.attempts, int(status.get("failed") or 0) + int(status.get("active") or 0)
                                + int(status.get("succeeded") or 0))
            if outcome.state == "stuck":
                since = self.stuck_since.setdefault(inst.key, now)
                if outcome.waiting in kstatus.IMMEDIATELY_FATAL or now - since >= self.k8s.pending_grace_seconds:
                    self._finish(inst, ok=False, reason=outcome.reason, native=outcome.waiting, delete=True)
                continue
            self.stuck_since.pop(inst.key, None)
            if outcome.state == "failed" and inst.handle not in pods_by_job:
                outcome = kstatus.job_outcome(job, self._pods_of(inst.handle))
            if outcome.state == "succeeded" and self._runs_alone(inst):
                self.store.write_json(self.view.outputs_uri(inst.step, inst.index), {"scalars": {}, "artifacts": {}})
            if outcome.state in ("succeeded", "failed"):
                reason = outcome.reason
                step_error = self.error_message(inst) if outcome.state == "failed" else ""
                if step_error:
                    reason += f"; the step said: {step_error}"
                self._finish(inst, ok=outcome.state == "succeeded", reason=reason, native=outcome.native,
                             exit_code=outcome.exit_code)
        for key, res in list(self.resources.items()):
            self._check_resource(self.instances[key], res)

    def _finish(self, inst: Instance, *, ok: bool, reason: str, native: str, exit_code: int | None = None,
                delete: bool = False) -> None:
        self._persist_logs(inst)
        if delete:
            try:
                self.batch.delete_namespaced_job(inst.handle, self.ns, propagation_policy="Foreground")
            except Exception:
                pass
        if not ok and not reason:
            reason = self.error_message(inst)
        self.events.put(AttemptEnd(inst.key, inst.attempts, ok=ok, reason=reason, native=native,
                                   exit_code=exit_code, retryable=False))
        inst.native = native

    def _runs_alone(self, inst: Instance) -> bool:
        """A container step with nothing to move has no saver to write its (empty) record: the driver does."""
        pod = self.templates[inst.step]["spec"]["template"]["spec"]
        return self.view.steps[inst.step]["kind"] == "container" and not pod.get("initContainers")

    def on_settled(self, inst: Instance) -> None:
        """The saver beside a container step saves whatever the command left, even when the command failed or
        the run was cancelled; only a succeeded step keeps its record (the Job is gone, so the saver is done)."""
        if inst.status in ("FAILED", "CANCELLED") and self.view.steps.get(inst.step, {}).get("kind") == "container":
            with contextlib.suppress(Exception):
                self.store.remove(self.view.outputs_uri(inst.step, inst.index))

    def _pods_of(self, job_name: str) -> list[dict[str, Any]]:
        return json.loads(self.core.list_namespaced_pod(
            self.ns, label_selector=f"job-name={job_name}", _preload_content=False).data)["items"]

    def _persist_logs(self, inst: Instance) -> None:
        """Copy every pod's log for this step into the artifact store, oldest attempt first."""
        try:
            pods = self._pods_of(inst.handle)
            pods.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""))
            parts = []
            for n, pod in enumerate(pods, 1):
                text = self.core.read_namespaced_pod_log(pod["metadata"]["name"], self.ns, container="main")
                for beside in [c["name"] for c in pod["spec"].get("initContainers") or []]:  # silent unless they failed
                    with contextlib.suppress(Exception):
                        said = self.core.read_namespaced_pod_log(pod["metadata"]["name"], self.ns, container=beside)
                        if said.strip():
                            text += f"----- stackhop {beside} -----\n{said}"
                parts.append((f"===== attempt {n} ({pod['metadata']['name']}) =====\n" if len(pods) > 1 else "") + text)
            uri = self.store.step_meta(self.view.pipeline, self.view.run_id, inst.step, inst.index, "log.txt")
            self.store.write_bytes(uri, "".join(parts).encode())
        except Exception as exc:
            print(f"stackhop driver: could not save the logs of {inst.key}: {exc}", file=sys.stderr)

    # ------------------------------------------------------------------ resource ops
    def _resource_api(self, doc: dict[str, Any]) -> Any:
        if self._dynamic is None:
            from kubernetes import dynamic

            self._dynamic = dynamic.DynamicClient(self.api)
        return self._dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])

    def _start_resource(self, inst: Instance, template: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        doc = bind_resource(template, self.view.run_id, self.owner, self.view.parameters)
        ann = doc["metadata"].get("annotations") or {}
        action = ann.get(ANN_ACTION, "create")
        meta = doc["metadata"]
        ns = meta.get("namespace")
        what = f"{doc['kind']} {ns + '/' if ns else ''}{meta.get('name') or meta.get('generateName')}"
        try:
            api = self._resource_api(doc)
            if action == "create":
                created = api.create(body=doc, namespace=ns).to_dict()
            elif action == "apply":
                created = api.server_side_apply(body=doc, name=meta["name"], namespace=ns,
                                                field_manager="stackhop", force_conflicts=True).to_dict()
            elif action == "patch":
                created = api.patch(body=doc, name=meta["name"], namespace=ns,
                                    content_type="application/merge-patch+json").to_dict()
            else:
                api.delete(name=meta["name"], namespace=ns)
                created = doc
        except ApiException as exc:
            self.settle(inst, "FAILED", f"api {exc.status}", f"{action} {what} failed: {api_message(exc)}")
            return
        except Exception as exc:
            self.settle(inst, "FAILED", "api_error", f"{action} {what} failed: {exc}")
            return
        inst.handle = f"{doc['kind']}/{created['metadata']['name']}"
        self.resources[inst.key] = {
            "doc": doc, "name": created["metadata"]["name"], "namespace": ns, "action": action,
            "success": kstatus.parse_conditions(ann.get(ANN_SUCCESS)),
            "failure": kstatus.parse_conditions(ann.get(ANN_FAILURE)),
            "outputs": json.loads(ann.get(ANN_OUTPUTS) or "{}"),
        }
        self._check_resource(inst, self.resources[inst.key])

    def _check_resource(self, inst: Instance, res: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        if inst.handle is None:
            self.resources.pop(inst.key, None)
            return
        try:
            obj = self._resource_api(res["doc"]).get(name=res["name"], namespace=res["namespace"]).to_dict()
        except ApiException as exc:
            if exc.status == 404 and res["action"] == "delete":
                obj = None
            else:
                return
        if res["action"] == "delete":
            if obj is None or not res["success"]:
                self._resource_done(inst, res, ok=True, obj={})
            return
        for path, op, value in res["failure"]:
            if kstatus.condition_holds(obj, path, op, value):
                self._resource_done(inst, res, ok=False, obj=obj,
                                    reason=f"{res['doc']['kind']} {res['name']}: failure condition {path} {op} {value} holds")
                return
        if all(kstatus.condition_holds(obj, path, op, value) for path, op, value in res["success"]):
            self._resource_done(inst, res, ok=True, obj=obj)

    def _resource_done(self, inst: Instance, res: dict[str, Any], *, ok: bool, obj: dict[str, Any], reason: str = "") -> None:
        self.resources.pop(inst.key, None)
        if ok:
            scalars = {name: str(kstatus.lookup(obj, path) if kstatus.lookup(obj, path) is not None else "")
                       for name, path in res["outputs"].items()}
            self.store.write_json(self.view.outputs_uri(inst.step, inst.index), {"scalars": scalars, "artifacts": {}})
        self.events.put(AttemptEnd(inst.key, inst.attempts, ok=ok, reason=reason,
                                   native="ConditionMet" if ok else "FailureConditionMet", retryable=False))

    # ------------------------------------------------------------------ shutdown
    def close(self) -> None:
        self.watcher.stop()


def drive(spec_uri: str) -> int:
    from stackhop.core.resolve import read_spec

    KubernetesDriver(read_spec(spec_uri)).run()
    return 0  # the run ended, whatever its status (state.json says it): the Job must not drive it again
