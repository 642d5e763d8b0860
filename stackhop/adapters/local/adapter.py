"""The local adapter: compile is the effective IR; submit starts a detached runner process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any, ClassVar, Literal

from pydantic import Field

from stackhop.core.adapter import Adapter, AdapterSettings, BackendRef, Capability, Compiled, RunRequest
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.canonical import canonical_json
from stackhop.core.ir import Pipeline
from stackhop.core.resolve import parse_instance_key
from stackhop.core.runs import ArtifactRef, RunState, RunStatus, StepState, StepStatus
from stackhop.errors import StackhopError

_children: dict[int, subprocess.Popen[bytes]] = {}


class LocalSettings(AdapterSettings):
    max_workers: int | None = Field(default=None, ge=1, description="Steps running at once; default: CPU count.")
    code: Literal["source", "archive"] = Field(
        default="source", description="Run steps from the source tree, or from the content-addressed code archive."
    )
    secrets: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="secret name -> key -> environment variable that holds the value."
    )
    kill_grace_seconds: float = Field(default=3.0, ge=0, description="SIGTERM to SIGKILL delay on timeout/cancel.")
    launcher: Literal["fork", "spawn"] = Field(
        default="fork",
        description="fork: each step is forked from a warm process that imported stackhop and the step modules "
        "once (fast); spawn: each step starts a fresh interpreter.",
    )


class LocalAdapter(Adapter):
    name: ClassVar[str] = "local"
    Settings = LocalSettings
    capabilities = frozenset({
        Capability.CONDITIONS, Capability.PARALLEL_FOR, Capability.EXIT_HANDLER, Capability.RETRIES,
        Capability.CACHING, Capability.TIMEOUTS, Capability.SECRETS, Capability.CONTAINER_STEPS,
    })
    ignored = frozenset({Capability.NODE_SELECTORS, Capability.TOLERATIONS})
    poll_seconds = (0.02, 0.1)

    def wants_code_archive(self) -> bool:
        return self.settings.code == "archive"

    def compile(self, ir: Pipeline) -> Compiled:
        doc = {"pipeline": json.loads(ir.to_json()), "settings": self.settings.model_dump(mode="json")}
        notes = ()
        if any(s.kind == "container" for s in ir.steps):
            notes = ("container steps run their command on this machine; the image is not used locally.",)
        return Compiled(self.name, {"pipeline.local.json": canonical_json(doc).encode()}, notes)

    def submit(self, compiled: Compiled, request: RunRequest) -> BackendRef:
        doc = json.loads(compiled.files["pipeline.local.json"])
        store = ArtifactStore(request.artifact_root)
        pipeline = doc["pipeline"]["name"]
        spec = {
            "run_id": request.run_id,
            "pipeline": doc["pipeline"],
            "parameters": request.parameters,
            "artifact_root": store.root,
            "code": {"source_dir": request.code.source_dir, "archive_uri": request.code.archive_uri,
                     "digest": request.code.digest},
            "caching": request.caching,
            "settings": doc["settings"],
            "store_path": request.store_path,
            "workdir": os.getcwd(),
        }
        spec_uri = store.run_meta(pipeline, request.run_id, "run.json")
        state_uri = store.run_meta(pipeline, request.run_id, "state.json")
        if store.exists(spec_uri):  # a retried submit must not start a second runner
            return BackendRef(self.name, {"spec": spec_uri, "state": state_uri, "pid": None})
        store.write_json(spec_uri, spec)
        spec_path = self._local_spec(store, spec_uri, spec)
        log_uri = store.run_meta(pipeline, request.run_id, "runner.log")
        log_path = store.local_path(log_uri) if store.is_local else spec_path + ".runner.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "stackhop.adapters.local.runner", spec_path],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        _children[proc.pid] = proc
        return BackendRef(self.name, {"spec": spec_uri, "state": state_uri, "pid": proc.pid})

    @staticmethod
    def _local_spec(store: ArtifactStore, uri: str, spec: dict[str, Any]) -> str:
        if store.is_local:
            return store.local_path(uri)
        import tempfile

        fd, path = tempfile.mkstemp(prefix="stackhop-run-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(spec, f)
        return path

    def _runner_alive(self, pid: int | None) -> bool:
        if not pid:
            return False
        child = _children.get(pid)
        if child is not None:
            return child.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def status(self, ref: BackendRef) -> RunState:
        store = ArtifactStore.for_uri(ref.data["state"])
        try:
            state = store.read_json(ref.data["state"])
        except StackhopError:
            if self._runner_alive(ref.data.get("pid")):
                return RunState(RunStatus.PENDING, native="starting")
            return RunState(RunStatus.FAILED, native="runner_died", message=self._runner_log_tail(ref))
        steps = {
            key: StepState(
                name=key, status=StepStatus.parse(s["status"]), native=s.get("native", ""), attempts=s.get("attempts", 0),
                started_at=s.get("started_at"), finished_at=s.get("finished_at"), exit_code=s.get("exit_code"),
                message=s.get("message", ""), log_uri=self._log_uri(ref, key),
            )
            for key, s in sorted(state["steps"].items(), key=lambda kv: _position(state, kv[0]))
        }
        status = RunStatus.parse(state["status"])
        message = state.get("message", "")
        if not status.terminal and not self._runner_alive(state.get("pid")):
            status, message = RunStatus.FAILED, "the local runner process exited unexpectedly; " + self._runner_log_tail(ref)
        return RunState(status, state.get("native", ""), steps, message, state.get("started_at"), state.get("finished_at"))

    def _runner_log_tail(self, ref: BackendRef) -> str:
        uri = ref.data["state"].rsplit("/", 1)[0] + "/runner.log"
        try:
            tail = ArtifactStore.for_uri(uri).read_bytes(uri).decode(errors="replace").strip().splitlines()[-3:]
        except StackhopError:
            return "no runner log was written"
        return " | ".join(tail) or "the runner log is empty"

    def _log_uri(self, ref: BackendRef, key: str) -> str:
        run_prefix = ref.data["state"].rsplit("/_stackhop/", 1)[0]
        step, index = parse_instance_key(key)
        return "/".join([run_prefix, step, *(str(i) for i in index), "_stackhop", "log.txt"])

    def logs(self, ref: BackendRef, step: str) -> str:
        uri = self._log_uri(ref, step)
        store = ArtifactStore.for_uri(uri)
        if not store.exists(uri):
            return ""
        return store.read_bytes(uri).decode(errors="replace")

    def cancel(self, ref: BackendRef) -> None:
        pid = ref.data.get("pid")
        if not pid:
            try:
                pid = ArtifactStore.for_uri(ref.data["state"]).read_json(ref.data["state"]).get("pid")
            except StackhopError:
                return
        if self._runner_alive(pid):
            os.kill(pid, signal.SIGTERM)

    def artifacts(self, ref: BackendRef) -> list[ArtifactRef]:
        run_prefix = ref.data["state"].rsplit("/_stackhop/", 1)[0]
        store = ArtifactStore.for_uri(run_prefix)
        refs: list[ArtifactRef] = []
        for uri, record in store.list_json(run_prefix, "outputs.json"):
            rel = uri[len(run_prefix) + 1:].rsplit("/_stackhop/", 1)[0].split("/")
            key = rel[0] + "".join(f"[{i}]" for i in rel[1:])
            for name, value in record.get("scalars", {}).items():
                refs.append(ArtifactRef(uri=uri + "#" + name, type=_scalar_type(value), step=key, output=name, value=value))
            for name, art in record.get("artifacts", {}).items():
                refs.append(ArtifactRef(uri=art["uri"], type=art["type"], step=key, output=name,
                                        metadata=art.get("metadata") or {}, materializer=art.get("materializer"),
                                        digest=art.get("digest")))
        return refs


def _position(state: dict[str, Any], key: str) -> int:
    order = state.get("order") or []
    return order.index(key) if key in order else len(order)


def _scalar_type(value: Any) -> str:
    return {str: "str", int: "int", float: "float", bool: "bool", list: "list", dict: "dict"}.get(type(value), "str")
