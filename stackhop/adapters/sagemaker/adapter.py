"""The SageMaker Pipelines adapter: compile to a definition; submit, watch, read logs and stop with boto3."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any, ClassVar

from stackhop.adapters.sagemaker.definition import (CODE_PARAM, MAX_INLINE_BYTES, compile_definition, instance_names,
                                                    record_names, step_names)
from stackhop.adapters.sagemaker.emulate import DefinitionEmulator
from stackhop.adapters.sagemaker.settings import SageMakerSettings
from stackhop.core import run_files
from stackhop.core.adapter import Adapter, RefData, BackendRef, Capability, Compiled, RunRequest
from stackhop.core.canonical import canonical_json
from stackhop.core.ir import Pipeline, Step
from stackhop.core.resolve import iteration_labels
from stackhop.core.resume import LEFT_OUT
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.runs import ArtifactRef, RunState, RunStatus, StepState, StepStatus
from stackhop.errors import ConfigError, StackhopError


class SageMakerRef(RefData):
    execution_arn: str
    pipeline_name: str
    run_prefix: str
    steps: dict[str, str] = {}
    """SageMaker step name -> stackhop's instance key."""
    records: dict[str, str] = {}
    """The SageMaker step recording a container step's outputs -> that container step's SageMaker name."""
    labels: dict[str, str] = {}
    """Instance key -> the iteration named after its item (`train[lr=0.05]`), for loops SageMaker unrolled."""
    resumed: str = ""
    """The stackhop run this one resumes; `mechanism` says how ("retry", "selective" or "rerun")."""
    mechanism: str = ""
    note: str = ""
    reused: dict[str, str] = {}
    """SageMaker step -> its status in the origin execution, for steps whose results this run takes from it."""
    again: dict[str, str] = {}
    """SageMaker step -> why it runs again."""
    origin_prefix: str = ""
    left_out: list[str] = []
    """Steps `--skip` left out of the definition: SKIPPED."""

class SageMakerAdapter(Adapter):
    name: ClassVar[str] = "sagemaker"
    Settings = SageMakerSettings
    Ref = SageMakerRef
    capabilities = frozenset({
        Capability.CONDITIONS, Capability.PARALLEL_FOR, Capability.FAN_IN, Capability.RETRIES, Capability.CACHING,
        Capability.TIMEOUTS, Capability.GPU, Capability.CONTAINER_STEPS, Capability.RESUME,
    })
    poll_seconds = (5.0, 30.0)
    emulator = DefinitionEmulator
    settings: SageMakerSettings

    def pipeline_name(self, ir: Pipeline) -> str:
        return f"{self.settings.pipeline_name_prefix}{ir.name}"[:256]

    def instance_type(self, step: Step) -> str:
        return self.explain_instance(step)[0]

    def explain_instance(self, step: Step) -> tuple[str, list[str]]:
        from stackhop.adapters.sagemaker.catalog import resolve

        res = step.settings.resources
        explicit = None
        if res is None and self.settings.default_instance_type:
            explicit = self.settings.default_instance_type
        kind = "training" if step.name in self.settings.training_steps else "processing"
        choice = resolve(res, job_kind=kind, where=f"step {step.name!r}", explicit=explicit,
                         timeout_seconds=step.settings.timeout_seconds)
        return choice.instance_type, list(choice.reasons)

    def explain(self, ir: Pipeline) -> dict[str, list[str]]:
        out = {}
        for step in ir.steps:
            instance, reasons = self.explain_instance(step)
            out[step.name] = [f"instance type {instance}", *reasons]
        return out

    def compile(self, ir: Pipeline) -> Compiled:
        root = self.stack.artifact_root
        if not root.startswith("s3://"):
            raise ConfigError(
                f"stack {self.stack.name!r}: SageMaker reads and writes artifacts on S3; set artifact_root to an s3:// "
                f"URI (it is {root!r}).")
        default = self.stack.config.defaults.image if self.stack.config.defaults else None
        definition, spec_text, spec_uri = compile_definition(ir, self.settings, self.stack.artifact_root,
                                                             self.instance_type,
                                                             default if isinstance(default, str) else None)
        text = json.dumps(definition, sort_keys=True, indent=1)
        notes = []
        if len(canonical_json(definition).encode()) > MAX_INLINE_BYTES:
            notes.append("the definition is over 1 MB; submit uploads it to S3 (PipelineDefinitionS3Location).")
        if any(s.settings.retry and s.settings.retry.max_retries for s in ir.steps):
            notes.append("SageMaker retries steps only on service faults (" + ", ".join(self.settings.retry_exception_types)
                         + "), not when the step's own code fails.")
        return Compiled(self.name, {"sagemaker-pipeline.json": text.encode(), "stackhop-spec.json": spec_text.encode()},
                        tuple(notes))

    def for_resume(self, ir: Pipeline, resume: dict[str, Any]) -> Pipeline:
        from stackhop.core.resume import by_backend

        return by_backend(ir, resume, "SageMaker")

    # ------------------------------------------------------------------ talking to SageMaker
    def client(self, service: str) -> Any:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ConfigError("the SageMaker adapter needs boto3; install it with `pip install 'stackhop[aws]'`.") from None
        return boto3.client(service, region_name=self.settings.region, config=Config(retries={"mode": "standard"}))

    def submit(self, compiled: Compiled, request: RunRequest) -> BackendRef:
        from botocore.exceptions import ClientError

        definition = compiled.files["sagemaker-pipeline.json"]
        store = _stage_spec(compiled, request.artifact_root)
        name = f"{self.settings.pipeline_name_prefix}{request.pipeline['name']}"
        sm = self.client("sagemaker")
        try:
            self._upsert(sm, name, definition, store)
            parameters = [{"Name": k, "Value": v if isinstance(v, str) else json.dumps(v)}
                          for k, v in sorted(request.parameters.items())]
            if request.code.archive_uri:
                parameters.append({"Name": CODE_PARAM, "Value": f"{request.code.archive_uri}#{request.code.digest}"})
            compiled_names = {d["Name"] for d in _all_steps(json.loads(definition)) if d["Type"] != "Condition"}
            keys = {sm: key for sm, key in instance_names(request.pipeline).items() if sm in compiled_names}
            plan, origin, statuses = (self._plan(sm, request, json.loads(definition), parameters, keys)
                                      if request.resume else (None, None, {}))
            if plan is not None and plan.mechanism == "retry":
                sm.retry_pipeline_execution(PipelineExecutionArn=origin.execution_arn,
                                            ClientRequestToken=_token("retry", request.run_id))
                started = {"PipelineExecutionArn": origin.execution_arn}
            else:
                selective = ({"SelectiveExecutionConfig": {
                    "SourcePipelineExecutionArn": origin.execution_arn,
                    "SelectedSteps": [{"StepName": n} for n in plan.selected]}}
                    if plan is not None and origin is not None and plan.mechanism == "selective" else {})
                started = sm.start_pipeline_execution(
                    PipelineName=name, PipelineExecutionDisplayName=request.run_id[:82], PipelineParameters=parameters,
                    ClientRequestToken=_token("start", request.run_id), **selective,
                )
        except ClientError as exc:
            error = exc.response["Error"]
            raise StackhopError(
                f"SageMaker refused pipeline {name!r}: {error.get('Code')}: {error.get('Message')}"
            ) from None
        arn = started["PipelineExecutionArn"]
        execution_id = arn.rsplit("/", 1)[-1]
        prefix = f"{store.root}/{request.pipeline['name']}/{execution_id}"
        ir = Pipeline.model_validate(request.pipeline)
        names, _checks = step_names(ir)
        records = {rec: names[instance] for instance, rec in record_names(ir).items() if rec in compiled_names}
        labels = iteration_labels(request.pipeline, request.parameters, request.artifact_root, list(keys.values()))
        resumed: dict[str, Any] = {}
        if plan is not None and origin is not None:
            resumed = {"resumed": request.resume["origin"], "mechanism": plan.mechanism, "note": plan.note,
                       "reused": {n: statuses.get(n, "") for n in plan.reused}, "again": plan.why,
                       "origin_prefix": origin.run_prefix, "left_out": list(request.resume.get("left_out", []))}
        return SageMakerRef(execution_arn=arn, pipeline_name=name, run_prefix=prefix, steps=keys,
                            records=records, labels=labels, **resumed).ref(self.name)

    def _plan(self, sm: Any, request: RunRequest, definition: dict[str, Any], parameters: list[dict[str, str]],
              keys: dict[str, str]) -> tuple[Any, SageMakerRef, dict[str, str]]:
        """How this run continues the one it resumes (see resume.py), from what SageMaker kept of that one."""
        from stackhop.adapters.sagemaker.resume import plan

        resume = request.resume or {}
        origin = SageMakerRef.model_validate(resume.get("origin_ref") or {})
        execution = sm.describe_pipeline_execution(PipelineExecutionArn=origin.execution_arn)
        status = execution.get("PipelineExecutionStatus", "")
        if status in ("Executing", "Stopping"):
            raise StackhopError(f"run {resume['origin']} is still {status.lower()} on SageMaker; wait for it to finish, "
                                f"or cancel it (stackhop cancel {resume['origin']}), then resume it.")
        before = json.loads(sm.describe_pipeline_definition_for_execution(
            PipelineExecutionArn=origin.execution_arn)["PipelineDefinition"])
        given = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=origin.execution_arn)
        before_params = {p["Name"]: p["Value"] for p in given.get("PipelineParameters", [])}
        statuses = {s.get("StepName", ""): s.get("StepStatus", "") for s in self._steps(origin.execution_arn)}
        before, changed = self._same_spec(before, definition, keys)
        rerun = {n for n, key in keys.items() if key.split("[", 1)[0] in set(resume.get("rerun", []))}
        found = plan(resume["origin"], before, definition, before_params, {p["Name"]: p["Value"] for p in parameters},
                     statuses, status, rerun, resume.get("from"), changed)
        return found, origin, statuses

    def _same_spec(self, before: dict[str, Any], after: dict[str, Any], keys: dict[str, str]
                   ) -> tuple[dict[str, Any], set[str]]:
        """Every step names the run spec by its content hash, so any change to the pipeline changes every step's
        arguments. Compare the two specs instead: the origin's definition is returned naming the new spec, with
        the SageMaker steps whose own part of the spec changed."""
        old_uri, new_uri = _spec_uri(before), _spec_uri(after)
        if not old_uri or not new_uri or old_uri == new_uri:
            return before, set()
        store = ArtifactStore(self.stack.artifact_root)
        try:
            old, new = store.read_json(old_uri), store.read_json(new_uri)
        except Exception:  # the origin's spec is gone: nothing can be known unchanged
            return before, set(keys)
        rest = lambda spec: {**spec, "pipeline": {**spec["pipeline"], "steps": []}}  # noqa: E731
        steps_of = lambda spec: {s["name"]: s for s in spec["pipeline"]["steps"]}  # noqa: E731
        if rest(old) != rest(new):
            changed = set(keys)
        else:
            o, n = steps_of(old), steps_of(new)
            changed = {sm for sm, key in keys.items() if o.get(key.split("[", 1)[0]) != n.get(key.split("[", 1)[0])}
        return json.loads(json.dumps(before).replace(json.dumps(old_uri), json.dumps(new_uri))), changed

    def _upsert(self, sm: Any, name: str, definition: bytes, store: ArtifactStore) -> str:
        """Create the pipeline or update its definition; definitions over 1 MB go through S3. Returns its ARN."""
        from botocore.exceptions import ClientError

        body: dict[str, Any] = {"PipelineName": name, "RoleArn": self.settings.role_arn}
        compact = canonical_json(json.loads(definition)).encode()
        if len(compact) > MAX_INLINE_BYTES:
            uri = store.root + "/_stackhop/definitions/" + hashlib.sha256(compact).hexdigest() + ".json"
            store.write_bytes(uri, compact)
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            body["PipelineDefinitionS3Location"] = {"Bucket": bucket, "ObjectKey": key}
        else:
            body["PipelineDefinition"] = compact.decode()
        try:
            sm.describe_pipeline(PipelineName=name)
            return str(sm.update_pipeline(**body)["PipelineArn"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFound":
                raise
        tags = [{"Key": k, "Value": v} for k, v in sorted(self.settings.tags.items())]
        created = sm.create_pipeline(**body, Tags=tags, ClientRequestToken=_token("create", name, compact.decode()))
        return str(created["PipelineArn"])

    def deploy(self, compiled: Compiled, label: str) -> dict[str, Any]:
        """Register the definition as the SageMaker pipeline (and keep a copy in the artifact store)."""
        from botocore.exceptions import ClientError

        kept = super().deploy(compiled, label)
        spec_text = compiled.files["stackhop-spec.json"]
        store = _stage_spec(compiled, self.stack.artifact_root)
        name = f"{self.settings.pipeline_name_prefix}{json.loads(spec_text)['pipeline']['name']}"
        try:
            arn = self._upsert(self.client("sagemaker"), name, compiled.files["sagemaker-pipeline.json"], store)
        except ClientError as exc:
            error = exc.response["Error"]
            raise StackhopError(f"SageMaker refused pipeline {name!r}: {error.get('Code')}: {error.get('Message')}") from None
        return {**kept, "pipeline_arn": arn}

    def stage(self, compiled: Compiled, request: RunRequest) -> None:
        _stage_spec(compiled, request.artifact_root)

    def _steps(self, arn: str) -> list[dict[str, Any]]:
        sm = self.client("sagemaker")
        steps: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"PipelineExecutionArn": arn, "SortOrder": "Ascending"}
            if token:
                kwargs["NextToken"] = token
            page = sm.list_pipeline_execution_steps(**kwargs)
            steps += page.get("PipelineExecutionSteps", [])
            token = page.get("NextToken")
            if not token:
                return steps

    def status(self, ref: BackendRef) -> RunState:
        r = SageMakerRef.of(ref)
        sm = self.client("sagemaker")
        execution = sm.describe_pipeline_execution(PipelineExecutionArn=r.execution_arn)
        word = execution.get("PipelineExecutionStatus", "")
        run = RUN_STATUS.get(word, RunStatus.UNKNOWN)
        seen: dict[str, StepState] = {}
        for step in self._steps(r.execution_arn):
            name = step.get("StepName", "")
            key = r.steps.get(name) or (r.steps.get(r.records[name]) if name in r.records else None)
            if key is None:
                continue
            native = step.get("StepStatus", "")
            job = next(iter((step.get("Metadata") or {}).values()), {}) or {}
            seen[name] = StepState(
                name=key, status=STEP_STATUS.get(native, StepStatus.UNKNOWN), native=native,
                attempts=int(step.get("AttemptCount") or 1), started_at=_ts(step.get("StartTime")),
                finished_at=_ts(step.get("EndTime")), message=step.get("FailureReason", ""),
                log_uri=job.get("Arn"), label=r.labels.get(key, ""),
            )
        for record, owner in r.records.items():
            merged = _with_record(seen.get(owner), seen.get(record), run.terminal)
            if merged is not None:
                seen[owner] = merged
        steps = {}
        for name, key in r.steps.items():
            state = seen.get(name)
            if name in r.reused:  # its results are the origin execution's (a retry lists them as they were)
                done = r.reused[name] == "Succeeded"
                state = StepState(name=key, status=StepStatus.CACHED if done else StepStatus.SKIPPED,
                                  native="resumed" if done else "not started",
                                  message=f"outputs of run {r.resumed}" if done else "", label=r.labels.get(key, ""),
                                  cache={"result": "hit", "from_run": r.resumed} if done else None)
            elif state is None:  # never started: a false condition, an upstream failure, or not yet
                final = StepStatus.SKIPPED if run.terminal else StepStatus.PENDING
                state = StepState(name=key, status=final, native="not started", label=r.labels.get(key, ""))
            if name in r.again:
                state = replace(state, cache={"result": "miss", "changed": [r.again[name]]})
            steps[state.name] = state
        for name in r.left_out:
            steps[name] = StepState(name=name, status=StepStatus.SKIPPED, native="skipped", message=LEFT_OUT)
        return RunState(run, word, steps, execution.get("FailureReason", ""), _ts(execution.get("CreationTime")),
                        _ts(execution.get("LastModifiedTime")) if run.terminal else None)

    def logs(self, ref: BackendRef, step: str) -> str:
        from botocore.exceptions import ClientError

        job_arn = next((s.log_uri for s in self.status(ref).steps.values() if s.name == step), None)
        if not job_arn:
            return ""
        kind = "TrainingJobs" if ":training-job/" in job_arn else "ProcessingJobs"
        job_name = job_arn.rsplit("/", 1)[-1]
        logs = self.client("logs")
        lines: list[str] = []
        try:
            pages = logs.get_paginator("filter_log_events").paginate(
                logGroupName=f"/aws/sagemaker/{kind}", logStreamNamePrefix=f"{job_name}/")
            for page in pages:
                lines += [e["message"] for e in page.get("events", [])]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
        return "\n".join(lines) + ("\n" if lines else "")

    def cancel(self, ref: BackendRef) -> None:
        arn = SageMakerRef.of(ref).execution_arn
        self.client("sagemaker").stop_pipeline_execution(
            PipelineExecutionArn=arn, ClientRequestToken=_token("stop", arn))

    def run_prefixes(self, ref: BackendRef) -> list[str]:
        return [SageMakerRef.of(ref).run_prefix]

    def artifacts(self, ref: BackendRef) -> list[ArtifactRef]:
        r = SageMakerRef.of(ref)
        own = run_files.list_artifacts(r.run_prefix)
        if not r.origin_prefix or r.origin_prefix == r.run_prefix:
            return own
        reused = {r.steps[n] for n, status in r.reused.items() if status == "Succeeded" and n in r.steps}
        return own + [a for a in run_files.list_artifacts(r.origin_prefix) if a.step in reused]


RUN_STATUS = {"Executing": RunStatus.RUNNING, "Stopping": RunStatus.CANCELLING, "Stopped": RunStatus.CANCELLED,
              "Failed": RunStatus.FAILED, "Succeeded": RunStatus.SUCCEEDED, "CompletedWithFailures": RunStatus.FAILED}
STEP_STATUS = {"Starting": StepStatus.PENDING, "Executing": StepStatus.RUNNING, "Stopping": StepStatus.CANCELLING,
               "Stopped": StepStatus.CANCELLED, "Failed": StepStatus.FAILED, "Succeeded": StepStatus.SUCCEEDED}


def _with_record(own: StepState | None, record: StepState | None, terminal: bool) -> StepState | None:
    """A container step is done when its outputs are recorded: until then it runs, and their failure is its own."""
    if own is None or own.status != StepStatus.SUCCEEDED or (record is None and terminal):
        return own
    if record is None:
        return replace(own, status=StepStatus.RUNNING, native="recording outputs", finished_at=None)
    if record.status == StepStatus.SUCCEEDED:
        return replace(own, finished_at=record.finished_at or own.finished_at)
    status = StepStatus.RUNNING if record.status == StepStatus.PENDING else record.status
    return replace(own, status=status, native=f"outputs {record.native}", finished_at=record.finished_at,
                   message=record.message)


def _stage_spec(compiled: Compiled, artifact_root: str) -> ArtifactStore:
    """Every step reads the run spec from the store, under its content hash: upload it once."""
    store = ArtifactStore(artifact_root)
    spec_text = compiled.files["stackhop-spec.json"]
    spec_uri = store.root + "/_stackhop/specs/" + hashlib.sha256(spec_text).hexdigest() + ".json"
    if not store.exists(spec_uri):
        store.write_bytes(spec_uri, spec_text)
    return store


def _token(*parts: str) -> str:
    """Deterministic idempotency token (SageMaker wants 32-128 characters)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _ts(value: Any) -> float | None:
    return value.timestamp() if hasattr(value, "timestamp") else None


def _spec_uri(definition: dict[str, Any]) -> str:
    for step in _all_steps(definition):
        args = (((step.get("Arguments") or {}).get("AppSpecification") or {}).get("ContainerArguments") or [])
        if "--spec" in args and isinstance(args[args.index("--spec") + 1], str):
            return str(args[args.index("--spec") + 1])
    return ""


def _all_steps(definition: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for step in definition["Steps"]:
        out.append(step)
        if step["Type"] == "Condition":
            out += step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", [])
    return out
