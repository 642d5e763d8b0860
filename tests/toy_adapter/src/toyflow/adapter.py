"""The toyflow adapter: compile to a job document, submit it to the spool, read its status back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, ClassVar

from pydantic import Field

from stackhop.core import run_files
from stackhop.core.adapter import Adapter, AdapterSettings, BackendRef, Capability, Compiled, RefData, RunRequest
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.canonical import canonical_json
from stackhop.core.ir import Pipeline
from stackhop.core.runs import ArtifactRef, RunState, RunStatus, StepState, StepStatus
from toyflow.emulate import ToyflowEmulator


class ToyflowSettings(AdapterSettings):
    spool: str = Field(default=".toyflow", description="The directory the toy orchestrator takes jobs from.")


class ToyflowRef(RefData):
    job_dir: str
    run_prefix: str


RUN = {"queued": RunStatus.PENDING, "working": RunStatus.RUNNING, "done": RunStatus.SUCCEEDED,
       "broken": RunStatus.FAILED, "halted": RunStatus.CANCELLED}
STEP = {"waiting": StepStatus.PENDING, "working": StepStatus.RUNNING, "ok": StepStatus.SUCCEEDED,
        "broken": StepStatus.FAILED, "halted": StepStatus.CANCELLED}


class ToyflowAdapter(Adapter):
    name: ClassVar[str] = "toyflow"
    Settings = ToyflowSettings
    Ref = ToyflowRef
    capabilities = frozenset({Capability.CACHING})
    uses_images = False
    poll_seconds = (0.05, 0.2)
    emulator = ToyflowEmulator
    settings: ToyflowSettings

    def wants_code_archive(self) -> bool:
        return False

    def compile(self, ir: Pipeline) -> Compiled:
        tasks = []
        for s in ir.steps:
            after = [i.value.step for i in s.inputs if i.value is not None and getattr(i.value, "step", None)]
            tasks.append({"name": s.name, "after": sorted({*after, *s.after}),
                          "argv": ["python", "-m", "stackhop.entrypoint", "--spec", "{{run_spec}}", "--step", s.name]})
        return Compiled(self.name, {"toyflow.json": canonical_json({"pipeline": ir.name, "tasks": tasks}).encode()})

    def stage(self, compiled: Compiled, request: RunRequest) -> None:
        store = ArtifactStore(request.artifact_root)
        spec = {"run_id": request.run_id, "pipeline": request.pipeline, "parameters": request.parameters,
                "artifact_root": store.root, "caching": request.caching, "settings": {},
                "code": {"source_dir": request.code.source_dir, "archive_uri": request.code.archive_uri,
                         "digest": request.code.digest}}
        store.write_json(store.run_meta(request.pipeline["name"], request.run_id, "toyflow-spec.json"), spec)

    def submit(self, compiled: Compiled, request: RunRequest) -> BackendRef:
        self.stage(compiled, request)
        store = ArtifactStore(request.artifact_root)
        job_dir = os.path.abspath(os.path.join(self.stack.project_dir, self.settings.spool, request.run_id))
        os.makedirs(job_dir, exist_ok=True)
        job = json.loads(compiled.files["toyflow.json"])
        job["values"] = {"run_spec": store.run_meta(request.pipeline["name"], request.run_id, "toyflow-spec.json")}
        with open(os.path.join(job_dir, "job.json"), "w") as f:
            json.dump(job, f)
        subprocess.Popen([sys.executable, "-m", "toyflow.controller", job_dir], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return ToyflowRef(job_dir=job_dir, run_prefix=store.run_prefix(request.pipeline["name"], request.run_id)).ref(self.name)

    def status(self, ref: BackendRef) -> RunState:
        r = ToyflowRef.of(ref)
        try:
            with open(os.path.join(r.job_dir, "status.json")) as f:
                job: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            return RunState(RunStatus.PENDING, native="queued")
        steps = {name: StepState(name, STEP.get(word, StepStatus.UNKNOWN), word) for name, word in job["tasks"].items()}
        return RunState(RUN.get(job["phase"], RunStatus.UNKNOWN), job["phase"], steps)

    def logs(self, ref: BackendRef, step: str) -> str:
        path = os.path.join(ToyflowRef.of(ref).job_dir, f"{step}.log")
        return open(path, errors="replace").read() if os.path.exists(path) else ""

    def cancel(self, ref: BackendRef) -> None:
        open(os.path.join(ToyflowRef.of(ref).job_dir, "halt"), "w").close()

    def artifacts(self, ref: BackendRef) -> list[ArtifactRef]:
        return run_files.list_artifacts(ToyflowRef.of(ref).run_prefix)
