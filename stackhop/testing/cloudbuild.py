"""`FakeCloudBuild`: the Cloud Build v1 REST API for builds, on loopback, strict about what it accepts.

Serves, under `/v1/projects/{project}/locations/{location}/`:

* `POST builds` (builds.create): validates the Build resource, stores it QUEUED and answers with
  the long-running Operation whose `metadata.build` carries the new build, as Cloud Build does;
* `GET builds/{id}` (builds.get), `POST builds/{id}:cancel` (builds.cancel);
* `GET operations/{id}` (operations.get): `done` once the build has ended, with the build as
  `response`, and an `error` when it did not succeed.

Validation follows the public v1 reference: unknown field names are rejected at every level
(JSON payload errors, HTTP 400); a build needs at least one step and every step a `name`;
`args`/`env`/`waitFor` are lists of strings and `env` entries are KEY=VALUE; `source` must be
`storageSource` with string `bucket` and `object` (and, when `object_exists` is given, an
object that exists); `images` are valid image references; `timeout` is a Duration ("600s", at
most 24 h); `options.machineType`, `options.logging` and `options.substitutionOption` take the
API's enum values; `options.pool.name` is a worker pool in the request's location (never
`global`); `serviceAccount` is `projects/*/serviceAccounts/*` and needs a logs bucket or
CLOUD_LOGGING_ONLY/NONE logging; `tags` match the API's pattern; and `$VAR`/`${VAR}` in step
fields and images must be a built-in substitution or a given `_USER` one unless ALLOW_LOOSE
(`$$` is a literal `$`). Errors are Google-style `{"error": {"code", "message", "status"}}`.

Builds move only when a test scripts them: `set_status(id, "WORKING")`, then
`finish(id, status="SUCCESS", digest="sha256:...")` (which fills `results.images` for every
image) or `finish(id, status="FAILURE", detail="...")`.

What it does not model: running anything (steps, pushing, logs, artifacts, provenance);
authentication and IAM (any or no credentials are accepted); the legacy
`/v1/projects/{p}/builds` paths, triggers, worker pool and connection APIs, builds.list,
builds.retry and approvals; quotas and queueing; regional endpoint hostnames; secrets and
volumes beyond their field names; output-only fields are accepted on create and overwritten.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stackhop.testing.loopback import StandIn, ThreadedServer

__all__ = ["FakeCloudBuild", "TERMINAL", "MACHINE_TYPES"]

MACHINE_TYPES = ("UNSPECIFIED", "N1_HIGHCPU_8", "N1_HIGHCPU_32", "E2_HIGHCPU_8", "E2_HIGHCPU_32", "E2_MEDIUM",
                 "E2_STANDARD_2")
LOGGING = ("LOGGING_UNSPECIFIED", "LEGACY", "GCS_ONLY", "STACKDRIVER_ONLY", "CLOUD_LOGGING_ONLY", "NONE")
SUBSTITUTION_OPTIONS = ("MUST_MATCH", "ALLOW_LOOSE")
TERMINAL = ("SUCCESS", "FAILURE", "INTERNAL_ERROR", "TIMEOUT", "CANCELLED", "EXPIRED")
RUNNING = ("PENDING", "QUEUED", "WORKING")
BUILT_IN = frozenset({
    "PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "TRIGGER_NAME", "COMMIT_SHA", "REVISION_ID", "SHORT_SHA",
    "REPO_NAME", "REPO_FULL_NAME", "BRANCH_NAME", "TAG_NAME", "REF_NAME", "TRIGGER_BUILD_CONFIG_PATH",
    "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT",
})
_OUTPUT_ONLY = {"id", "name", "projectId", "status", "statusDetail", "results", "createTime", "startTime",
                "finishTime", "logUrl", "buildTriggerId", "sourceProvenance", "timing", "approval", "warnings",
                "failureInfo"}
_BUILD_FIELDS = {"steps", "source", "images", "timeout", "queueTtl", "options", "serviceAccount", "tags",
                 "substitutions", "artifacts", "logsBucket", "secrets", "availableSecrets", "gitConfig"} | _OUTPUT_ONLY
_STEP_FIELDS = {"name", "env", "args", "dir", "id", "waitFor", "entrypoint", "secretEnv", "volumes", "timeout",
                "script", "allowFailure", "allowExitCodes", "automapSubstitutions", "timing", "pullTiming", "status",
                "exitCode", "results"}
_SOURCE_FIELDS = {"storageSource", "repoSource", "gitSource", "storageSourceManifest", "connectedRepository",
                  "developerConnectConfig"}
_STORAGE_FIELDS = {"bucket", "object", "generation", "sourceFetcher"}
_OPTION_FIELDS = {"sourceProvenanceHash", "requestedVerifyOption", "machineType", "diskSizeGb", "substitutionOption",
                  "dynamicSubstitutions", "automapSubstitutions", "logStreamingOption", "workerPool", "pool",
                  "logging", "env", "secretEnv", "volumes", "defaultLogsBucketBehavior", "enableStructuredLogging"}
_DURATION = re.compile(r"^(\d+)(?:\.(\d{1,9}))?s$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_SUBSTITUTION = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*)|(\$))")
# The distribution reference grammar: [host[:port]/]path[:tag][@digest], lowercase path components.
_REFERENCE = re.compile(
    r"^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])"
    r"(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_ROUTE = re.compile(r"^/v1/projects/([^/]+)/locations/([^/]+)/(builds|operations)(?:/([^/:]+))?(:cancel)?$")


class ApiError(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class FakeCloudBuild(StandIn):
    """`with FakeCloudBuild(projects=("p",)) as cb:` then builder_settings api_endpoint=cb.url, anonymous=True."""

    def __init__(self, projects: tuple[str, ...] = ("stackhop",),
                 object_exists: Callable[[str, str], bool] | None = None) -> None:
        super().__init__()
        self.projects = projects
        self.object_exists = object_exists
        self._builds: dict[str, dict[str, Any]] = {}
        self._operations: dict[str, str] = {}
        self._requests: list[tuple[str, str, Any]] = []
        self._lock = threading.Condition()
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadedServer("FakeCloudBuild", lambda address: ThreadingHTTPServer(address, Handler),
                                      thread_name="fake-cloudbuild")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "FakeCloudBuild":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.url

    # ------------------------------------------------------------------ inspecting

    @property
    def requests(self) -> list[tuple[str, str, Any]]:
        """(method, path, JSON body or None) of every request, in arrival order."""
        with self._lock:
            return list(self._requests)

    def build(self, build_id: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._builds[build_id]))

    def wait_for_builds(self, count: int = 1, timeout: float = 10.0) -> list[str]:
        """Block until `count` builds were created; returns their ids, oldest first."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._builds) >= count, timeout):
                raise TimeoutError(f"expected {count} builds within {timeout} s, have {len(self._builds)}")
            return list(self._builds)[:count]

    # ------------------------------------------------------------------ scripting

    def set_status(self, build_id: str, status: str) -> None:
        """Move a build that has not ended to PENDING, QUEUED or WORKING."""
        if status not in RUNNING:
            raise ValueError(f"set_status takes one of {RUNNING}; use finish() to end a build")
        with self._lock:
            build = self._running(build_id)
            build["status"] = status
            if status == "WORKING":
                build.setdefault("startTime", _now())

    def finish(self, build_id: str, status: str = "SUCCESS", digest: str | None = None, detail: str = "") -> None:
        """End a build. SUCCESS needs `digest` when the build lists images (each gets it in results.images)."""
        if status not in TERMINAL:
            raise ValueError(f"finish takes one of {TERMINAL}")
        with self._lock:
            build = self._running(build_id)
            now = _now()
            build.setdefault("startTime", now)
            build.update(status=status, finishTime=now)
            if status == "SUCCESS":
                images = build.get("images") or []
                if images and (digest is None or not _DIGEST.match(digest)):
                    raise ValueError("a successful build that lists images needs digest='sha256:<64 hex>'")
                build["results"] = {
                    "images": [{"name": i, "digest": digest, "pushTiming": {"startTime": now, "endTime": now}}
                               for i in images],
                    "buildStepImages": [f"sha256:{'0' * 64}" for _ in build.get("steps") or []],
                }
            else:
                build["statusDetail"] = detail or f"Build {status.lower()}"
                if status == "FAILURE":
                    build["failureInfo"] = {"type": "USER_BUILD_STEP", "detail": detail}

    def _running(self, build_id: str) -> dict[str, Any]:
        build = self._builds.get(build_id)
        if build is None:
            raise KeyError(f"no build {build_id!r}")
        if build["status"] in TERMINAL:
            raise ValueError(f"build {build_id} already ended {build['status']}")
        return build

    # ------------------------------------------------------------------ the API

    def handle(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._requests.append((method, path, body))
        match = _ROUTE.match(path.split("?", 1)[0])
        if match is None:
            raise ApiError(404, "NOT_FOUND", f"Method not found: {method} {path}")
        project, location, collection, ident, cancel = match.groups()
        if project not in self.projects:
            raise ApiError(403, "PERMISSION_DENIED", f"The caller does not have permission (project {project})")
        parent = f"projects/{project}/locations/{location}"
        if collection == "builds" and ident is None and method == "POST":
            return 200, self._create(parent, project, location, body)
        if collection == "builds" and ident and method == "GET" and not cancel:
            return 200, self._get(ident, parent)
        if collection == "builds" and ident and method == "POST" and cancel:
            return 200, self._cancel(ident, parent)
        if collection == "operations" and ident and method == "GET":
            return 200, self._operation(ident, parent)
        raise ApiError(404, "NOT_FOUND", f"Method not found: {method} {path}")

    def _create(self, parent: str, project: str, location: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Expected a Build object.")
        _validate(body, location)
        storage = body["source"]["storageSource"]
        if self.object_exists is not None and not self.object_exists(storage["bucket"], storage["object"]):
            raise ApiError(400, "INVALID_ARGUMENT",
                           f"could not resolve source: googleapi: Error 404: No such object: "
                           f"{storage['bucket']}/{storage['object']}, notFound")
        build_id = str(uuid.uuid4())
        build = {k: v for k, v in body.items() if k not in _OUTPUT_ONLY}
        build.update(
            id=build_id, name=f"{parent}/builds/{build_id}", projectId=project, status="QUEUED", createTime=_now(),
            logUrl=f"https://console.cloud.google.com/cloud-build/builds;region={location}/{build_id}?project={project}",
        )
        build.setdefault("timeout", "600s")
        operation_id = uuid.uuid4().hex
        with self._lock:
            self._builds[build_id] = build
            self._operations[operation_id] = build_id
            self._lock.notify_all()
        return self._operation(operation_id, parent)

    def _find(self, build_id: str, parent: str) -> dict[str, Any]:
        build = self._builds.get(build_id)
        if build is None or not build["name"].startswith(parent + "/"):
            raise ApiError(404, "NOT_FOUND", "Requested entity was not found.")
        return build

    def _get(self, build_id: str, parent: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._find(build_id, parent)))

    def _cancel(self, build_id: str, parent: str) -> dict[str, Any]:
        with self._lock:
            build = self._find(build_id, parent)
            if build["status"] in TERMINAL:
                raise ApiError(400, "FAILED_PRECONDITION", f"build {build_id} is already {build['status']}")
            build.update(status="CANCELLED", finishTime=_now(), statusDetail="Build cancelled by user")
            return json.loads(json.dumps(build))

    def _operation(self, operation_id: str, parent: str) -> dict[str, Any]:
        with self._lock:
            build_id = self._operations.get(operation_id)
            if build_id is None:
                raise ApiError(404, "NOT_FOUND", "Requested entity was not found.")
            build = json.loads(json.dumps(self._find(build_id, parent)))
        operation: dict[str, Any] = {
            "name": f"{parent}/operations/{operation_id}",
            "metadata": {"@type": "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata",
                         "build": build},
        }
        if build["status"] in TERMINAL:
            operation["done"] = True
            if build["status"] == "SUCCESS":
                operation["response"] = {"@type": "type.googleapis.com/google.devtools.cloudbuild.v1.Build", **build}
            else:
                operation["error"] = {"code": 2, "message": f"Build {build['status'].lower()}; check build logs for details"}
        return operation


# ---------------------------------------------------------------------------- validation


def _bad(message: str) -> ApiError:
    return ApiError(400, "INVALID_ARGUMENT", message)


def _fields(obj: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _bad(f"Invalid JSON payload received. Invalid value at '{where}': expected an object.")
    for key in obj:
        if key not in allowed:
            raise _bad(f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field.")
    return obj


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"Invalid JSON payload received. Invalid value at '{where}': expected a list of strings.")
    return value


def _duration(value: Any, where: str, maximum: float) -> None:
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise _bad(f"Invalid value at '{where}' (type.googleapis.com/google.protobuf.Duration), {value!r}")
    if float(match.group(0)[:-1]) > maximum:
        raise _bad(f"invalid build: {where} must be at most {int(maximum)}s, got {value}")


def _validate(build: dict[str, Any], location: str) -> None:
    _fields(build, _BUILD_FIELDS, "build")
    steps = build.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _bad("invalid build: build must have at least one step")
    for index, step in enumerate(steps):
        where = f"build.steps[{index}]"
        _fields(step, _STEP_FIELDS, where)
        if not isinstance(step.get("name"), str) or not step["name"].strip():
            raise _bad(f"invalid build: {where}.name must be specified")
        for key in ("args", "waitFor", "secretEnv"):
            if key in step:
                _strings(step[key], f"{where}.{key}")
        for entry in _strings(step.get("env", []), f"{where}.env"):
            if "=" not in entry or entry.startswith("="):
                raise _bad(f"invalid build: {where}.env entry {entry!r} must be KEY=VALUE")
        if "timeout" in step:
            _duration(step["timeout"], f"{where}.timeout", 86400)
    source = _fields(build.get("source"), _SOURCE_FIELDS, "build.source")
    if "storageSource" not in source:
        raise _bad("invalid build: this stand-in serves only build.source.storageSource")
    storage = _fields(source["storageSource"], _STORAGE_FIELDS, "build.source.storageSource")
    for key in ("bucket", "object"):
        if not isinstance(storage.get(key), str) or not storage[key]:
            raise _bad(f"invalid build: build.source.storageSource.{key} must be a non-empty string")
    for index, image in enumerate(_strings(build.get("images", []), "build.images")):
        if not _REFERENCE.match(image):
            raise _bad(f"invalid build: invalid image name \"{image}\" at build.images[{index}]")
    if "timeout" in build:
        _duration(build["timeout"], "build.timeout", 86400)
    for index, tag in enumerate(_strings(build.get("tags", []), "build.tags")):
        if not _TAG.match(tag):
            raise _bad(f"invalid build: invalid build tag \"{tag}\" at build.tags[{index}]: must match {_TAG.pattern}")
    options = _fields(build.get("options", {}), _OPTION_FIELDS, "build.options")
    for key, allowed in (("machineType", MACHINE_TYPES), ("logging", LOGGING), ("substitutionOption", SUBSTITUTION_OPTIONS)):
        if key in options and options[key] not in allowed:
            raise _bad(f"Invalid value at 'build.options.{key}', \"{options[key]}\"")
    if "pool" in options:
        pool = _fields(options["pool"], {"name"}, "build.options.pool")
        name = pool.get("name")
        match = re.match(r"^projects/[^/]+/locations/([^/]+)/workerPools/[^/]+$", name or "")
        if match is None:
            raise _bad(f"invalid build: build.options.pool.name {name!r} must be projects/*/locations/*/workerPools/*")
        if location == "global" or match.group(1) != location:
            raise _bad(f"invalid build: worker pool {name} is not in location {location}; use the pool's regional location")
    account = build.get("serviceAccount")
    if account is not None:
        if not isinstance(account, str) or not re.match(r"^projects/[^/]+/serviceAccounts/[^/]+$", account):
            raise _bad(f"invalid build: build.service_account {account!r} must be projects/*/serviceAccounts/*")
        if not build.get("logsBucket") and options.get("logging") not in ("CLOUD_LOGGING_ONLY", "NONE") \
                and options.get("defaultLogsBucketBehavior") != "REGIONAL_USER_OWNED_BUCKET":
            raise _bad("invalid build: if 'build.service_account' is specified, the build must either (a) specify "
                       "'build.logs_bucket', (b) use the REGIONAL_USER_OWNED_BUCKET "
                       "build.options.default_logs_bucket_behavior option, or (c) use either CLOUD_LOGGING_ONLY / NONE "
                       "logging options")
    if options.get("substitutionOption") != "ALLOW_LOOSE":
        _check_substitutions(build)


def _check_substitutions(build: dict[str, Any]) -> None:
    given = set((build.get("substitutions") or {}).keys())
    texts: list[tuple[str, str]] = []
    for index, step in enumerate(build["steps"]):
        for key in ("name", "dir", "entrypoint"):
            if isinstance(step.get(key), str):
                texts.append((f"build.steps[{index}].{key}", step[key]))
        for key in ("args", "env"):
            texts += [(f"build.steps[{index}].{key}", v) for v in step.get(key, [])]
    texts += [("build.images", v) for v in build.get("images", [])]
    for where, text in texts:
        for braced, bare, dollar in _SUBSTITUTION.findall(text):
            if dollar:
                continue
            name = braced or bare
            if name not in BUILT_IN and name not in given:
                raise _bad(f"invalid value for 'build.substitutions': key in the template \"{name}\" is not a valid "
                           f"built-in substitution (at {where})")


# ---------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    owner: FakeCloudBuild
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                raise ApiError(400, "INVALID_ARGUMENT", "Invalid JSON payload received.") from None
            code, payload = self.owner.handle(method, self.path, body)
        except ApiError as exc:
            code, payload = exc.code, {"error": {"code": exc.code, "message": exc.message, "status": exc.status}}
        except Exception:  # a bug in the stand-in: answer 500 and keep the traceback for the test
            self.owner._errors.append(traceback.format_exc())
            code, payload = 500, {"error": {"code": 500, "message": "FakeCloudBuild internal error", "status": "INTERNAL"}}
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

