"""SageMaker Pipelines operations grafted onto moto's server: the missing ones, and stricter ones.

moto's server answers a SageMaker request by instantiating `moto.sagemaker.responses.SageMakerResponse`
and calling the method named after the `X-Amz-Target` header's operation (`ListPipelineExecutionSteps`
-> `list_pipeline_execution_steps`), looked up on the class at request time. So an operation can be
added or replaced by setting a method on that class, with no edit to moto's files. `install()` does
exactly that for the operations in `_HANDLERS` (and for one CloudWatch Logs operation on
`LogsResponse`) and returns a function that puts every original back; `FakeSageMaker` installs on
enter and uninstalls on exit, so nothing leaks past its `with`.

Every handler here works on moto's own in-process models (`FakePipeline`, `FakePipelineExecution`)
plus a `PipelineState` for what moto does not keep (step listings, idempotency tokens, stop
progress). What each one changes compared with moto is in its docstring.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape, StructureShape
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.logs.exceptions import InvalidParameterException
from moto.logs.exceptions import ResourceNotFoundException as LogsResourceNotFound
from moto.logs.responses import LogsResponse
from moto.s3.exceptions import S3ClientError
from moto.s3.models import s3_backends
from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
from moto.sagemaker.models import FakePipeline, FakePipelineExecution, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from .definition import DefinitionError, check_definition, dependency_graph, parameter_names

__all__ = ["PipelineState", "as_naive_utc", "find_execution", "handled_operations", "install", "sagemaker_model"]

#: The page size used when a List call gives no MaxResults. The API reference documents no
#: default; 10 is what other SageMaker List operations use, and a small page makes callers that
#: forget to follow NextToken fail in tests rather than on a long real run.
DEFAULT_PAGE_SIZE = 10

# Very long free-text values (a whole definition) are not pattern-checked: their patterns are
# permissive and Python's backtracking regex engine would spend seconds on a megabyte.
_MAX_PATTERN_CHECKED_CHARS = 4096


@dataclass
class ExecutionExtras:
    """What the stand-in keeps for one execution beside moto's `FakePipelineExecution`."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    #: The SelectiveExecutionConfig the execution was started with, as given.
    selective: dict[str, Any] | None = None
    #: How many times RetryPipelineExecution restarted it.
    retries: int = 0
    #: While a StopPipelineExecution is in progress: DescribePipelineExecution calls left that
    #: still report "Stopping". None when no stop is in progress.
    stop_polls_left: int | None = None


@dataclass
class PipelineState:
    """State the grafted operations share with `FakeSageMaker`'s test-side helpers.

    Guarded by `lock`: moto's server handles each request on its own thread.
    """

    stop_after_polls: int = 1
    lock: threading.RLock = field(default_factory=threading.RLock)
    executions: dict[str, ExecutionExtras] = field(default_factory=dict)
    #: (pipeline ARN, ClientRequestToken) -> execution ARN, for StartPipelineExecution idempotency.
    start_tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (execution ARN, ClientRequestToken) of the retries done, for RetryPipelineExecution idempotency.
    retry_tokens: set[tuple[str, str]] = field(default_factory=set)
    #: (account, region, pipeline name, ClientRequestToken) -> pipeline ARN, for CreatePipeline.
    create_tokens: dict[tuple[str, str, str, str], str] = field(default_factory=dict)

    def extras(self, execution_arn: str) -> ExecutionExtras:
        return self.executions.setdefault(execution_arn, ExecutionExtras())

    def finish_stop(self, execution: FakePipelineExecution) -> None:
        """Complete a stop: the execution and every step still stopping become Stopped."""
        now = utcnow()
        extras = self.extras(execution.arn)
        extras.stop_polls_left = None
        execution.pipeline_execution_status = "Stopped"
        execution.last_modified_time = now
        for step in extras.steps:
            if step.get("StepStatus") == "Stopping":
                step["StepStatus"] = "Stopped"
                step.setdefault("EndTime", now)


_state: PipelineState | None = None
_install_lock = threading.Lock()

Handler = Callable[[Any], Any]
#: (moto response class, method name) -> the method installed in its place.
_HANDLERS: dict[tuple[type, str], Handler] = {}


def install(state: PipelineState) -> Callable[[], None]:
    """Put the handlers on moto's response classes; return the function that restores the originals.

    Refuses to install twice: the classes and moto's backends are process-wide.
    """
    global _state
    with _install_lock:
        if _state is not None:
            raise RuntimeError("the SageMaker pipeline operations are already installed (one FakeSageMaker at a time)")
        _state = state
        originals = {(owner, name): owner.__dict__.get(name) for owner, name in _HANDLERS}
        for (owner, name), handler in _HANDLERS.items():
            setattr(owner, name, handler)

    def uninstall() -> None:
        global _state
        with _install_lock:
            for (owner, name), original in originals.items():
                if original is None:
                    delattr(owner, name)
                else:
                    setattr(owner, name, original)
            _state = None

    return uninstall


def _current_state() -> PipelineState:
    if _state is None:  # only reachable if a request races FakeSageMaker's exit
        raise RuntimeError("FakeSageMaker is not running")
    return _state


def _operation(name: str) -> Callable[[Callable[[SageMakerResponse], ActionResult]], Handler]:
    """Register a handler for operation `name`, checking the request against botocore's shapes first.

    botocore checks only required members, types and minimums on the client; the service also
    enforces maximum lengths, patterns, enums and ranges, answering ValidationException. We do the
    same so a request the real service would refuse is refused here too.
    """

    def register(handler: Callable[[SageMakerResponse], ActionResult]) -> Handler:
        @functools.wraps(handler)
        def checked(self: SageMakerResponse) -> ActionResult:
            input_shape = _operation_model(name).input_shape
            if input_shape is not None:
                errors = _constraint_errors(input_shape, getattr(self, "params", {}) or {}, "")
                if errors:
                    plural = "s" if len(errors) > 1 else ""
                    raise ValidationError(f"{len(errors)} validation error{plural} detected: " + "; ".join(errors))
            return handler(self)

        method_name = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        _HANDLERS[(SageMakerResponse, method_name)] = checked
        return checked

    return register


# --------------------------------------------------------------------------- pipelines


@_operation("CreatePipeline")
def create_pipeline(self: SageMakerResponse) -> ActionResult:
    """CreatePipeline with the definition checked (see `definition.py`) and the token honoured.

    moto stores any text and ignores ClientRequestToken; the service rejects a definition it
    cannot run, and a retried create with the same token returns the pipeline it already made.
    A definition given by `PipelineDefinitionS3Location` is read from moto's S3 and stored as
    text, as if it had been inline (moto would store the parsed dict).
    """
    state = _current_state()
    backend = self.sagemaker_backend
    name: str = self._get_param("PipelineName")
    token = (self.current_account, self.region, name, self._get_param("ClientRequestToken") or "")
    with state.lock:
        existing = state.create_tokens.get(token)
        if existing and name in backend.pipelines and backend.pipelines[name].arn == existing:
            return ActionResult({"PipelineArn": existing})
    text = _definition_text(self, required=True)
    pipeline = backend.create_pipeline(
        pipeline_name=name,
        pipeline_display_name=self._get_param("PipelineDisplayName"),
        pipeline_definition=text,  # type: ignore[arg-type]
        pipeline_definition_s3_location=None,  # type: ignore[arg-type]
        pipeline_description=self._get_param("PipelineDescription"),
        role_arn=self._get_param("RoleArn"),
        tags=self._get_param("Tags"),
        parallelism_configuration=self._get_param("ParallelismConfiguration"),
    )
    with state.lock:
        state.create_tokens[token] = pipeline.arn
    return ActionResult({"PipelineArn": pipeline.arn})


@_operation("UpdatePipeline")
def update_pipeline(self: SageMakerResponse) -> ActionResult:
    """UpdatePipeline with the new definition checked, ResourceNotFound for an unknown pipeline,
    a name or ARN accepted, and LastModifiedTime moved (moto leaves it)."""
    backend = self.sagemaker_backend
    pipeline = _pipeline(backend, self._get_param("PipelineName"))
    text = _definition_text(self, required=False)
    backend.update_pipeline(
        pipeline.pipeline_name,
        pipeline_display_name=self._get_param("PipelineDisplayName"),
        pipeline_definition=text,
        pipeline_definition_s3_location=None,
        pipeline_description=self._get_param("PipelineDescription"),
        role_arn=self._get_param("RoleArn"),
        parallelism_configuration=self._get_param("ParallelismConfiguration"),
    )
    pipeline.last_modified_time = utcnow()
    return ActionResult({"PipelineArn": pipeline.arn})


@_operation("DescribePipeline")
def describe_pipeline(self: SageMakerResponse) -> ActionResult:
    """DescribePipeline answering ResourceNotFound for an unknown pipeline, as the service does
    (moto answers ValidationException, which would teach callers to test the wrong code)."""
    backend = self.sagemaker_backend
    pipeline = _pipeline(backend, self._get_param("PipelineName"))
    return ActionResult(backend.describe_pipeline(pipeline.pipeline_name))


@_operation("DeletePipeline")
def delete_pipeline(self: SageMakerResponse) -> ActionResult:
    """DeletePipeline answering ResourceNotFound for an unknown pipeline."""
    backend = self.sagemaker_backend
    pipeline = _pipeline(backend, self._get_param("PipelineName"))
    return ActionResult({"PipelineArn": backend.delete_pipeline(pipeline.pipeline_name)})


# --------------------------------------------------------------------------- executions


@_operation("StartPipelineExecution")
def start_pipeline_execution(self: SageMakerResponse) -> ActionResult:
    """StartPipelineExecution that is idempotent by token, checks parameter names, and starts
    the execution in "Executing" (moto: a new random execution per call, any parameter names,
    "Succeeded" at once)."""
    state = _current_state()
    backend = self.sagemaker_backend
    pipeline = _pipeline(backend, self._get_param("PipelineName"))
    token = (pipeline.arn, self._get_param("ClientRequestToken") or "")
    with state.lock:
        existing = state.start_tokens.get(token)
        if existing and existing in pipeline.pipeline_executions:
            return ActionResult({"PipelineExecutionArn": existing})

    declared = parameter_names(_document(pipeline.pipeline_definition))
    given = [p.get("Name") for p in self._get_param("PipelineParameters") or []]
    unknown = sorted({str(n) for n in given if n not in declared})
    if unknown:
        raise ValidationError(
            f"Pipeline parameter(s) {', '.join(unknown)} are not defined in the definition of pipeline "
            f"{pipeline.pipeline_name!r} (it defines: {', '.join(sorted(declared)) or 'none'})."
        )
    duplicated = sorted({str(n) for n in given if given.count(n) > 1})
    if duplicated:
        raise ValidationError(f"Pipeline parameter(s) {', '.join(duplicated)} are given more than once.")
    selective = self._get_param("SelectiveExecutionConfig")
    if selective:
        _check_selection(state, backend, pipeline, selective)

    started = backend.start_pipeline_execution(
        pipeline.pipeline_name,
        self._get_param("PipelineExecutionDisplayName"),
        self._get_param("PipelineParameters"),
        self._get_param("PipelineExecutionDescription"),
        self._get_param("ParallelismConfiguration"),
        self._get_param("ClientRequestToken"),
    )
    arn = started["PipelineExecutionArn"]
    pipeline.pipeline_executions[arn].pipeline_execution_status = "Executing"
    with state.lock:
        state.start_tokens[token] = arn
        state.extras(arn).selective = copy.deepcopy(selective) if selective else None
    return ActionResult({"PipelineExecutionArn": arn})


def _check_selection(state: PipelineState, backend: SageMakerModelBackend, pipeline: FakePipeline,
                     selective: dict[str, Any]) -> None:
    """A selective execution as the service checks it: the source is a finished execution of the same pipeline,
    each selected step is a step of the definition, every step on a path between two selected steps is selected,
    and each unselected step a selected one depends on succeeded in the source (where the test scripted its steps).
    The messages are the stand-in's own; the service documents the rules, not its wording."""
    source_arn = selective.get("SourcePipelineExecutionArn", "")
    source_pipeline, source = _execution(backend, source_arn)
    if source_pipeline.arn != pipeline.arn:
        raise ValidationError(f"Source pipeline execution {source_arn} is not an execution of pipeline "
                              f"{pipeline.pipeline_name!r}.")
    if source.pipeline_execution_status not in ("Succeeded", "Failed", "Stopped"):
        raise ValidationError(f"Source pipeline execution {source_arn} is {source.pipeline_execution_status}; it "
                              "must be Succeeded, Failed or Stopped.")
    graph = dependency_graph(_document(pipeline.pipeline_definition))
    selected = [s.get("StepName", "") for s in selective.get("SelectedSteps") or []]
    unknown = sorted(n for n in selected if n not in graph)
    if unknown:
        raise ValidationError(f"Selected step(s) {', '.join(unknown)} are not steps of pipeline "
                              f"{pipeline.pipeline_name!r}.")
    chosen = set(selected)
    below = {n: _reachable(graph, n) for n in graph}  # n -> every step downstream of n
    for a in sorted(chosen):
        for b in sorted(chosen & below[a]):
            between = sorted(x for x in below[a] - chosen if b in below[x])
            if between:
                raise ValidationError(f"Selected steps {a} and {b} have unselected step(s) {', '.join(between)} "
                                      "between them; select every step on a path between two selected steps.")
    with state.lock:
        ran = {s["StepName"]: s["StepStatus"] for s in state.extras(source.arn).steps}
    if ran:
        inputs = {up for up, downs in graph.items() if downs & chosen} - chosen
        failed = sorted(n for n in inputs if ran.get(n) != "Succeeded")
        if failed:
            raise ValidationError(f"Step(s) {', '.join(failed)} did not succeed in source pipeline execution "
                                  f"{source_arn}; select them too.")


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for down in graph.get(todo.pop(), ()):
            if down not in seen:
                seen.add(down)
                todo.append(down)
    return seen


@_operation("RetryPipelineExecution")
def retry_pipeline_execution(self: SageMakerResponse) -> ActionResult:
    """RetryPipelineExecution (moto lacks it): a Failed or Stopped execution is Executing again, idempotent by
    ClientRequestToken. Its steps stay as scripted: the test says which ones the retry ran, with `set_steps`.
    Retrying an execution in any other status is a ValidationException (the stand-in's wording)."""
    state = _current_state()
    backend = self.sagemaker_backend
    _pipeline_of, execution = _execution(backend, self._get_param("PipelineExecutionArn"))
    token = (execution.arn, self._get_param("ClientRequestToken") or "")
    with state.lock:
        if token in state.retry_tokens:
            return ActionResult({"PipelineExecutionArn": execution.arn})
        status = execution.pipeline_execution_status
        if status not in ("Failed", "Stopped"):
            raise ValidationError(f"Pipeline execution {execution.arn} is {status}; only a Failed or Stopped "
                                  "execution can be retried.")
        state.retry_tokens.add(token)
        execution.pipeline_execution_status = "Executing"
        execution.pipeline_execution_failure_reason = None
        execution.last_modified_time = utcnow()
        state.extras(execution.arn).retries += 1
    return ActionResult({"PipelineExecutionArn": execution.arn})


@_operation("DescribePipelineExecution")
def describe_pipeline_execution(self: SageMakerResponse) -> ActionResult:
    """DescribePipelineExecution with the scripted status and FailureReason (moto always sends
    an empty FailureReason), ResourceNotFound for an unknown ARN, and stop progress: while a stop
    is in progress the first `stop_after_polls` calls report "Stopping", the next one "Stopped"."""
    state = _current_state()
    backend = self.sagemaker_backend
    arn = self._get_param("PipelineExecutionArn")
    _pipeline_of, execution = _execution(backend, arn)
    with state.lock:
        extras = state.extras(execution.arn)
        if execution.pipeline_execution_status == "Stopping" and extras.stop_polls_left is not None:
            if extras.stop_polls_left <= 0:
                state.finish_stop(execution)
            else:
                extras.stop_polls_left -= 1
        response = backend.describe_pipeline_execution(execution.arn)
        response["PipelineExecutionStatus"] = execution.pipeline_execution_status
        response["LastModifiedTime"] = execution.last_modified_time
        response.pop("FailureReason", None)
        if execution.pipeline_execution_failure_reason:
            response["FailureReason"] = execution.pipeline_execution_failure_reason
        response.pop("PipelineExperimentConfig", None)
        if not response.get("ParallelismConfiguration"):
            response.pop("ParallelismConfiguration", None)
        if extras.selective:
            response["SelectiveExecutionConfig"] = copy.deepcopy(extras.selective)
    return ActionResult(response)


@_operation("ListPipelineExecutions")
def list_pipeline_executions(self: SageMakerResponse) -> ActionResult:
    """ListPipelineExecutions with CreatedAfter/CreatedBefore, SortBy, SortOrder and pagination
    (moto returns everything unsorted, with the string "None" as every FailureReason)."""
    state = _current_state()
    backend = self.sagemaker_backend
    pipeline = _pipeline(backend, self._get_param("PipelineName"))
    after = _optional_naive(self._get_param("CreatedAfter"))
    before = _optional_naive(self._get_param("CreatedBefore"))
    executions = [
        e
        for e in pipeline.pipeline_executions.values()
        if (after is None or e.creation_time > after) and (before is None or e.creation_time < before)
    ]
    if self._get_param("SortBy", "CreationTime") == "PipelineExecutionArn":
        executions.sort(key=lambda e: e.arn)
    else:
        executions.sort(key=lambda e: (e.creation_time, e.arn))
    if self._get_param("SortOrder", "Descending") == "Descending":
        executions.reverse()
    page, token = _page(executions, self._get_param("NextToken"), self._get_param("MaxResults"))
    with state.lock:
        summaries = []
        for e in page:
            summary = {
                "PipelineExecutionArn": e.arn,
                "StartTime": e.start_time,
                "PipelineExecutionStatus": e.pipeline_execution_status,
                "PipelineExecutionDescription": e.pipeline_execution_description,
                "PipelineExecutionDisplayName": e.pipeline_execution_display_name,
                "PipelineExecutionFailureReason": e.pipeline_execution_failure_reason,
            }
            summaries.append({k: v for k, v in summary.items() if v is not None})
    result: dict[str, Any] = {"PipelineExecutionSummaries": summaries}
    if token:
        result["NextToken"] = token
    return ActionResult(result)


@_operation("ListPipelineExecutionSteps")
def list_pipeline_execution_steps(self: SageMakerResponse) -> ActionResult:
    """ListPipelineExecutionSteps (moto lacks it): the steps scripted with `FakeSageMaker.set_steps`.

    The scripted list is in start order; SortOrder "Ascending" returns it as given, "Descending"
    (the API's default) reversed. MaxResults (default 10) and NextToken page through it.
    """
    state = _current_state()
    backend = self.sagemaker_backend
    _pipeline_of, execution = _execution(backend, self._get_param("PipelineExecutionArn"))
    with state.lock:
        steps = [copy.deepcopy(s) for s in state.extras(execution.arn).steps]
    if self._get_param("SortOrder", "Descending") == "Descending":
        steps.reverse()
    page, token = _page(steps, self._get_param("NextToken"), self._get_param("MaxResults"))
    result: dict[str, Any] = {"PipelineExecutionSteps": page}
    if token:
        result["NextToken"] = token
    return ActionResult(result)


@_operation("StopPipelineExecution")
def stop_pipeline_execution(self: SageMakerResponse) -> ActionResult:
    """StopPipelineExecution (moto lacks it): Executing -> Stopping -> Stopped.

    The execution and its Starting/Executing steps become "Stopping"; DescribePipelineExecution
    then reports "Stopping" `stop_after_polls` times before everything still stopping becomes
    "Stopped" (0: stopped at once). Stopping an execution that is already Stopping or Stopped
    answers its ARN again; stopping one that has finished (Succeeded, Failed,
    CompletedWithFailures) is a ValidationException. The real service does not document the error
    for that last case; callers should read the status rather than depend on the code.
    """
    state = _current_state()
    backend = self.sagemaker_backend
    _pipeline_of, execution = _execution(backend, self._get_param("PipelineExecutionArn"))
    with state.lock:
        status = execution.pipeline_execution_status
        if status in ("Stopping", "Stopped"):
            return ActionResult({"PipelineExecutionArn": execution.arn})
        if status != "Executing":
            raise ValidationError(
                f"Pipeline execution {execution.arn} is {status}; only an Executing execution can be stopped."
            )
        execution.pipeline_execution_status = "Stopping"
        execution.last_modified_time = utcnow()
        extras = state.extras(execution.arn)
        for step in extras.steps:
            if step.get("StepStatus") in ("Starting", "Executing"):
                step["StepStatus"] = "Stopping"
        extras.stop_polls_left = state.stop_after_polls
        if state.stop_after_polls <= 0:
            state.finish_stop(execution)
    return ActionResult({"PipelineExecutionArn": execution.arn})


@_operation("DescribePipelineDefinitionForExecution")
def describe_pipeline_definition_for_execution(self: SageMakerResponse) -> ActionResult:
    """moto's answer, with ResourceNotFound for an unknown execution."""
    backend = self.sagemaker_backend
    _pipeline_of, execution = _execution(backend, self._get_param("PipelineExecutionArn"))
    return ActionResult(backend.describe_pipeline_definition_for_execution(execution.arn))


@_operation("ListPipelineParametersForExecution")
def list_pipeline_parameters_for_execution(self: SageMakerResponse) -> ActionResult:
    """moto's answer, with ResourceNotFound for an unknown execution."""
    backend = self.sagemaker_backend
    _pipeline_of, execution = _execution(backend, self._get_param("PipelineExecutionArn"))
    return ActionResult(backend.list_pipeline_parameters_for_execution(execution.arn))


# --------------------------------------------------------------------------- CloudWatch Logs


def filter_log_events(self: LogsResponse) -> str:
    """FilterLogEvents honouring `logStreamNamePrefix`, which moto ignores (it searches every
    stream of the group). The adapter reads a job's logs by that prefix (`<job-name>/`), so without
    this a test would see every job's lines. Giving both logStreamNames and logStreamNamePrefix is
    an InvalidParameterException, as in the service."""
    prefix: str | None = self._get_param("logStreamNamePrefix")
    if prefix is None:
        return _ORIGINAL_FILTER_LOG_EVENTS(self)
    if self._get_param("logStreamNames"):
        raise InvalidParameterException("logStreamNames and logStreamNamePrefix cannot both be specified.")
    group: str = self._get_param("logGroupName")
    backend = self.logs_backend
    if group not in backend.groups:
        raise LogsResourceNotFound()
    matching = sorted(name for name in backend.groups[group].streams if name.startswith(prefix))
    if not matching:  # moto reads an empty stream list as "all streams"
        return json.dumps({"events": [], "searchedLogStreams": []})
    events, next_token, searched = backend.filter_log_events(
        group,
        matching,
        self._get_param("startTime"),
        self._get_param("endTime"),
        self._get_param("limit"),
        self._get_param("nextToken"),
        self._get_param("filterPattern"),
        self._get_param("interleaved", False),
    )
    return json.dumps({"events": events, "nextToken": next_token, "searchedLogStreams": searched})


_ORIGINAL_FILTER_LOG_EVENTS: Callable[[LogsResponse], str] = LogsResponse.filter_log_events
_HANDLERS[(LogsResponse, "filter_log_events")] = filter_log_events


# --------------------------------------------------------------------------- lookups


def find_execution(backend: SageMakerModelBackend, arn: str) -> tuple[FakePipeline, FakePipelineExecution]:
    """The pipeline and execution an execution ARN names, or LookupError."""
    # arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME/execution/ID
    resource = arn.split(":", 5)[-1]
    parts = resource.split("/")
    if len(parts) != 4 or parts[0] != "pipeline" or parts[2] != "execution":
        raise LookupError(f"{arn!r} is not a pipeline execution ARN")
    pipeline = backend.pipelines.get(parts[1])
    if pipeline is None or arn not in pipeline.pipeline_executions:
        raise LookupError(f"pipeline execution {arn!r} does not exist")
    return pipeline, pipeline.pipeline_executions[arn]


def _execution(backend: SageMakerModelBackend, arn: str) -> tuple[FakePipeline, FakePipelineExecution]:
    try:
        return find_execution(backend, arn)
    except LookupError:
        raise ResourceNotFound(f"Pipeline execution '{arn}' does not exist.") from None


def _pipeline(backend: SageMakerModelBackend, name_or_arn: str) -> FakePipeline:
    """A pipeline by name or ARN (the API takes either), or ResourceNotFound."""
    name = name_or_arn.split(":pipeline/", 1)[1] if name_or_arn.startswith("arn:") and ":pipeline/" in name_or_arn else name_or_arn
    pipeline = backend.pipelines.get(name)
    if pipeline is None or (name_or_arn.startswith("arn:") and pipeline.arn != name_or_arn):
        raise ResourceNotFound(f"Pipeline '{name_or_arn}' does not exist.")
    return pipeline


def _document(definition: str | dict[str, Any]) -> dict[str, Any]:
    """A stored definition as a dict (moto's own S3 path stores a dict; ours store text)."""
    if isinstance(definition, dict):
        return definition
    loaded = json.loads(definition)
    return loaded if isinstance(loaded, dict) else {}


def _definition_text(self: SageMakerResponse, *, required: bool) -> str | None:
    """The checked definition of a Create/UpdatePipeline request, read from S3 if given by location."""
    inline: str | None = self._get_param("PipelineDefinition")
    location: dict[str, Any] | None = self._get_param("PipelineDefinitionS3Location")
    if inline is not None and location is not None:
        raise ValidationError("Give either PipelineDefinition or PipelineDefinitionS3Location, not both.")
    if inline is None and location is None:
        if required:
            raise ValidationError("Either PipelineDefinition or PipelineDefinitionS3Location must be given.")
        return None
    try:
        if inline is not None:
            check_definition(inline, inline=True)
            return inline
        assert location is not None
        text = _read_s3_definition(self, location)
        check_definition(text, inline=False)
        return text
    except DefinitionError as exc:
        raise ValidationError(str(exc)) from None


def _read_s3_definition(self: SageMakerResponse, location: dict[str, Any]) -> str:
    bucket, key = str(location["Bucket"]), str(location["ObjectKey"])  # both required by the shape
    version: str | None = location.get("VersionId")
    where = f"s3://{bucket}/{key}" + (f"?versionId={version}" if version else "")
    try:
        obj = s3_backends[self.current_account][self.partition].get_object(bucket, key, version_id=version)
    except S3ClientError as exc:
        raise ValidationError(f"PipelineDefinitionS3Location {where} could not be read: {exc.message}") from None
    if obj is None:
        raise ValidationError(f"PipelineDefinitionS3Location {where} could not be read: no such object.")
    try:
        return bytes(obj.value).decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"PipelineDefinitionS3Location {where} is not UTF-8 text.") from None


# --------------------------------------------------------------------------- helpers


def _page(items: Sequence[Any], next_token: str | None, max_results: int | None) -> tuple[list[Any], str | None]:
    """One page of `items` and the token for the next (an offset; opaque to callers)."""
    start = 0
    if next_token:
        if not next_token.isdigit() or int(next_token) > len(items):
            raise ValidationError(f"Invalid pagination token {next_token!r}.")
        start = int(next_token)
    size = max_results or DEFAULT_PAGE_SIZE
    end = start + size
    return list(items[start:end]), (str(end) if end < len(items) else None)


def as_naive_utc(value: dt.datetime) -> dt.datetime:
    """moto keeps naive UTC datetimes; convert an aware one to match."""
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _optional_naive(value: Any) -> dt.datetime | None:
    return as_naive_utc(value) if isinstance(value, dt.datetime) else None


@functools.lru_cache(maxsize=None)
def _operation_model(name: str) -> OperationModel:
    return sagemaker_model().operation_model(name)


@functools.lru_cache(maxsize=1)
def sagemaker_model() -> ServiceModel:
    """botocore's SageMaker service model: the shapes and enums the real service publishes."""
    return botocore.session.get_session().get_service_model("sagemaker")


@functools.lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str] | None:
    """A service pattern compiled for Python, or None where it uses Java-only syntax (\\p{...})."""
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _constraint_errors(shape: Shape, value: Any, path: str) -> list[str]:
    """The service-side constraint violations in `value`, worded as the service words them."""
    where = path or shape.name
    errors: list[str] = []
    meta = shape.metadata
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        for member, member_shape in shape.members.items():
            if member in value and value[member] is not None:
                child = f"{path}.{_camel(member)}" if path else _camel(member)
                errors += _constraint_errors(member_shape, value[member], child)
    elif shape.type_name == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}")
        member_shape = getattr(shape, "member")
        for index, item in enumerate(value, start=1):
            errors += _constraint_errors(member_shape, item, f"{where}.{index}.member")
    elif shape.type_name == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}")
        if "min" in meta and len(value) < meta["min"]:
            errors.append(f"Value at '{where}' failed to satisfy constraint: Member must have length greater than or equal to {meta['min']}")
        if shape.enum and value not in shape.enum:
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = _pattern(meta["pattern"]) if "pattern" in meta else None
        if pattern is not None and len(value) <= _MAX_PATTERN_CHECKED_CHARS and not pattern.fullmatch(value):
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must satisfy regular expression pattern: {meta['pattern']}")
    elif shape.type_name in ("integer", "long") and isinstance(value, int):
        if "max" in meta and value > meta["max"]:
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must have value less than or equal to {meta['max']}")
        if "min" in meta and value < meta["min"]:
            errors.append(f"Value '{value}' at '{where}' failed to satisfy constraint: Member must have value greater than or equal to {meta['min']}")
    return errors


def _camel(member: str) -> str:
    """AWS names a member in validation messages in lowerCamelCase ("pipelineName")."""
    return member[:1].lower() + member[1:]


def handled_operations() -> Iterable[str]:
    """The moto response methods this module installs, as "Class.method" (for docs and tests)."""
    return tuple(f"{owner.__name__}.{name}" for owner, name in _HANDLERS)
