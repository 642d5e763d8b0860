"""`FakeSageMaker`: moto's server on a loopback port, with the pipeline operations it lacks.

The server is moto's own WSGI app, served in this process (`stackhop.testing.moto_server`), so
every client (boto3 here, s3fs/aiobotocore, a subprocess given `env()`) goes through botocore's
real serialization and real HTTP, while tests reach the same in-process backends to script what
only the service could do (an execution failing, a step finishing, a log line appearing).

Two things are added around moto's WSGI app, on this server only:

* a recorder, so tests can count the calls a piece of code made (`requests`);
* an answer for operations moto does not implement: moto raises NotImplementedError, which its
  server turns into HTTP 500, which every botocore client retries (measured: 5 requests with
  the legacy default, 3 in standard mode, 2 with `retries={"max_attempts": 1}`) before
  failing with an HTML page as the message. We answer HTTP 501 with
  an AWS-style JSON error instead; botocore never retries 501, so a missing operation fails at
  once and by name, whatever retry configuration the calling code uses.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs

from botocore.validate import ParamValidator
from botocore.utils import parse_to_aware_datetime
from moto.core.utils import utcnow
from moto.logs.models import logs_backends
from moto.s3.models import s3_backends
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.utilities.utils import get_partition

from . import operations
from .definition import step_names
from stackhop.testing.moto_server import MotoStandIn, WSGIApp

__all__ = ["FakeSageMaker"]

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/,\s]+)/aws4_request")


class FakeSageMaker(MotoStandIn):
    """A loopback AWS (S3, SageMaker, CloudWatch Logs, and whatever else moto serves) for tests.

    ```python
    with FakeSageMaker(region="us-east-1") as aws:
        sm = aws.client("sagemaker")
        sm.create_pipeline(PipelineName="p", PipelineDefinition=definition_json, RoleArn=role)
        arn = sm.start_pipeline_execution(PipelineName="p")["PipelineExecutionArn"]
        aws.set_steps(arn, [{"StepName": "train", "StepStatus": "Executing"}])
        aws.set_execution(arn, "Failed", failure_reason="train: exit 1")
    ```

    One may run at a time per process: moto's backends are process-global, and the pipeline
    operations are installed on moto's (global) SageMaker response class. Entering resets every
    moto backend in this process (so a concurrent `moto.mock_aws` would lose its state) and
    exiting resets them again and restores moto's response class.

    `stop_after_polls`: after StopPipelineExecution, how many DescribePipelineExecution calls
    still report "Stopping" before the execution reports "Stopped" (0: stopped at once).
    """

    def __init__(self, region: str = "us-east-1", *, stop_after_polls: int = 1) -> None:
        if stop_after_polls < 0:
            raise ValueError("stop_after_polls must be 0 or more")
        super().__init__(region, thread_name="fake-sagemaker")
        self._state = operations.PipelineState(stop_after_polls=stop_after_polls)
        self._recorder: _Recorder | None = None
        self._last_log_ms = 0

    def _install(self) -> Callable[[], None]:
        return operations.install(self._state)  # refuses a second concurrent instance

    def _wrap(self, app: WSGIApp) -> WSGIApp:
        self._recorder = _Recorder(app)
        return self._recorder

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(service, operation) for every request the server answered, oldest first.

        The service is the SigV4 signing name ("s3", "sagemaker", "logs"); the operation is the
        API name ("PutObject", "ListPipelineExecutionSteps"), or "METHOD /path" when it cannot be
        told. Set-up done through this object's helpers goes to the backends directly and is
        not counted.
        """
        return [] if self._recorder is None else self._recorder.snapshot()

    # ------------------------------------------------------------------ scripting

    def create_bucket(self, name: str) -> None:
        """Create an S3 bucket in this fake's region."""
        self._s3().create_bucket(name, self.region)

    def set_execution(self, execution_arn: str, status: str, failure_reason: str | None = None) -> None:
        """Set an execution's status (and failure reason) as the service would have moved it.

        `status` is one of botocore's PipelineExecutionStatus values. Only the execution changes:
        steps are scripted separately with `set_steps`. A stop in progress is abandoned.
        """
        allowed = operations.sagemaker_model().shape_for("PipelineExecutionStatus").enum
        if status not in allowed:
            raise ValueError(f"status {status!r} is not a pipeline execution status; expected one of {allowed}")
        _pipeline, execution = self._execution(execution_arn)
        with self._state.lock:
            execution.pipeline_execution_status = status
            execution.pipeline_execution_failure_reason = failure_reason
            execution.last_modified_time = utcnow()
            self._state.extras(execution.arn).stop_polls_left = None

    def set_steps(self, execution_arn: str, steps: Sequence[Mapping[str, Any]]) -> None:
        """Replace the steps ListPipelineExecutionSteps reports for an execution.

        Give them in the order they started. Each is a PipelineExecutionStep as botocore models it
        (checked against that shape) and needs at least StepName, which must be a step of the
        execution's definition, and StepStatus. StartTime defaults to now; timestamps may be
        datetimes, ISO 8601 strings or epoch seconds.
        """
        pipeline, execution = self._execution(execution_arn)
        definition = operations._document(execution.pipeline_definition_for_execution)
        known = step_names(definition)
        shape = operations.sagemaker_model().shape_for("PipelineExecutionStep")
        validator = ParamValidator()
        normalised: list[dict[str, Any]] = []
        for index, given in enumerate(steps):
            step = dict(given)
            where = f"step {index} ({step.get('StepName')!r})"
            report = validator.validate(step, shape)
            if report.has_errors():
                raise ValueError(f"{where} is not a PipelineExecutionStep: {report.generate_report()}")
            if "StepName" not in step or "StepStatus" not in step:
                raise ValueError(f"{where} needs StepName and StepStatus")
            if step["StepName"] not in known:
                raise ValueError(
                    f"{where}: pipeline {pipeline.pipeline_name!r} has no step {step['StepName']!r} "
                    f"(its steps: {', '.join(sorted(known)) or 'none'})"
                )
            step.setdefault("StartTime", utcnow())
            for key in ("StartTime", "EndTime"):
                if key in step:
                    step[key] = operations.as_naive_utc(parse_to_aware_datetime(step[key]))
            normalised.append(step)
        with self._state.lock:
            self._state.extras(execution.arn).steps = normalised

    def put_log_events(self, group: str, stream: str, lines: Iterable[str]) -> None:
        """Append `lines` to a CloudWatch Logs stream, creating the group and stream if needed.

        Each line is one event; timestamps are the current time, strictly increasing across
        calls, so the order lines were given is the order they are read back.
        """
        backend = logs_backends[self.account_id][self.region]
        if group not in backend.groups:
            backend.create_log_group(group, tags={})
        if stream not in backend.groups[group].streams:
            backend.create_log_stream(group, stream)
        events = []
        for line in lines:
            self._last_log_ms = max(self._last_log_ms + 1, int(time.time() * 1000))
            events.append({"timestamp": self._last_log_ms, "message": line})
        if events:
            backend.put_log_events(group, stream, events)

    # ------------------------------------------------------------------ internals

    def _s3(self) -> Any:
        return s3_backends[self.account_id][get_partition(self.region)]

    def _sagemaker(self, region: str) -> SageMakerModelBackend:
        return sagemaker_backends[self.account_id][region]

    def _execution(self, execution_arn: str) -> tuple[Any, Any]:
        parts = execution_arn.split(":")
        if len(parts) < 6:
            raise ValueError(f"{execution_arn!r} is not a pipeline execution ARN")
        try:
            return operations.find_execution(self._sagemaker(parts[3]), execution_arn)
        except LookupError as exc:
            raise ValueError(str(exc)) from None


# --------------------------------------------------------------------------- the WSGI wrapper


class _Recorder:
    """WSGI middleware: record (service, operation), and answer 501 for what moto lacks."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._calls: list[tuple[str, str]] = []

    def snapshot(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._calls)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        call: tuple[str, str] | None = None
        if not path.startswith("/moto-api"):
            call = _identify(environ)
            with self._lock:
                self._calls.append(call)
        try:
            return self._app(environ, start_response)
        except NotImplementedError as exc:
            service, operation = call or ("moto", path)
            return _not_implemented(start_response, service, operation, str(exc))


def _not_implemented(start_response: Callable[..., Any], service: str, operation: str, detail: str) -> Iterator[bytes]:
    body = json.dumps(
        {
            "__type": "NotImplemented",
            "message": f"{service}:{operation} is not implemented by moto or by stackhop's FakeSageMaker ({detail})",
        }
    ).encode()
    start_response(
        "501 Not Implemented",
        [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
    )
    return iter([body])


def _identify(environ: dict[str, Any]) -> tuple[str, str]:
    """(signing service, operation name) of a request, without consuming its body."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope:
        service = scope.group(2)
    elif "X-Amz-Credential" in query:  # a presigned URL
        parts = query["X-Amz-Credential"][0].split("/")
        service = parts[3] if len(parts) > 3 else "unknown"
    else:
        service = "unknown"
    fallback = f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"

    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:  # JSON protocols: "SageMaker.CreatePipeline", "Logs_20140328.GetLogEvents"
        return service, target.rsplit(".", 1)[-1]
    action = query.get("Action") or _form_action(environ)
    if action:  # query protocol (STS, IAM, …)
        return service, action[0]
    return service, _route(service, environ) or fallback


def _form_action(environ: dict[str, Any]) -> list[str]:
    """`Action` from a form-encoded body, putting the body back for the app to read."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return []
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return []
    if length <= 0:
        return []
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    return parse_qs(body.decode("utf-8", "replace")).get("Action", [])


def _route(service: str, environ: dict[str, Any]) -> str | None:
    """The operation of a REST request (S3), matched on method, path and query by moto's router,
    which is built from botocore's model. The router sees a copy of the request with no body."""
    from moto.core.request import Request
    from moto.core.routing import get_service_router

    bodiless = {**environ, "wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": "0"}
    try:
        operation, _params = get_service_router(service).match(Request(bodiless))
    except Exception:  # unknown service, no match: the caller falls back to "METHOD /path"
        return None
    return str(operation.name)
