"""`cloudbuild`: build and push an image with Google Cloud Build, for stacks that live on GCP.

Why: a Vertex AI stack already has a gs:// artifact root and Google credentials; Cloud Build
turns those into image builds with nothing to install or run on the user's side, and pushes to
Artifact Registry with the build's own service account.

How: the context is uploaded as a tar.gz (Cloud Build's storageSource takes gzipped tarballs)
to `<artifact_root>/_stackhop/build-contexts/<sha256>.tar.gz`; one builds.create call (the REST
API, no client library) runs `docker build` in the `gcr.io/cloud-builders/docker` step and lists
the reference under `images`, so Cloud Build itself pushes it and reports the pushed digest in
`results.images[].digest`; the build is then read with builds.get until it ends. Spec values are
argv items of the step (no shell), with `$` doubled so Cloud Build's substitutions leave them be.

Limits: the artifact root must be gs://, readable by Cloud Build's service account; pushing
works for registries that account can write (Artifact Registry, gcr.io), not for registries that
need other credentials. `platform` reaches `docker build --platform`, which builds a foreign
architecture only where the worker can emulate it. A worker pool needs a regional `location`.
Authentication is Application Default Credentials (google-auth); `anonymous` sends no
credentials and exists only for the loopback stand-in, `stackhop.testing.cloudbuild`.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import Field

from stackhop.core.image_settings import Reference
from stackhop.images.builder import Builder, BuilderSettings
from stackhop.images.builders.remote_context import require_scheme, split_bucket, upload_context
from stackhop.images.errors import ImageError

if TYPE_CHECKING:
    from stackhop.images.spec import BuildSpec

API_ENDPOINT = "https://cloudbuild.googleapis.com"
DOCKER_STEP = "gcr.io/cloud-builders/docker"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# BuildOptions.MachineType in the Cloud Build v1 API (UNSPECIFIED is the default machine).
MachineType = Literal["UNSPECIFIED", "N1_HIGHCPU_8", "N1_HIGHCPU_32", "E2_HIGHCPU_8", "E2_HIGHCPU_32", "E2_MEDIUM",
                      "E2_STANDARD_2"]
PENDING = ("STATUS_UNKNOWN", "PENDING", "QUEUED", "WORKING")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class CloudBuildSettings(BuilderSettings):
    """`images.builder_settings` for Cloud Build."""

    project: str = Field(pattern=r"^(?:[a-z][a-z0-9.-]*:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$", description="Project id.")
    location: str = Field(default="global", pattern=r"^[a-z][a-z0-9-]*$", description="'global' or a region.")
    api_endpoint: str = Field(default=API_ENDPOINT, description="Only for a stand-in or a private endpoint.")
    anonymous: bool = Field(default=False, description="Send no credentials; for the loopback stand-in only.")
    machine_type: MachineType | None = None
    timeout_seconds: int = Field(default=3600, ge=1, le=86400, description="The build's own timeout.")
    service_account: str | None = Field(
        default=None, description="Email, or projects/<p>/serviceAccounts/<email>; default: Cloud Build's own."
    )
    worker_pool: str | None = Field(
        default=None, description="Private pool id, or projects/<p>/locations/<l>/workerPools/<id>."
    )
    docker_image: Reference = Field(default=DOCKER_STEP, description="The builder image of the docker step.")
    poll_seconds: float = Field(default=5.0, gt=0)


def _escape(value: str) -> str:
    """Cloud Build substitutes $NAME and ${NAME} in step args; $$ is a literal $."""
    return value.replace("$", "$$")


def cloudbuild_request(spec: "BuildSpec", settings: CloudBuildSettings, context_uri: str) -> dict[str, Any]:
    """The Build resource for builds.create: a pure function of its arguments."""
    bucket, obj = split_bucket(context_uri)
    args = ["build", "--file", "Dockerfile", "--tag", spec.reference]
    if spec.platform:
        args += ["--platform", _escape(spec.platform)]
    for key, value in spec.build_args:
        args += ["--build-arg", _escape(f"{key}={value}")]
    args.append(".")
    step: dict[str, Any] = {"id": "build", "name": settings.docker_image, "args": args}
    if spec.platform:
        step["env"] = ["DOCKER_BUILDKIT=1"]
    options: dict[str, Any] = {}
    if settings.machine_type:
        options["machineType"] = settings.machine_type
    if settings.worker_pool:
        options["pool"] = {"name": _pool_name(settings, spec)}
    build: dict[str, Any] = {
        "source": {"storageSource": {"bucket": bucket, "object": obj}},
        "steps": [step],
        "images": [spec.reference],
        "timeout": f"{settings.timeout_seconds}s",
        "tags": ["stackhop", re.sub(r"[^\w.-]", "-", f"image-{spec.tag}")[:128]],
    }
    if settings.service_account:
        account = settings.service_account
        if not account.startswith("projects/"):
            account = f"projects/{settings.project}/serviceAccounts/{account}"
        build["serviceAccount"] = account
        # A build with its own service account must say where its logs go; Cloud Logging needs no bucket.
        options["logging"] = "CLOUD_LOGGING_ONLY"
    if options:
        build["options"] = options
    return build


def _pool_name(settings: CloudBuildSettings, spec: "BuildSpec") -> str:
    pool = settings.worker_pool or ""
    if pool.startswith("projects/"):
        return pool
    if settings.location == "global":
        raise ImageError(
            f"Cloud Build cannot build image {spec.reference} in worker pool {pool!r} from location 'global'; "
            "set builder_settings.location to the pool's region."
        )
    return f"projects/{settings.project}/locations/{settings.location}/workerPools/{pool}"


def digest_from_build(build: dict[str, Any], reference: str) -> str | None:
    """The digest Cloud Build recorded for `reference` in `results.images`."""
    images = (build.get("results") or {}).get("images") or []
    repository = reference.rsplit(":", 1)[0]
    for image in images:
        if image.get("name") in (reference, repository) and _DIGEST.match(image.get("digest") or ""):
            return str(image["digest"])
    if len(images) == 1 and _DIGEST.match(images[0].get("digest") or ""):
        return str(images[0]["digest"])
    return None


class CloudBuildBuilder(Builder):
    """Runs one Cloud Build build per image and returns the digest it pushed."""

    name = "cloudbuild"
    Settings = CloudBuildSettings
    remote = True

    settings: CloudBuildSettings

    def unavailable(self) -> str | None:
        if self.settings.anonymous:
            return None
        try:
            import google.auth  # noqa: F401
            import google.auth.transport.requests  # noqa: F401
        except ImportError:
            return "the cloudbuild builder needs google-auth; install it with `pip install 'stackhop[gcp]'`."
        return None

    def build(self, spec: "BuildSpec", log: Callable[[str], None]) -> str:
        require_scheme(self.stack, ("gs",), "cloudbuild", spec.reference)
        context_uri = upload_context(self.stack, spec.context_tar(), "tar.gz", log)
        body = cloudbuild_request(spec, self.settings, context_uri)
        http = _Http(self.settings, spec)
        base = f"{self.settings.api_endpoint.rstrip('/')}/v1/projects/{self.settings.project}/locations/{self.settings.location}"
        operation = http.call("POST", f"{base}/builds", body)
        build = (operation.get("metadata") or {}).get("build") or {}
        build_id = build.get("id")
        if not build_id:
            raise ImageError(
                f"Cloud Build accepted image {spec.reference} but returned no build id (operation "
                f"{operation.get('name')!r}); check builder_settings.api_endpoint."
            )
        log(f"started Cloud Build build {build_id} for {spec.reference}")
        build = self._wait(http, f"{base}/builds/{build_id}", spec)
        status = build.get("status")
        if status != "SUCCESS":
            detail = build.get("statusDetail") or (build.get("failureInfo") or {}).get("detail") or "no detail given"
            raise ImageError(
                f"Cloud Build build {build_id} for image {spec.reference} ended {status} ({str(detail).rstrip('.')}); "
                f"read its logs at {build.get('logUrl') or 'the Cloud Build console'} and fix the Dockerfile or the "
                "build's permissions."
            )
        digest = digest_from_build(build, spec.reference)
        if digest is None:
            raise ImageError(
                f"Cloud Build build {build_id} succeeded but reported no digest for image {spec.reference} in "
                "results.images; check that the build pushes that reference."
            )
        log(f"Cloud Build pushed {spec.reference}@{digest}")
        return digest

    def _wait(self, http: "_Http", url: str, spec: "BuildSpec") -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.timeout_seconds + 1800  # the build times itself out; margin for the queue
        while True:
            build = http.call("GET", url)
            if build.get("status") not in PENDING:
                return build
            if time.monotonic() > deadline:
                http.call("POST", f"{url}:cancel", {})
                raise ImageError(
                    f"Cloud Build build {build.get('id')} for image {spec.reference} did not finish within "
                    f"{self.settings.timeout_seconds + 1800} s and was cancelled; raise timeout_seconds or check the queue."
                )
            time.sleep(self.settings.poll_seconds)


class _Http:
    """JSON over HTTPS: google-auth's AuthorizedSession, or plain urllib when anonymous."""

    def __init__(self, settings: CloudBuildSettings, spec: "BuildSpec"):
        self.settings, self.spec = settings, spec
        self._session: Any = None
        if not settings.anonymous:
            self._session = self._authorized()

    def _authorized(self) -> Any:
        try:
            import google.auth
            from google.auth.exceptions import DefaultCredentialsError
            from google.auth.transport.requests import AuthorizedSession
        except ImportError:
            raise ImageError(
                f"The cloudbuild builder cannot build image {self.spec.reference} without google-auth; "
                "install it with `pip install 'stackhop[gcp]'`."
            ) from None
        try:
            credentials, _ = google.auth.default(scopes=[SCOPE])
        except DefaultCredentialsError:
            raise ImageError(
                f"The cloudbuild builder found no Google credentials to build image {self.spec.reference}; "
                "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS."
            ) from None
        return AuthorizedSession(credentials)

    def call(self, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._session is not None:
            try:
                response = self._session.request(method, url, json=body, timeout=60)
            except Exception as exc:  # requests/google-auth transport errors
                raise self._unreachable(url, exc) from None
            return self._parse(response.status_code, response.content, url)
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the stand-in is on loopback
        try:
            with opener.open(request, timeout=60) as response:
                return self._parse(response.status, response.read(), url)
        except urllib.error.HTTPError as exc:
            return self._parse(exc.code, exc.read(), url)
        except OSError as exc:
            raise self._unreachable(url, exc) from None

    def _parse(self, status: int, content: bytes, url: str) -> dict[str, Any]:
        try:
            payload = json.loads(content or b"{}")
        except ValueError:
            payload = {"error": {"message": content[:200].decode(errors="replace")}}
        if status >= 400:
            error = payload.get("error") or {}
            raise ImageError(
                f"Cloud Build refused the build of image {self.spec.reference} (HTTP {status} "
                f"{error.get('status', '')}: {str(error.get('message', '')).rstrip('.')}); check builder_settings "
                f"(project {self.settings.project!r}, location {self.settings.location!r}) and the caller's permissions."
            )
        return dict(payload)

    def _unreachable(self, url: str, exc: BaseException) -> ImageError:
        return ImageError(
            f"Cloud Build at {url} could not be reached to build image {self.spec.reference} ({exc}); "
            "check the network and builder_settings.api_endpoint."
        )
