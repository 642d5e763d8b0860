"""The Vertex AI Pipelines adapter: compile to a PipelineSpec; submit, watch and cancel with google-cloud-aiplatform."""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import cache
from importlib import resources
from typing import Any, ClassVar

from stackhop.adapters.pipelinespec import runs
from stackhop.adapters.pipelinespec.emulate import SpecEmulator
from stackhop.adapters.pipelinespec.compiler import Accelerator, Target, compile_pipeline_spec, pipeline_root
from stackhop.adapters.vertex.settings import VertexSettings
from stackhop.core.adapter import Adapter, BackendRef, Capability, Compiled, ResumedRef, RunRequest
from stackhop.core.ir import Pipeline
from stackhop.core.runs import ArtifactRef, RunState, RunStatus, StepStatus
from stackhop.errors import ConfigError, PipelineDefinitionError, StackhopError

PIPELINE_FILE = "pipeline.json"
RUN_STATUS = {
    "PIPELINE_STATE_QUEUED": RunStatus.PENDING, "PIPELINE_STATE_PENDING": RunStatus.PENDING,
    "PIPELINE_STATE_RUNNING": RunStatus.RUNNING, "PIPELINE_STATE_SUCCEEDED": RunStatus.SUCCEEDED,
    "PIPELINE_STATE_FAILED": RunStatus.FAILED, "PIPELINE_STATE_CANCELLING": RunStatus.CANCELLING,
    "PIPELINE_STATE_CANCELLED": RunStatus.CANCELLED, "PIPELINE_STATE_PAUSED": RunStatus.RUNNING,
}
STEP_STATUS = {
    "PENDING": StepStatus.PENDING, "RUNNING": StepStatus.RUNNING, "SUCCEEDED": StepStatus.SUCCEEDED,
    "CANCEL_PENDING": StepStatus.CANCELLING, "CANCELLING": StepStatus.CANCELLING, "CANCELLED": StepStatus.CANCELLED,
    "FAILED": StepStatus.FAILED, "SKIPPED": StepStatus.CACHED, "NOT_TRIGGERED": StepStatus.SKIPPED,  # SKIPPED: a cache hit
}


@cache
def accelerator_enums() -> dict[str, str]:
    text = resources.files("stackhop.adapters.vertex").joinpath("data/accelerators.json").read_text()
    return json.loads(text)["accelerators"]


def vertex_accelerator(canonical: str, where: str) -> Accelerator:
    enum = accelerator_enums().get(canonical)
    if enum is None:
        raise PipelineDefinitionError(
            f"{where} asks for accelerator {canonical!r}, which Vertex AI does not offer; use one of "
            f"{', '.join(sorted(accelerator_enums()))}.")
    return Accelerator(enum)


def job_id(prefix: str, pipeline: str, run_id: str) -> str:
    """Deterministic from the run id, so a retried submit finds the job instead of starting a second."""
    raw = re.sub(r"[^a-z0-9-]+", "-", f"{prefix}{pipeline}-{run_id}".lower()).strip("-")
    if len(raw) <= 128:
        return raw
    return raw[:119].rstrip("-") + "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]


def label_value(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower())[:63]


class VertexRef(ResumedRef):
    resource_name: str
    job_id: str
    dashboard: str
    pipeline: dict[str, Any]
    """The IR's shape (steps and groups), to map task details to steps."""

class VertexAdapter(Adapter):
    name: ClassVar[str] = "vertex"
    Settings = VertexSettings
    Ref = VertexRef
    capabilities = frozenset({
        Capability.CONDITIONS, Capability.PARALLEL_FOR, Capability.RUNTIME_FAN_OUT, Capability.FAN_IN, Capability.ONE_OF,
        Capability.EXIT_HANDLER, Capability.RETRIES, Capability.RESUME,
        Capability.CACHING, Capability.TIMEOUTS, Capability.GPU, Capability.CONTAINER_STEPS,
    })
    poll_seconds = (5.0, 30.0)
    emulator = SpecEmulator
    settings: VertexSettings

    def target(self) -> Target:
        root = self.stack.artifact_root
        if not root.startswith("gs://"):
            raise ConfigError(
                f"stack {self.stack.name!r}: Vertex AI reads and writes artifacts on Cloud Storage; set artifact_root "
                f"to a gs:// URI (it is {root!r}).")
        return Target("vertex", root.rstrip("/"), python=self.settings.python, limits_only=True,
                      accelerator=vertex_accelerator, settings=self.settings.model_dump(mode="json"))

    def compile(self, ir: Pipeline) -> Compiled:
        spec, platform, spec_text, _ = compile_pipeline_spec(ir, self.target())
        assert platform is None
        notes = []
        raised = [s.name for s in ir.steps if s.settings.resources and (
            (s.settings.resources.cpu_millicores and not s.settings.resources.cpu_limit_millicores)
            or (s.settings.resources.memory_bytes and not s.settings.resources.memory_limit_bytes))]
        if raised:
            notes.append("Vertex AI honours only resource limits, so the requests of step(s) "
                         f"{', '.join(raised)} were compiled as limits.")
        disks = [s.name for s in ir.steps if s.settings.resources and s.settings.resources.disk_bytes]
        if disks:
            notes.append(f"Vertex AI pipeline steps take no disk size; ignored for step(s) {', '.join(disks)}.")
        return Compiled(self.name, {PIPELINE_FILE: runs.dumps(spec), runs.SPEC_FILE: spec_text.encode()}, tuple(notes))

    def explain(self, ir: Pipeline) -> dict[str, list[str]]:
        spec, _, _, _ = compile_pipeline_spec(ir, self.target())
        out: dict[str, list[str]] = {}
        names = {s.name: s for s in ir.steps}
        for task, executor in ((k.removeprefix("exec-"), v) for k, v in spec["deploymentSpec"]["executors"].items()):
            step = next(n for n in names if n.lower().replace("_", "-") == task)
            res = executor["container"].get("resources", {})
            lines = [f"image {executor['container']['image']}"]
            if res:
                parts = [f"{k.removeprefix('resource').lower()} {v}" for k, v in sorted(res.items())
                         if k.startswith("resource")]
                lines.append("limits: " + ", ".join(parts) + " (Vertex honours limits only; a request became the limit)")
            else:
                lines.append("no resources asked: Vertex AI's default machine (e2-standard-4)")
            if "accelerator" in res:
                lines.append(f"accelerator {res['accelerator']['type']} x{res['accelerator']['count']}")
            out[step] = lines
        return out

    # ------------------------------------------------------------------ talking to Vertex
    def _aiplatform(self) -> Any:
        try:
            from google.cloud import aiplatform
        except ImportError:
            raise ConfigError(
                "the Vertex AI adapter needs google-cloud-aiplatform; install it with `pip install 'stackhop[gcp]'`."
            ) from None
        if not self.settings.project:
            raise ConfigError(f"stack {self.stack.name!r}: set settings.project to the GCP project to run in.")
        kwargs: dict[str, Any] = {"project": self.settings.project, "location": self.settings.location}
        if self.settings.api_endpoint:
            kwargs["api_endpoint"] = self.settings.api_endpoint
            if self.settings.api_endpoint.startswith("http://"):
                kwargs["api_transport"] = "rest"
        if self.settings.anonymous:
            from google.auth.credentials import AnonymousCredentials

            kwargs["credentials"] = AnonymousCredentials()
        aiplatform.init(**kwargs)
        return aiplatform

    def resource_name(self, job: str) -> str:
        return f"projects/{self.settings.project}/locations/{self.settings.location}/pipelineJobs/{job}"

    def submit(self, compiled: Compiled, request: RunRequest) -> BackendRef:
        from google.api_core import exceptions
        from google.auth.exceptions import DefaultCredentialsError

        aiplatform = self._aiplatform()
        runs.store_run_spec(compiled, request.artifact_root)
        pipeline = request.pipeline["name"]
        job = job_id(self.settings.job_id_prefix, pipeline, request.run_id)
        labels = {**{k: label_value(v) for k, v in self.settings.labels.items()},
                  "stackhop-pipeline": label_value(pipeline), "stackhop-run": label_value(request.run_id)}
        path = runs.write_temp(compiled.files[PIPELINE_FILE], ".json")
        try:
            pj = aiplatform.PipelineJob(
                display_name=request.run_id[:128], template_path=path, job_id=job,
                pipeline_root=pipeline_root(request.artifact_root, pipeline, request.run_id),
                parameter_values=runs.parameter_values(request),
                enable_caching=None if request.caching else False, labels=labels,
            )
            try:
                pj.submit(service_account=self.settings.service_account, network=self.settings.network)
            except exceptions.Conflict:  # 409 ALREADY_EXISTS (REST answers the base class)
                aiplatform.PipelineJob.get(resource_name=self.resource_name(job))
        except DefaultCredentialsError:
            raise ConfigError(_NO_CREDENTIALS.format(stack=self.stack.name)) from None
        except exceptions.GoogleAPICallError as exc:
            reason = re.sub(r"^(GET|POST|PATCH|DELETE) \S+: ", "", str(exc.message))  # the REST transport prefixes the URL
            raise StackhopError(f"Vertex AI refused pipeline {pipeline!r}: {reason}") from None
        finally:
            os.unlink(path)
        console = (f"https://console.cloud.google.com/vertex-ai/locations/{self.settings.location}/pipelines/runs/"
                   f"{job}?project={self.settings.project}")
        resumed = runs.resubmitted(request.resume, "Vertex AI") if request.resume else {}
        return VertexRef(resource_name=self.resource_name(job), job_id=job, dashboard=console,
                         pipeline=runs.shape(request.pipeline, request.parameters), document=compiled.digest(),
                         **resumed).ref(self.name)

    def for_resume(self, ir: Pipeline, resume: dict[str, Any]) -> Pipeline:
        from stackhop.core.resume import by_backend

        return by_backend(ir, resume, "Vertex AI")

    def stage(self, compiled: Compiled, request: RunRequest) -> None:
        runs.store_run_spec(compiled, request.artifact_root)

    def _job(self, ref: BackendRef) -> Any:
        """The PipelineJob resource, read once (its `state` and `task_details` properties would each GET again)."""
        from google.auth.exceptions import DefaultCredentialsError

        try:
            return self._aiplatform().PipelineJob.get(resource_name=VertexRef.of(ref).resource_name).gca_resource
        except DefaultCredentialsError:
            raise ConfigError(_NO_CREDENTIALS.format(stack=self.stack.name)) from None

    def _tasks(self, job: Any) -> list[runs.Task]:
        tasks = []
        for t in job.job_detail.task_details:
            outputs = {name: [a.uri for a in value.artifacts] for name, value in t.outputs.items()}
            tasks.append(runs.Task(t.task_name, t.state.name, _ts(t.start_time), _ts(t.end_time),
                                   t.error.message if t.error and t.error.message else "", outputs))
        return tasks

    def status(self, ref: BackendRef) -> RunState:
        job = self._job(ref)
        word = job.state.name if job.state is not None else "PIPELINE_STATE_UNSPECIFIED"
        run = RUN_STATUS.get(word, RunStatus.UNKNOWN)
        pipeline = VertexRef.of(ref).pipeline
        steps = runs.step_states(self._tasks(job), runs.step_names(pipeline), STEP_STATUS, run.terminal, pipeline)
        steps = runs.as_resumed(steps, VertexRef.of(ref))
        message = job.error.message if job.error and job.error.message else ""
        return RunState(run, word, steps, message, _ts(job.start_time), _ts(job.end_time) if run.terminal else None)

    def logs(self, ref: BackendRef, step: str) -> str:
        text = runs.read_log(self.status(ref), step)
        if text is not None:
            return text
        query = (f'resource.type="aiplatform.googleapis.com/PipelineJob" '
                 f'labels."ml.googleapis.com/pipeline_job_id"="{VertexRef.of(ref).job_id}"')
        return (f"no log stored for step {step} yet; Cloud Logging has the container's output: "
                f"gcloud logging read '{query}' --project {self.settings.project}\n")

    def cancel(self, ref: BackendRef) -> None:
        self._aiplatform().PipelineJob.get(resource_name=VertexRef.of(ref).resource_name).cancel()

    def run_prefixes(self, ref: BackendRef) -> list[str]:
        """Vertex writes a job's outputs under `{pipeline_root}/{project number}/{job id}/`: cut its URIs there."""
        job = f"/{VertexRef.of(ref).job_id}/"
        return sorted({a.uri[:a.uri.index(job) + len(job) - 1] for a in self.artifacts(ref) if job in a.uri})

    def artifacts(self, ref: BackendRef) -> list[ArtifactRef]:
        pipeline = VertexRef.of(ref).pipeline
        return runs.artifacts(self._tasks(self._job(ref)), runs.step_names(pipeline), pipeline)


_NO_CREDENTIALS = ("stack {stack!r}: no Google Cloud credentials were found; run `gcloud auth application-default "
                   "login` or set GOOGLE_APPLICATION_CREDENTIALS.")


def _ts(value: Any) -> float | None:
    return value.timestamp() if value is not None and hasattr(value, "timestamp") and value.timestamp() > 0 else None
