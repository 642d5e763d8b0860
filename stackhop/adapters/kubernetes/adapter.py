"""The Kubernetes adapter: compile to Jobs, submit by starting a driver, read status from its files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from typing import Any, ClassVar

from stackhop.adapters.kubernetes.manifests import (
    LABEL_RUN, bind_job, compile_manifests, dump, manifest_parameters, step_of,
)
from stackhop.adapters.kubernetes.schemas import validate_manifest
from stackhop.adapters.kubernetes.settings import KubernetesSettings
from stackhop.core import run_files
from stackhop.core.adapter import Adapter, BackendRef, Capability, Compiled, RefData, RunRequest
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.ir import Pipeline
from stackhop.core.runs import ArtifactRef, RunState, RunStatus
from stackhop.errors import ConfigError, StackhopError

class KubernetesRef(RefData):
    spec: str
    state: str
    namespace: str
    run_id: str
    mode: str = "client"
    """Where the driver runs: `client` (a process on this machine, `pid`) or `cluster` (the Job `driver_job`)."""
    pid: int | None = None
    driver_job: str | None = None


class KubernetesAdapter(Adapter):
    name: ClassVar[str] = "kubernetes"
    Settings = KubernetesSettings
    Ref = KubernetesRef
    capabilities = frozenset({
        Capability.CONDITIONS, Capability.PARALLEL_FOR, Capability.RUNTIME_FAN_OUT, Capability.FAN_IN, Capability.ONE_OF,
        Capability.EXIT_HANDLER, Capability.RETRIES, Capability.RESUME,
        Capability.CACHING, Capability.TIMEOUTS, Capability.SECRETS, Capability.GPU, Capability.RESOURCE_OPS,
        Capability.CONTAINER_STEPS, Capability.NODE_SELECTORS, Capability.TOLERATIONS,
    })
    poll_seconds = (0.5, 5.0)
    settings: KubernetesSettings

    @classmethod
    def drive(cls, spec_uri: str) -> int:
        from stackhop.adapters.kubernetes.driver import drive

        return drive(spec_uri)

    # ------------------------------------------------------------------ compile (pure)
    def compile(self, ir: Pipeline) -> Compiled:
        defaults = self.stack.config.defaults
        docs = compile_manifests(ir, self.settings, self.stack.artifact_root, defaults.image if defaults else None)
        steps = {s.name: s for s in ir.steps}
        for doc in docs:
            step = steps.get(step_of(doc))
            validate_manifest(doc, step_of(doc) or doc["metadata"].get("name", "?"),
                              parameters=manifest_parameters(ir, step) if step else None, pipeline=ir.name)
        notes = []
        beside = sorted({c["image"] for d in docs if d["kind"] == "Job"
                         for c in d["spec"]["template"]["spec"].get("initContainers") or []})
        if beside:
            notes.append(f"container steps run their own command in their own image; an init container and a native "
                         f"sidecar in {', '.join(beside)} move their data, which needs Kubernetes 1.29 or later.")
        if any(s.settings.retry and s.settings.retry.backoff_seconds != 1.0 for s in ir.steps):
            notes.append("Kubernetes Jobs retry with their own backoff (10s doubling, capped at 6 min); "
                         "retry backoff settings are not applied.")
        text = dump(docs)
        return Compiled(self.name, {"kubernetes.yaml": text.encode()}, tuple(notes))

    # ------------------------------------------------------------------ submit
    def submit(self, compiled: Compiled, request: RunRequest) -> BackendRef:
        import yaml

        docs = [d for d in yaml.safe_load_all(compiled.files["kubernetes.yaml"]) if d]
        store = ArtifactStore(request.artifact_root)
        pipeline = request.pipeline["name"]
        spec_uri = store.run_meta(pipeline, request.run_id, "run.json")
        state_uri = store.run_meta(pipeline, request.run_id, "state.json")
        ref = KubernetesRef(spec=spec_uri, state=state_uri, namespace=self.settings.namespace, run_id=request.run_id,
                            mode=self.settings.driver)
        if store.exists(spec_uri):  # a retried submit: the run already exists
            return ref.ref(self.name)
        spec = {
            "run_id": request.run_id, "pipeline": request.pipeline, "parameters": request.parameters,
            "artifact_root": store.root, "code": {"source_dir": None, "archive_uri": request.code.archive_uri,
                                                  "digest": request.code.digest},
            "caching": request.caching, "settings": self.settings.model_dump(mode="json"),
            "store_path": request.store_path if self.settings.driver == "client" else None,
            **({"resume": request.resume} if request.resume else {}),
            "kubernetes": {"documents": [d for d in docs if step_of(d) != "_driver" and d["kind"] != "ServiceAccount"
                                         and d["kind"] not in ("Role", "RoleBinding")]},
        }
        if any(c.get("restartPolicy") == "Always" for d in docs if d.get("kind") == "Job"
               for c in d["spec"]["template"]["spec"].get("initContainers") or []):
            self._check_sidecars(pipeline)
        store.write_json(spec_uri, spec)
        if self.settings.driver == "client":
            ref = ref.model_copy(update={"pid": self._start_local_driver(store, spec_uri, pipeline, request.run_id)})
        else:
            ref = ref.model_copy(update={"driver_job": self._start_cluster_driver(docs, request.run_id)})
        return ref.ref(self.name)

    def _check_sidecars(self, pipeline: str) -> None:
        """Before 1.29 an API server drops an init container's restartPolicy, and the saver would block the pod forever."""
        from kubernetes import client

        from stackhop.adapters.kubernetes.client import api_client
        from stackhop.adapters.kubernetes.container import SIDECARS_SINCE

        try:
            info = client.VersionApi(api_client(self.settings)).get_code()
            version = (int(info.major), int(re.sub(r"\D.*", "", info.minor)))
        except Exception:  # unknown: let the stager's wait for the saver say it, if it comes to that
            return
        if version < SIDECARS_SINCE:
            raise ConfigError(
                f"pipeline {pipeline!r} has container steps, which need native sidecar containers (Kubernetes 1.29 or "
                f"later), but the cluster of stack {self.stack.name!r} runs {version[0]}.{version[1]}; upgrade the "
                "cluster, or make those steps Python steps."
            )

    def _start_local_driver(self, store: ArtifactStore, spec_uri: str, pipeline: str, run_id: str) -> int:
        log_uri = store.run_meta(pipeline, run_id, "driver.log")
        if store.is_local:
            log_path = store.local_path(log_uri)
        else:
            import tempfile

            log_path = tempfile.mkstemp(prefix="stackhop-driver-", suffix=".log")[1]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "stackhop.entrypoint", "--spec", spec_uri, "--driver", self.name],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        _children[proc.pid] = proc
        return proc.pid

    def _start_cluster_driver(self, docs: list[dict[str, Any]], run_id: str) -> str:
        from kubernetes import client, utils
        from kubernetes.client.exceptions import ApiException

        from stackhop.adapters.kubernetes.client import api_client, api_message

        api = api_client(self.settings)
        for doc in docs:
            if doc["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
                try:
                    utils.create_from_dict(api, doc, namespace=self.settings.namespace)
                except utils.FailToCreateError as exc:
                    if any(e.status != 409 for e in exc.api_exceptions):
                        raise StackhopError(
                            f"creating {doc['kind']} {doc['metadata']['name']} failed: "
                            f"{api_message(exc.api_exceptions[0])}"
                        ) from None
        template = next(d for d in docs if step_of(d) == "_driver")
        job = bind_job(template, run_id)
        try:
            client.BatchV1Api(api).create_namespaced_job(self.settings.namespace, job)
        except ApiException as exc:
            if exc.status != 409:
                raise StackhopError(
                    f"creating the driver Job {self.settings.namespace}/{job['metadata']['name']} failed: "
                    f"{api_message(exc)}"
                ) from None
        return job["metadata"]["name"]

    # ------------------------------------------------------------------ status, logs, cancel
    def _driver_state(self, ref: BackendRef) -> str:
        """'alive', 'gone' or 'failed', from the local pid or the driver Job."""
        r = KubernetesRef.of(ref)
        if r.mode == "client":
            pid = r.pid
            child = _children.get(pid) if pid else None
            if child is not None:
                return "alive" if child.poll() is None else "gone"
            try:
                os.kill(pid, 0) if pid else None
            except ProcessLookupError:
                return "gone"
            return "alive" if pid else "gone"
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        from stackhop.adapters.kubernetes.client import api_client

        try:
            job = client.BatchV1Api(api_client(self.settings)).read_namespaced_job(
                r.driver_job, r.namespace, _preload_content=False)
        except ApiException as exc:
            return "gone" if exc.status == 404 else "alive"
        status = json.loads(job.data).get("status") or {}
        ended = {c["type"] for c in status.get("conditions") or [] if c.get("status") == "True"}
        if ended & {"Failed", "FailureTarget"}:  # a failed pod alone is not the end: the Job replaces it
            return "failed"
        return "gone" if status.get("succeeded") or ended & {"Complete", "SuccessCriteriaMet"} else "alive"

    def status(self, ref: BackendRef) -> RunState:
        r = KubernetesRef.of(ref)
        state = run_files.read_state(r.state)
        cancelled = run_files.read_state(r.state.replace("state.json", "cancel.json")) is not None
        if state is None:
            driver = self._driver_state(ref)
            if driver == "alive":
                return RunState(RunStatus.PENDING, native="driver starting")
            return RunState(RunStatus.CANCELLED if cancelled else RunStatus.FAILED, native=f"driver {driver}",
                            message="the driver ended before it reported any state")
        result = run_files.to_run_state(state, run_files.run_prefix_of(r.state))
        if not result.status.terminal and self._driver_state(ref) != "alive":
            status = RunStatus.CANCELLED if cancelled else RunStatus.FAILED
            message = "" if cancelled else "the driver stopped before the run finished; see its log"
            return RunState(status, "driver_gone", result.steps, message, result.started_at, result.finished_at)
        return result

    def logs(self, ref: BackendRef, step: str) -> str:
        saved = run_files.read_log(run_files.run_prefix_of(KubernetesRef.of(ref).state), step)
        if saved is not None:
            return saved
        return self._live_logs(ref, step)

    def _live_logs(self, ref: BackendRef, step: str) -> str:
        """While a step runs, its log lives only in the pod."""
        r = KubernetesRef.of(ref)
        from kubernetes import client

        from stackhop.adapters.kubernetes.client import api_client
        from stackhop.adapters.kubernetes.names import label_value
        from stackhop.adapters.kubernetes.manifests import LABEL_STEP
        from stackhop.core.resolve import parse_instance_key

        name, _ = parse_instance_key(step)
        core = client.CoreV1Api(api_client(self.settings))
        pods = json.loads(core.list_namespaced_pod(
            r.namespace, label_selector=f"{LABEL_RUN}={r.run_id},{LABEL_STEP}={label_value(name)}",
            _preload_content=False).data)["items"]
        pods.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""))
        return "".join(core.read_namespaced_pod_log(p["metadata"]["name"], r.namespace) for p in pods[-1:])

    def cancel(self, ref: BackendRef) -> None:
        r = KubernetesRef.of(ref)
        store = ArtifactStore.for_uri(r.state)
        store.write_json(r.state.replace("state.json", "cancel.json"), {"requested": True})
        if r.mode == "client":
            pid = r.pid
            if pid and self._driver_state(ref) == "alive":
                os.kill(pid, signal.SIGTERM)
                return
            self._delete_run_jobs(ref)
            return
        from kubernetes import client

        from stackhop.adapters.kubernetes.client import api_client

        client.BatchV1Api(api_client(self.settings)).delete_namespaced_job(
            r.driver_job, r.namespace, propagation_policy="Foreground")

    def _delete_run_jobs(self, ref: BackendRef) -> None:
        r = KubernetesRef.of(ref)
        from kubernetes import client

        from stackhop.adapters.kubernetes.client import api_client

        client.BatchV1Api(api_client(self.settings)).delete_collection_namespaced_job(
            r.namespace, label_selector=f"{LABEL_RUN}={r.run_id}", propagation_policy="Foreground")

    def artifacts(self, ref: BackendRef) -> list[ArtifactRef]:
        return run_files.list_artifacts(run_files.run_prefix_of(KubernetesRef.of(ref).state))


_children: dict[int, subprocess.Popen[bytes]] = {}
