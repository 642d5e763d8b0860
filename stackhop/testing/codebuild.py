"""`FakeCodeBuild`: moto's server on loopback, with CodeBuild builds that finish when a test says so.

moto (5.2.5) serves CreateProject, BatchGetProjects, StartBuild, BatchGetBuilds and StopBuild,
so the code under test uses real boto3 over real HTTP. Two things about its builds make it
unable to prove a builder on its own, and this helper changes exactly those, while running:

* StartBuild ignores every override (source type and location, buildspec, environment
  variables, privileged mode, timeout): the build moto stores describes a CodeCommit source.
  Here every StartBuild request is recorded with its parameters, and the stored build is given
  the overrides the way CodeBuild applies them, so BatchGetBuilds reports what was asked for.
* BatchGetBuilds marks every build SUCCEEDED the first time it is read (and appends another set
  of phases on every read; it even turns a stopped build into a succeeded one). Here builds
  stay IN_PROGRESS until the test calls `finish()`, which sets the status, the phases with their
  failure context, and `exportedEnvironmentVariables`, checked against botocore's enums.

`on_start` (called on the server thread while StartBuild is answered, with the build as stored
and the request's parameters) lets a test play the build itself: read the uploaded source from
S3 and `finish()` it before the client's first poll.

What is not modelled, compared with CodeBuild: nothing runs (no container, no buildspec
parsing or execution, no phases moving by themselves, no logs in CloudWatch); IAM and the
service role's permissions; source download and its errors; queue and build timeouts; batch
builds, reports, webhooks, fleets, VPC configs; validation beyond moto's own (e.g. moto
requires a location even for NO_SOURCE projects, and checks the role's account).

One may run at a time per process: moto's backends are process-global, and the read behaviour
is installed on moto's (global) CodeBuild backend class until `stop()`.
"""

from __future__ import annotations

import io
import json
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from stackhop.testing.moto_server import MotoStandIn, WSGIApp

__all__ = ["FakeCodeBuild"]

_TARGET = "CodeBuild_20161006."
_PHASES = (
    "SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD",
    "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED",
)
_active = threading.Lock()

StartHook = Callable[[dict[str, Any], dict[str, Any]], None]


class FakeCodeBuild(MotoStandIn):
    """Loopback AWS (CodeBuild, S3 and whatever else moto serves) for builder tests.

    ```python
    with FakeCodeBuild(region="us-east-1") as aws:
        aws.create_bucket("artifacts")
        aws.on_start = lambda build, params: aws.finish(build["id"], "SUCCEEDED", exported={"IMAGE_DIGEST": d})
        ...  # code under test, with aws.env() in os.environ
        assert aws.calls("StartBuild")[0]["sourceTypeOverride"] == "S3"
    ```
    """

    _failure_heading = "{name}'s on_start hook failed"

    def __init__(self, region: str = "us-east-1", on_start: StartHook | None = None) -> None:
        super().__init__(region, thread_name="fake-codebuild")
        self.on_start = on_start
        self._lock = threading.Lock()
        self._requests: list[tuple[str, dict[str, Any]]] = []

    def _install(self) -> Callable[[], None]:
        if not _active.acquire(blocking=False):
            raise RuntimeError("another FakeCodeBuild is running in this process; moto's backends are global")
        try:
            restore = _install_scripted_reads()
        except BaseException:
            _active.release()
            raise

        def uninstall() -> None:
            restore()
            _active.release()

        return uninstall

    def _wrap(self, app: WSGIApp) -> WSGIApp:
        return _Recorder(app, self)

    def create_bucket(self, name: str) -> None:
        self.client("s3").create_bucket(Bucket=name)

    # ------------------------------------------------------------------ inspecting

    @property
    def requests(self) -> list[tuple[str, dict[str, Any]]]:
        """(operation, JSON parameters) of every CodeBuild request, and ("PUT /bucket/key", {}) and
        the like for everything else, in arrival order."""
        with self._lock:
            return list(self._requests)

    def calls(self, operation: str) -> list[dict[str, Any]]:
        """The parameters of every CodeBuild `operation` request ("StartBuild", ...)."""
        return [params for op, params in self.requests if op == operation]

    def build(self, build_id: str) -> dict[str, Any]:
        """The build as stored (and as BatchGetBuilds reports it)."""
        for build in self._builds():
            if build["id"] == build_id:
                return build
        raise KeyError(f"no build {build_id!r}")

    # ------------------------------------------------------------------ scripting

    def finish(
        self,
        build_id: str,
        status: str = "SUCCEEDED",
        *,
        exported: dict[str, str] | None = None,
        phase: str = "BUILD",
        message: str = "",
    ) -> None:
        """End a build as CodeBuild would: `status` for the build and for `phase` (when it is not
        SUCCEEDED), with `message` as that phase's context, and `exported` as its exported variables."""
        from moto.core.utils import iso_8601_datetime_with_milliseconds

        model = _codebuild_model()
        if status not in model.shape_for("StatusType").enum or status == "IN_PROGRESS":
            raise ValueError(f"status {status!r} is not a terminal CodeBuild status")
        if phase not in _PHASES[2:-2]:
            raise ValueError(f"phase {phase!r} is not a CodeBuild phase that can fail")
        build = self.build(build_id)
        now = iso_8601_datetime_with_milliseconds()
        phases: list[dict[str, Any]] = []
        for name in _PHASES:
            if name == "COMPLETED":
                phases.append({"phaseType": name, "startTime": now})
                break
            entry: dict[str, Any] = {"phaseType": name, "phaseStatus": "SUCCEEDED", "startTime": now, "endTime": now,
                                     "durationInSeconds": 0}
            if status != "SUCCEEDED" and name == phase:
                entry["phaseStatus"] = status
                entry["contexts"] = [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": message}]
                phases.append(entry)
                phases.append({"phaseType": "FINALIZING", "phaseStatus": "SUCCEEDED", "startTime": now, "endTime": now,
                               "durationInSeconds": 0})
                phases.append({"phaseType": "COMPLETED", "startTime": now})
                break
            phases.append(entry)
        build.update(phases=phases, currentPhase="COMPLETED", buildStatus=status, buildComplete=True, endTime=now)
        if exported is not None:
            build["exportedEnvironmentVariables"] = [{"name": k, "value": v} for k, v in exported.items()]

    # ------------------------------------------------------------------ internals

    def _backend(self) -> Any:
        from moto.codebuild.models import codebuild_backends

        return codebuild_backends[self.account_id][self.region]

    def _builds(self) -> list[dict[str, Any]]:
        return [build for builds in self._backend().build_metadata_history.values() for build in builds]

    def _record(self, operation: str, params: dict[str, Any]) -> None:
        with self._lock:
            self._requests.append((operation, params))

    def _started(self, params: dict[str, Any], response: dict[str, Any]) -> None:
        """Apply StartBuild's overrides to the stored build, then let the test play the build."""
        build = self.build(response["build"]["id"])
        project = self._backend().codebuild_projects[params["projectName"]].project_metadata
        source = dict(project.get("source") or {})
        source["type"] = params.get("sourceTypeOverride", source.get("type"))
        source["location"] = params.get("sourceLocationOverride", source.get("location"))
        if "buildspecOverride" in params:
            source["buildspec"] = params["buildspecOverride"]
        environment = dict(project.get("environment") or {})
        variables = {v["name"]: v for v in environment.get("environmentVariables") or []}
        variables.update({v["name"]: v for v in params.get("environmentVariablesOverride") or []})
        environment["environmentVariables"] = list(variables.values())
        if "privilegedModeOverride" in params:
            environment["privilegedMode"] = params["privilegedModeOverride"]
        build.update(source=source, environment=environment)
        if "timeoutInMinutesOverride" in params:
            build["timeoutInMinutes"] = params["timeoutInMinutesOverride"]
        if "artifactsOverride" in params:
            build["artifacts"] = {"location": ""} if params["artifactsOverride"].get("type") == "NO_ARTIFACTS" else {}
        if self.on_start is not None:
            try:
                self.on_start(build, params)
            except Exception as exc:  # reported when the context exits, not swallowed by the server
                self._errors.append("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def _codebuild_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("codebuild")


def _install_scripted_reads() -> Callable[[], None]:
    """Make BatchGetBuilds report builds as stored, instead of completing them on every read."""
    from moto.codebuild.models import CodeBuildBackend

    original = CodeBuildBackend.batch_get_builds

    def batch_get_builds(self: Any, ids: list[str]) -> list[dict[str, Any]]:
        return [b for builds in self.build_metadata_history.values() for b in builds if b["id"] in ids]

    CodeBuildBackend.batch_get_builds = batch_get_builds  # type: ignore[method-assign]

    def restore() -> None:
        CodeBuildBackend.batch_get_builds = original  # type: ignore[method-assign]

    return restore


class _Recorder:
    """WSGI middleware: record each request, and run the StartBuild follow-up once moto answered."""

    def __init__(self, app: WSGIApp, fake: FakeCodeBuild) -> None:
        self._app = app
        self._fake = fake

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self._app(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(_TARGET):
            self._fake._record(f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO', '')}", {})
            return self._app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        params = json.loads(body or b"{}")
        operation = target[len(_TARGET):]
        self._fake._record(operation, params)
        if operation != "StartBuild":
            return self._app(environ, start_response)
        status: list[str] = []

        def capture(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

        chunks = b"".join(self._app(environ, capture))
        if status and status[0].startswith("200"):
            self._fake._started(params, json.loads(chunks))
        return [chunks]
