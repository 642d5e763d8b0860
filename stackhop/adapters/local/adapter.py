"""The local adapter: compile is the effective IR; submit starts a detached runner process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from stackhop.adapters.local import crash
from stackhop.adapters.local.lifeline import start_time
from stackhop.core.adapter import Adapter, AdapterSettings, BackendRef, RefData, Capability, Compiled, Note, RunRequest
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.canonical import canonical_json
from stackhop.core.ir import Pipeline
from stackhop.core import run_files
from stackhop.core.runs import ArtifactRef, RunState, RunStatus
from stackhop.errors import ConfigError

_children: dict[int, subprocess.Popen[bytes]] = {}
RUNTIMES = ("docker", "podman")


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
    container_runtime: str | None = Field(
        default=None,
        description="docker or podman: container steps run in their own image through it; unset: their command "
        "runs on this machine.",
    )

    @field_validator("container_runtime")
    @classmethod
    def _known_runtime(cls, value: str | None) -> str | None:
        if value is not None and value not in RUNTIMES:
            raise ValueError(f"{value!r} is not a container runtime stackhop drives; use docker or podman, or remove "
                             "the key to run container steps' commands on this machine")
        return value


class LocalRef(RefData):
    spec: str
    state: str
    pid: int | None = None
    """The runner's pid with its start time and host: alive only while all three match (see `lifeline`)."""
    pid_start: int | None = None
    host: str | None = None
    emulates: str | None = None
    """The adapter whose compiled document this runner emulates; None for a local run."""


class LocalAdapter(Adapter):
    name: ClassVar[str] = "local"
    uses_images = False
    Settings = LocalSettings
    Ref = LocalRef
    capabilities = frozenset({
        Capability.CONDITIONS, Capability.PARALLEL_FOR, Capability.RUNTIME_FAN_OUT, Capability.FAN_IN, Capability.ONE_OF,
        Capability.EXIT_HANDLER, Capability.RETRIES, Capability.RESUME,
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
        notes: tuple[str, ...] = ()
        if any(s.kind == "container" for s in ir.steps):
            runtime = self.settings.container_runtime
            notes = (f"container steps run in their own image through {runtime}.",) if runtime else (
                "container steps run their command on this machine; the image is not used locally "
                "(set settings.container_runtime: docker or podman to run it).",)
        return Compiled(self.name, {"pipeline.local.json": canonical_json(doc).encode()}, notes)

    def submit(self, compiled: Compiled, request: RunRequest) -> BackendRef:
        doc = json.loads(compiled.files["pipeline.local.json"])
        runtime = doc["settings"].get("container_runtime")
        if runtime and any(s["kind"] == "container" for s in doc["pipeline"]["steps"]) and shutil.which(runtime) is None:
            raise ConfigError(f"pipeline {doc['pipeline']['name']!r} has container steps and the stack's "
                              f"settings.container_runtime is {runtime}, which is not on PATH; install {runtime} "
                              "or remove the setting to run their commands on this machine.")
        return start_runner(request, doc["pipeline"], doc["settings"])

    @classmethod
    def settled_offline(cls, backend_ref: dict[str, Any]) -> RunState | None:
        if "state" not in backend_ref:
            return None
        state = cls._settled(backend_ref)
        if state is None or state.get("status") not in crash.FINAL:
            return None
        return run_files.to_run_state(state, run_files.run_prefix_of(backend_ref["state"]))

    @staticmethod
    def _settled(data: dict[str, Any]) -> dict[str, Any] | None:
        child = _children.get(data.get("pid") or 0)
        if child is not None:
            child.poll()  # reap our own runner, so its pid is not left a zombie
        return crash.settle(data["state"], data)

    def status(self, ref: BackendRef) -> RunState:
        r = LocalRef.of(ref)
        state = self._settled(r.model_dump())
        if state is None:
            return RunState(RunStatus.PENDING, native="starting")
        return run_files.to_run_state(state, run_files.run_prefix_of(r.state))

    def logs(self, ref: BackendRef, step: str) -> str:
        return run_files.read_log(run_files.run_prefix_of(LocalRef.of(ref).state), step) or ""

    def cancel(self, ref: BackendRef) -> None:
        r = LocalRef.of(ref)
        found = crash.runner(run_files.read_state(r.state), r.model_dump())
        if found is not None and found[1]:
            os.kill(found[0], signal.SIGTERM)

    def artifacts(self, ref: BackendRef) -> list[ArtifactRef]:
        """Only outputs the runner recorded: a finished run lists those of its SUCCEEDED and CACHED steps."""
        state = LocalRef.of(ref).state
        refs = run_files.list_artifacts(run_files.run_prefix_of(state))
        recorded = crash.recorded_steps(run_files.read_state(state))
        return refs if recorded is None else [r for r in refs if r.step in recorded]


def start_runner(request: RunRequest, pipeline: dict[str, Any], settings: dict[str, Any],
                 emulation: dict[str, Any] | None = None) -> BackendRef:
    """Start the detached runner process of one run (idempotent: a retried submit finds the first)."""
    store = ArtifactStore(request.artifact_root)
    spec = {
        "run_id": request.run_id,
        "pipeline": pipeline,
        "parameters": request.parameters,
        "artifact_root": store.root,
        "code": {"source_dir": request.code.source_dir, "archive_uri": request.code.archive_uri,
                 "digest": request.code.digest},
        "caching": request.caching,
        "settings": settings,
        "store_path": request.store_path,
        "workdir": os.getcwd(),
        **({"resume": request.resume} if request.resume else {}),
        **({"emulation": emulation} if emulation else {}),
        **({"container_runtime": settings["container_runtime"]}
           if settings.get("container_runtime") and not emulation else {}),
    }
    name = pipeline["name"]
    spec_uri = store.run_meta(name, request.run_id, "run.json")
    state_uri = store.run_meta(name, request.run_id, "state.json")
    emulates = emulation["adapter"] if emulation else None
    if store.exists(spec_uri):  # a retried submit must not start a second runner
        return LocalRef(spec=spec_uri, state=state_uri, emulates=emulates).ref(LocalAdapter.name)
    store.write_json(spec_uri, spec)
    spec_path = _local_spec(store, spec_uri, spec)
    log_uri = store.run_meta(name, request.run_id, "runner.log")
    log_path = store.local_path(log_uri) if store.is_local else spec_path + ".runner.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stackhop.adapters.local.runner", spec_path],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    _children[proc.pid] = proc
    import socket

    return LocalRef(spec=spec_uri, state=state_uri, pid=proc.pid, pid_start=start_time(proc.pid),
                    host=socket.gethostname(), emulates=emulates).ref(LocalAdapter.name)


def start_emulation(compiled: Compiled, request: RunRequest) -> BackendRef:
    """Run another adapter's compiled document here: the runner starts what the document names, not the entrypoint."""
    emulation = {"adapter": compiled.adapter,
                 "files": {name: data.decode() for name, data in sorted(compiled.files.items())}}
    return start_runner(request, request.pipeline, LocalSettings().model_dump(mode="json"), emulation)


def _local_spec(store: ArtifactStore, uri: str, spec: dict[str, Any]) -> str:
    if store.is_local:
        return store.local_path(uri)
    import tempfile

    fd, path = tempfile.mkstemp(prefix="stackhop-run-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    return path
