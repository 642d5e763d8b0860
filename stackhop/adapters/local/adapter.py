"""The local adapter: compile is the effective IR; submit starts a detached runner process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any, ClassVar, Literal

from pydantic import Field

from stackhop.core.adapter import Adapter, AdapterSettings, BackendRef, Capability, Compiled, Note, RunRequest
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.canonical import canonical_json
from stackhop.core.ir import Pipeline
from stackhop.core import run_files
from stackhop.core.runs import ArtifactRef, RunState, RunStatus
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
    gpus: Literal["auto", "none"] | list[str] = Field(
        default="auto",
        description="GPUs steps may use: auto (CUDA_VISIBLE_DEVICES, else nvidia-smi), none, or a list of ids. "
        "Without any, GPU steps run on the CPU.",
    )
    launcher: Literal["fork", "spawn"] = Field(
        default="fork",
        description="fork: each step is forked from a warm process that imported stackhop and the step modules "
        "once (fast); spawn: each step starts a fresh interpreter.",
    )


class LocalAdapter(Adapter):
    name: ClassVar[str] = "local"
    uses_images = False
    Settings = LocalSettings
    capabilities = frozenset({
        Capability.CONDITIONS, Capability.PARALLEL_FOR, Capability.EXIT_HANDLER, Capability.RETRIES,
        Capability.CACHING, Capability.TIMEOUTS, Capability.SECRETS, Capability.CONTAINER_STEPS, Capability.GPU,
    })
    ignored = frozenset({Capability.NODE_SELECTORS, Capability.TOLERATIONS})
    poll_seconds = (0.02, 0.1)

    def wants_code_archive(self) -> bool:
        return self.settings.code == "archive"

    def notes_for(self, ir: Pipeline) -> list[str]:
        from stackhop.adapters.local.gpus import available

        wanting = [s for s in ir.steps if s.settings.resources and s.settings.resources.accelerator]
        if not wanting:
            return []
        gpus = available(self.settings.gpus)
        names = ", ".join(f"{s.name} ({s.settings.resources.accelerator.count} x {s.settings.resources.accelerator.type})"  # type: ignore[union-attr]
                          for s in wanting)
        steps = f"step {names} runs" if len(wanting) == 1 else f"steps {names} run"
        if not gpus:
            return [Note(f"this machine has no GPU the local stack may use, so {steps} on the CPU.")]
        return [Note(f"{steps} on GPUs {', '.join(gpus)}, each step on its own through CUDA_VISIBLE_DEVICES.")]

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
        state = run_files.read_state(ref.data["state"])
        if state is None:
            if self._runner_alive(ref.data.get("pid")):
                return RunState(RunStatus.PENDING, native="starting")
            return RunState(RunStatus.FAILED, native="runner_died", message=self._runner_log_tail(ref))
        result = run_files.to_run_state(state, run_files.run_prefix_of(ref.data["state"]))
        if not result.status.terminal and not self._runner_alive(state.get("pid")):
            message = "the local runner process exited unexpectedly; " + self._runner_log_tail(ref)
            return RunState(RunStatus.FAILED, "runner_died", result.steps, message, result.started_at, result.finished_at)
        return result

    def _runner_log_tail(self, ref: BackendRef) -> str:
        uri = ref.data["state"].rsplit("/", 1)[0] + "/runner.log"
        try:
            tail = ArtifactStore.for_uri(uri).read_bytes(uri).decode(errors="replace").strip().splitlines()[-3:]
        except StackhopError:
            return "no runner log was written"
        return " | ".join(tail) or "the runner log is empty"

    def logs(self, ref: BackendRef, step: str) -> str:
        return run_files.read_log(run_files.run_prefix_of(ref.data["state"]), step) or ""

    def cancel(self, ref: BackendRef) -> None:
        pid = ref.data.get("pid")
        if not pid:
            state = run_files.read_state(ref.data["state"])
            pid = state.get("pid") if state else None
        if self._runner_alive(pid):
            os.kill(pid, signal.SIGTERM)

    def artifacts(self, ref: BackendRef) -> list[ArtifactRef]:
        return run_files.list_artifacts(run_files.run_prefix_of(ref.data["state"]))
