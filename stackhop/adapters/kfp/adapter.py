"""The Kubeflow Pipelines adapter: the shared PipelineSpec plus a kfp-kubernetes platform spec; kfp.Client to run it."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, ClassVar

from stackhop.adapters.kfp.settings import KubeflowSettings
from stackhop.adapters.pipelinespec import runs
from stackhop.adapters.pipelinespec.emulate import SpecEmulator
from stackhop.adapters.pipelinespec.compiler import Accelerator, Target, compile_pipeline_spec, mirror_uri, pipeline_root
from stackhop.core.adapter import Adapter, BackendRef, Capability, Compiled, ResumedRef, RunRequest
from stackhop.core.ir import SCALAR_TYPES, Pipeline
from stackhop.core.runs import ArtifactRef, RunState, RunStatus, StepStatus
from stackhop.errors import ConfigError, StackhopError

PIPELINE_FILE = "pipeline.yaml"
RUN_STATUS = {
    "PENDING": RunStatus.PENDING, "RUNNING": RunStatus.RUNNING, "SUCCEEDED": RunStatus.SUCCEEDED,
    "SKIPPED": RunStatus.SUCCEEDED, "FAILED": RunStatus.FAILED, "CANCELING": RunStatus.CANCELLING,
    "CANCELED": RunStatus.CANCELLED, "PAUSED": RunStatus.RUNNING,
}
STEP_STATUS = {
    "PENDING": StepStatus.PENDING, "RUNNING": StepStatus.RUNNING, "SUCCEEDED": StepStatus.SUCCEEDED,
    "SKIPPED": StepStatus.SKIPPED, "FAILED": StepStatus.FAILED, "CANCELING": StepStatus.CANCELLING,
    "CANCELED": StepStatus.CANCELLED, "CACHED": StepStatus.CACHED,
}


class KubeflowRef(ResumedRef):
    run_id: str
    host: str
    dashboard: str
    experiment: str
    pipeline: dict[str, Any]
    """The IR's shape (steps and groups), to map task details to steps."""
    stackhop_run: str = ""
    """The stackhop run whose pipeline root (`pipeline_root`) the KFP run writes under; empty in a record from
    before each run had its own root (then the KFP run's id names its folders)."""
    pipeline_root: str = ""

class KubeflowAdapter(Adapter):
    name: ClassVar[str] = "kfp"
    Settings = KubeflowSettings
    Ref = KubeflowRef
    capabilities = frozenset({
        Capability.CONDITIONS, Capability.PARALLEL_FOR, Capability.RUNTIME_FAN_OUT, Capability.FAN_IN, Capability.ONE_OF,
        Capability.EXIT_HANDLER, Capability.RETRIES, Capability.RESUME,
        Capability.CACHING, Capability.TIMEOUTS, Capability.GPU, Capability.CONTAINER_STEPS, Capability.SECRETS,
        Capability.NODE_SELECTORS, Capability.TOLERATIONS,
    })
    poll_seconds = (2.0, 15.0)
    emulator = SpecEmulator
    settings: KubeflowSettings

    def accelerator(self, canonical: str, where: str) -> Accelerator:
        value = self.settings.accelerator_values.get(canonical, canonical)
        return Accelerator(self.settings.accelerator_resource, {self.settings.accelerator_label: value})

    def target(self) -> Target:
        return Target("kfp", self.stack.artifact_root.rstrip("/"), python=self.settings.python, platform=True, meta_mirror=True,
                      accelerator=self.accelerator, image_pull_secrets=tuple(self.settings.image_pull_secrets),
                      settings=self.settings.model_dump(mode="json"))

    def compile(self, ir: Pipeline) -> Compiled:
        spec, platform, spec_text, _ = compile_pipeline_spec(ir, self.target())
        text = runs.dumps(spec)
        if platform is not None:  # JSON is YAML: two documents, read by kfp's own loader
            text += b"\n---\n" + runs.dumps(platform)
        return Compiled(self.name, {PIPELINE_FILE: text + b"\n", runs.SPEC_FILE: spec_text.encode()})

    # ------------------------------------------------------------------ talking to Kubeflow Pipelines
    def client(self) -> Any:
        try:
            import kfp
        except ImportError:
            raise ConfigError("the Kubeflow adapter needs kfp; install it with `pip install 'stackhop[kfp]'`.") from None
        if not self.settings.host:
            raise ConfigError(f"stack {self.stack.name!r}: set settings.host to the Kubeflow Pipelines API endpoint.")
        token = None
        if self.settings.token_env:
            token = os.environ.get(self.settings.token_env)
            if not token:
                raise ConfigError(f"stack {self.stack.name!r}: settings.token_env names ${self.settings.token_env}, "
                                  "which is not set; export the API token there.")
        import warnings

        from urllib3.exceptions import HTTPError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2 and later"
                return kfp.Client(host=self.settings.host, namespace=self.settings.namespace, existing_token=token)
        except HTTPError as exc:
            raise StackhopError(f"stack {self.stack.name!r}: Kubeflow Pipelines at {self.settings.host} cannot be "
                                f"reached ({type(exc).__name__}); check settings.host and that the API is up.") from None

    def submit(self, compiled: Compiled, request: RunRequest) -> BackendRef:
        from kfp_server_api.exceptions import ApiException

        client = self.client()
        runs.store_run_spec(compiled, request.artifact_root)
        path = runs.write_temp(compiled.files[PIPELINE_FILE], ".yaml")
        retry = False
        try:
            retry = request.resume is not None and self._retryable(client, compiled, request)
            if retry:
                run_id = KubeflowRef.model_validate(request.resume["origin_ref"]).run_id  # type: ignore[index]
                client._run_api.run_service_retry_run(run_id=run_id)  # kfp.Client has no public retry
            else:
                # kfp.Client prints "Experiment details:" links on stdout, which belongs to --json and --detach output.
                with contextlib.redirect_stdout(sys.stderr):
                    run_id = self._create_run(client, path, request)
        except ApiException as exc:
            raise StackhopError(f"Kubeflow Pipelines at {self.settings.host} refused pipeline "
                                f"{request.pipeline['name']!r}: {exc.status} {_api_message(exc)}") from None
        finally:
            os.unlink(path)
        dashboard = f"{self.settings.host.rstrip('/')}/#/runs/details/{run_id}"
        resumed = runs.resubmitted(request.resume, "Kubeflow Pipelines", retried=retry) if request.resume else {}
        root: dict[str, str] = {"stackhop_run": request.run_id,
                                "pipeline_root": pipeline_root(request.artifact_root, request.pipeline["name"],
                                                               request.run_id)}
        if retry:  # the same KFP run, under the origin's root
            origin = KubeflowRef.model_validate(request.resume["origin_ref"])  # type: ignore[index]
            root = {"stackhop_run": origin.stackhop_run, "pipeline_root": origin.pipeline_root}
        return KubeflowRef(run_id=run_id, host=self.settings.host, dashboard=dashboard, experiment=self.settings.experiment,
                           pipeline=runs.shape(request.pipeline, request.parameters), document=compiled.digest(),
                           **root, **resumed).ref(self.name)

    def _retryable(self, client: Any, compiled: Compiled, request: RunRequest) -> bool:
        """`runs/{id}:retry` continues the same run, so only when nothing differs: the document, the parameters,
        no step asked to run again, and the run failed or was stopped."""
        resume = request.resume or {}
        origin = KubeflowRef.model_validate(resume.get("origin_ref") or {})
        if (origin.document != compiled.digest() or resume.get("origin_parameters") != request.parameters
                or resume.get("rerun")):
            return False
        from kfp_server_api.exceptions import ApiException

        try:
            return client.get_run(origin.run_id).state in ("FAILED", "CANCELED")
        except ApiException:  # the origin run is gone from KFP: a new run it is
            return False

    def for_resume(self, ir: Pipeline, resume: dict[str, Any]) -> Pipeline:
        from stackhop.core.resume import by_backend

        return by_backend(ir, resume, "Kubeflow Pipelines")

    def _create_run(self, client: Any, path: str, request: RunRequest) -> str:
        experiment = client.create_experiment(self.settings.experiment, namespace=self.settings.namespace)
        found = client.list_runs(experiment_id=experiment.experiment_id, page_size=10, filter=json.dumps(
            {"predicates": [{"operation": "EQUALS", "key": "display_name", "string_value": request.run_id}]}))
        same = [r for r in found.runs or [] if r.display_name == request.run_id]  # the filter ignores case
        if same:  # a retried submit: the run exists already
            return str(same[0].run_id)
        result = client.create_run_from_pipeline_package(
            path, arguments=runs.parameter_values(request), run_name=request.run_id,
            experiment_name=self.settings.experiment, namespace=self.settings.namespace,
            pipeline_root=pipeline_root(request.artifact_root, request.pipeline["name"], request.run_id),
            enable_caching=None if request.caching else False,
            service_account=self.settings.service_account)
        return str(result.run_id)

    def stage(self, compiled: Compiled, request: RunRequest) -> None:
        runs.store_run_spec(compiled, request.artifact_root)

    def _run(self, ref: BackendRef) -> Any:
        return self.client().get_run(KubeflowRef.of(ref).run_id)

    def _tasks(self, run: Any, ref: BackendRef) -> list[runs.Task]:
        """Task details, each step's given the meta folder its entrypoint mirrored (the API reports no output URIs)."""
        details = (getattr(run.run_details, "task_details", None) or []) if run.run_details else []
        tasks = [runs.Task(t.display_name or "", t.state or "", _ts(t.start_time), _ts(t.end_time),
                           t.error.message if t.error and t.error.message else "") for t in details]
        r = KubeflowRef.of(ref)
        pipeline = r.pipeline
        root = self.stack.artifact_root.rstrip("/")
        launched = r.pipeline_root or root  # the launcher's layout: {pipeline root}/{pipeline}/{KFP run}/{task}/...
        mirrored = r.stackhop_run or r.run_id
        plain = {s["name"]: s["outputs"] for s in pipeline["steps"] if "outputs" in s}
        for task, step in runs.step_names(pipeline).items():
            same = [t for t in tasks if t.name == task]
            if step in plain:  # {launched}/{pipeline}/{run}/{task}/{execution salt}/{output}
                artifacts = [n for n, type_name in plain[step].items() if type_name not in SCALAR_TYPES]
                for t, folder in zip(same, runs.list_folders(f"{launched}/{pipeline['name']}/{r.run_id}/{task}")):
                    t.outputs.update({n: [f"{folder}/{n}"] for n in artifacts})
                continue
            runs.pair_folders(same, runs.list_folders(mirror_uri(root, pipeline["name"], mirrored, step, "")))
        return tasks

    def status(self, ref: BackendRef) -> RunState:
        run = self._run(ref)
        word = run.state or "RUNTIME_STATE_UNSPECIFIED"
        status = RUN_STATUS.get(word, RunStatus.UNKNOWN)
        pipeline = KubeflowRef.of(ref).pipeline
        steps = runs.step_states(self._tasks(run, ref), runs.step_names(pipeline), STEP_STATUS, status.terminal, pipeline)
        steps = runs.as_resumed(steps, KubeflowRef.of(ref))
        message = run.error.message if run.error and run.error.message else ""
        failed = [s for s in steps.values() if s.status is StepStatus.FAILED]
        if status is RunStatus.FAILED and not message and failed:  # KFP 2.x leaves run.error empty
            message = f"step {failed[0].name} failed: {failed[0].message}"
        return RunState(status, word, steps, message, _ts(run.created_at), _ts(run.finished_at) if status.terminal else None)

    def logs(self, ref: BackendRef, step: str) -> str:
        text = runs.read_log(self.status(ref), step)
        if text is not None:
            return text
        return (f"no log stored for step {step} yet; the pod's own log is in the run's page: {KubeflowRef.of(ref).dashboard}\n")

    def cancel(self, ref: BackendRef) -> None:
        self.client().terminate_run(KubeflowRef.of(ref).run_id)

    def run_prefixes(self, ref: BackendRef) -> list[str]:
        r = KubeflowRef.of(ref)  # the run's own pipeline root holds the launcher's layout and the meta mirror
        return [r.pipeline_root] if r.pipeline_root else [
            f"{self.stack.artifact_root.rstrip('/')}/{r.pipeline['name']}/{r.run_id}"]

    def artifacts(self, ref: BackendRef) -> list[ArtifactRef]:
        pipeline = KubeflowRef.of(ref).pipeline
        return runs.artifacts(self._tasks(self._run(ref), ref), runs.step_names(pipeline), pipeline)


def _api_message(exc: Any) -> str:
    try:
        return json.loads(exc.body).get("message", "") or str(exc.reason)
    except (TypeError, ValueError):
        return str(exc.reason)


def _ts(value: Any) -> float | None:
    return value.timestamp() if value is not None and hasattr(value, "timestamp") else None
