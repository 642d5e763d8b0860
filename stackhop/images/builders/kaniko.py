"""`kaniko`: build and push an image in a Kubernetes Job, with no Docker daemon anywhere.

Why: a cluster that runs the pipeline can usually build its images too, and kaniko does that
inside an ordinary pod with no Docker daemon and no privileged mode, so CI needs neither Docker
nor buildah, only the kubeconfig it already has for the Kubernetes adapter.

How: the context is uploaded as a tar.gz under the stack's artifact root (which must be s3:// or
gs://, the remote contexts kaniko reads itself), a batch/v1 Job named after the image tag runs
the executor with `--digest-file=/dev/termination-log`, and the digest comes back as the
container's termination message (with kaniko's own "Pushed <repo>@sha256:..." log line as a
fallback when no message was recorded).

Limits: kaniko upstream (GoogleContainerTools/kaniko) was archived in June 2025; v1.24.0 is its
last release, so the pinned executor gets no further fixes (point `image` at a maintained fork if
you need them). The pod needs read access to the context object (cloud workload identity or
`env`) and push access to the registry (`docker_config_secret`, or the executor's built-in ECR/GCR
helpers); `--custom-platform` selects a platform but does not emulate one, so a foreign
architecture needs a node of that architecture (`node_selector`). Builds are not cached across
Jobs unless `extra_args` turns kaniko's cache on.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import TYPE_CHECKING, Any, Callable

from pydantic import Field

from stackhop.core.image_settings import Reference
from stackhop.images.builder import Builder, BuilderSettings
from stackhop.images.builders.remote_context import require_scheme, upload_context
from stackhop.images.errors import ImageError

if TYPE_CHECKING:
    from stackhop.images.spec import BuildSpec

# Pinned, never `latest`: v1.24.0 (2025-05-21) is the last release before upstream archived the
# project; a new executor can change digests and flags, so moving this is a reviewed change.
KANIKO_IMAGE = "gcr.io/kaniko-project/executor:v1.24.0"
EXECUTOR = "/kaniko/executor"
CONTAINER = "kaniko"
TERMINATION_LOG = "/dev/termination-log"
DOCKER_CONFIG_DIR = "/kaniko/.docker"
_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_PUSHED = re.compile(r"Pushed \S+@(sha256:[0-9a-f]{64})")
_SUCCEEDED = ("Complete", "SuccessCriteriaMet")
_FAILED = ("Failed", "FailureTarget")


class KanikoResources(BuilderSettings):
    """Container resources of the executor, as Kubernetes quantities ("2", "4Gi")."""

    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class KanikoSettings(BuilderSettings):
    """`images.builder_settings` for kaniko."""

    kubeconfig: str | None = Field(default=None, description="Path to a kubeconfig; default: $KUBECONFIG or ~/.kube/config.")
    context: str | None = Field(default=None, description="kubeconfig context; default: the current one.")
    in_cluster: bool = Field(default=False, description="Use the pod's service account instead of a kubeconfig.")
    namespace: str = Field(default="default", pattern=_NAME)
    image: Reference = Field(default=KANIKO_IMAGE, description="The kaniko executor image.")
    service_account: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
    docker_config_secret: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
        description="Name of a kubernetes.io/dockerconfigjson Secret in `namespace`, mounted as "
        f"{DOCKER_CONFIG_DIR}/config.json for pushing; the name only, never the credentials.",
    )
    insecure_registries: list[str] = Field(default_factory=list, description="Registries reached over plain HTTP.")
    resources: KanikoResources = KanikoResources()
    node_selector: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(
        default_factory=dict, description="Executor environment, e.g. AWS_REGION or S3_ENDPOINT for the context."
    )
    extra_args: list[str] = Field(default_factory=list, description="More executor flags, e.g. --cache=true.")
    ttl_seconds_after_finished: int | None = Field(default=3600, ge=0)
    timeout_seconds: int = Field(default=3600, gt=0, description="The Job's activeDeadlineSeconds.")
    poll_seconds: float = Field(default=2.0, gt=0)
    log_lines: int = Field(default=20, ge=1, description="Log lines quoted when a build fails.")


def job_name(spec: "BuildSpec") -> str:
    """`kaniko-<tag>-<8 hex of the repository>`: the same image always gets the same Job.

    The tag is the content hash; the repository hash keeps two repositories that share content
    from colliding. At most 7 + 128 + 9 characters for a free-form tag, so it is cut to 63.
    """
    repo = hashlib.sha256(spec.repository.encode()).hexdigest()[:8]
    tag = re.sub(r"[^a-z0-9-]+", "-", spec.tag.lower()).strip("-")[:45].strip("-") or "image"
    return f"kaniko-{tag}-{repo}"


def kaniko_args(spec: "BuildSpec", settings: KanikoSettings, context_uri: str) -> list[str]:
    """The executor's flags; values are separate argv items, so nothing is ever shell-parsed."""
    args = [
        f"--context={context_uri}",
        "--dockerfile=Dockerfile",
        f"--destination={spec.reference}",
        f"--digest-file={TERMINATION_LOG}",
        "--reproducible",
    ]
    if spec.platform:
        args.append(f"--custom-platform={spec.platform}")
    args += [f"--build-arg={key}={value}" for key, value in spec.build_args]
    args += [f"--insecure-registry={registry}" for registry in settings.insecure_registries]
    return args + list(settings.extra_args)


def kaniko_job(spec: "BuildSpec", settings: KanikoSettings, context_uri: str) -> dict[str, Any]:
    """The batch/v1 Job that builds `spec`: a pure function of its arguments."""
    labels = {
        "app.kubernetes.io/managed-by": "stackhop",
        "app.kubernetes.io/component": "image-build",
        "stackhop.dev/image-tag": spec.tag[:63].strip("-_.") or "image",
    }
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": settings.image,
        "command": [EXECUTOR],
        "args": kaniko_args(spec, settings, context_uri),
        "terminationMessagePath": TERMINATION_LOG,
        # The digest file wins when kaniko wrote it; on a failure the log tail becomes the message.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if settings.env:
        container["env"] = [{"name": k, "value": v} for k, v in sorted(settings.env.items())]
    resources = {k: dict(v) for k, v in (("requests", settings.resources.requests), ("limits", settings.resources.limits)) if v}
    if resources:
        container["resources"] = resources
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if settings.service_account:
        pod["serviceAccountName"] = settings.service_account
    if settings.node_selector:
        pod["nodeSelector"] = dict(sorted(settings.node_selector.items()))
    if settings.docker_config_secret:
        container["volumeMounts"] = [{"name": "docker-config", "mountPath": DOCKER_CONFIG_DIR, "readOnly": True}]
        pod["volumes"] = [{
            "name": "docker-config",
            "secret": {
                "secretName": settings.docker_config_secret,
                "items": [{"key": ".dockerconfigjson", "path": "config.json"}],
            },
        }]
    job_spec: dict[str, Any] = {
        "backoffLimit": 0,  # a failed build fails the same way again; the user fixes and reruns
        "activeDeadlineSeconds": settings.timeout_seconds,
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
    }
    if settings.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = settings.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(spec),
            "namespace": settings.namespace,
            "labels": labels,
            "annotations": {"stackhop.dev/image": spec.reference},
        },
        "spec": job_spec,
    }


def validate_job(doc: dict[str, Any], spec: "BuildSpec") -> None:
    """Check the Job against Kubernetes' strict OpenAPI schema, as the Kubernetes adapter does."""
    from stackhop.adapters.kubernetes.schemas import validate_manifest
    from stackhop.errors import StackhopError

    try:
        validate_manifest(doc, f"kaniko build of {spec.name}")
    except StackhopError as exc:
        detail = str(exc).rstrip(".").split(": ", 1)[-1]
        raise ImageError(
            f"The kaniko Job for image {spec.reference} is not a valid Kubernetes object ({detail}); "
            "correct the kaniko builder_settings."
        ) from None


def digest_from_pod(pod: dict[str, Any]) -> str | None:
    """The digest kaniko wrote to its termination log, from a pod as the API returns it."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") != CONTAINER:
            continue
        terminated = (status.get("state") or {}).get("terminated") or {}
        message = (terminated.get("message") or "").strip()
        if _DIGEST.match(message):
            return message
    return None


def digest_from_logs(text: str) -> str | None:
    """The digest of kaniko's last "Pushed <repository>@sha256:..." line."""
    found = _PUSHED.findall(text)
    return found[-1] if found else None


class KanikoBuilder(Builder):
    """Runs the kaniko executor as a Kubernetes Job and returns the digest it pushed."""

    name = "kaniko"
    Settings = KanikoSettings
    remote = True

    settings: KanikoSettings

    def unavailable(self) -> str | None:
        try:
            import kubernetes  # noqa: F401
        except ImportError:
            return "the kaniko builder needs the Kubernetes client; install it with `pip install 'stackhop[kubernetes]'`."
        return None

    def build(self, spec: "BuildSpec", log: Callable[[str], None]) -> str:
        require_scheme(self.stack, ("s3", "gs"), "kaniko", spec.reference)
        context_uri = upload_context(self.stack, spec.context_tar(), "tar.gz", log)
        doc = kaniko_job(spec, self.settings, context_uri)
        validate_job(doc, spec)
        run = _JobRun(self.settings, spec, doc, log)
        return run.execute()


class _JobRun:
    """One Job's life: create (or adopt), wait, then read the digest or explain the failure."""

    def __init__(self, settings: KanikoSettings, spec: "BuildSpec", doc: dict[str, Any], log: Callable[[str], None]):
        from kubernetes import client

        self.settings, self.spec, self.doc, self.log = settings, spec, doc, log
        self.api = _api_client(settings, spec)
        self.batch = client.BatchV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.name: str = doc["metadata"]["name"]
        self.namespace = settings.namespace
        self.where = f"{self.namespace}/{self.name}"

    def execute(self) -> str:
        self._create()
        job = self._wait()
        pod = self._pod()
        if _condition(job, *_SUCCEEDED):
            digest = digest_from_pod(pod) if pod else None
            if digest is None and pod is not None:
                digest = digest_from_logs(self._logs(pod, None))
            if digest is None:
                raise ImageError(
                    f"kaniko Job {self.where} built image {self.spec.reference} but reported no digest; "
                    "check that the executor image writes --digest-file and read the Job's logs."
                )
            self.log(f"kaniko pushed {self.spec.reference}@{digest}")
            return digest
        raise ImageError(self._failure(job, pod))

    # -- steps ---------------------------------------------------------------------------------

    def _create(self) -> None:
        from kubernetes.client.exceptions import ApiException

        for _ in range(3):
            try:
                self.batch.create_namespaced_job(self.namespace, self.doc)
                self.log(f"created kaniko Job {self.where} for {self.spec.reference}")
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise self._api_error("create", exc) from None
            existing = self._read()
            if existing is not None and not _condition(existing, *_FAILED):
                self.log(f"kaniko Job {self.where} already exists; waiting for it")
                return
            if existing is not None:
                self.log(f"deleting the failed kaniko Job {self.where} to build again")
                self._delete()
            self._wait_gone()
        raise ImageError(
            f"kaniko Job {self.where} for image {self.spec.reference} keeps existing after deletion; "
            "delete it with kubectl and build again."
        )

    def _wait(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.timeout_seconds + 60
        while True:
            job = self._read()
            if job is None:
                raise ImageError(
                    f"kaniko Job {self.where} for image {self.spec.reference} was deleted while building; build again."
                )
            if _condition(job, *_SUCCEEDED, *_FAILED):
                return job
            if time.monotonic() > deadline:
                self._delete()
                raise ImageError(
                    f"kaniko Job {self.where} did not finish building image {self.spec.reference} within "
                    f"{self.settings.timeout_seconds} s and was deleted; raise builder_settings.timeout_seconds or "
                    "look at the cluster's capacity."
                )
            time.sleep(self.settings.poll_seconds)

    def _pod(self) -> dict[str, Any] | None:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={self.name}")
        items = [self.api.sanitize_for_serialization(p) for p in pods.items]
        items.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
        return items[-1] if items else None

    def _failure(self, job: dict[str, Any], pod: dict[str, Any] | None) -> str:
        cond = _condition(job, *_FAILED) or {}
        reason = cond.get("reason") or "Failed"
        exit_part = ""
        if pod is not None:
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated") or {}
                if status.get("name") == CONTAINER and terminated:
                    exit_part = f", exit code {terminated.get('exitCode')}"
        tail = self._logs(pod, self.settings.log_lines) if pod is not None else ""
        lines = [line.strip() for line in tail.splitlines() if line.strip()]
        quoted = " | ".join(lines) if lines else (cond.get("message") or "no log output")
        return (
            f"kaniko Job {self.where} failed to build image {self.spec.reference} ({reason}{exit_part}), "
            f"last log lines: {quoted}; fix the Dockerfile or the builder_settings and build again."
        )

    # -- API helpers ---------------------------------------------------------------------------

    def _read(self) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            job = self.batch.read_namespaced_job_status(self.name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._api_error("read", exc) from None
        return dict(self.api.sanitize_for_serialization(job))

    def _delete(self) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.batch.delete_namespaced_job(self.name, self.namespace, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise self._api_error("delete", exc) from None

    def _wait_gone(self) -> None:
        deadline = time.monotonic() + 60
        while self._read() is not None and time.monotonic() < deadline:
            time.sleep(self.settings.poll_seconds)

    def _logs(self, pod: dict[str, Any], lines: int | None) -> str:
        from kubernetes.client.exceptions import ApiException

        try:
            kwargs: dict[str, Any] = {"container": CONTAINER}
            if lines is not None:
                kwargs["tail_lines"] = lines
            return str(self.core.read_namespaced_pod_log(pod["metadata"]["name"], self.namespace, **kwargs))
        except ApiException:
            return ""

    def _api_error(self, verb: str, exc: Any) -> ImageError:
        try:
            message = json.loads(exc.body).get("message") or exc.reason
        except (TypeError, ValueError, AttributeError):
            message = getattr(exc, "reason", exc)
        return ImageError(
            f"Kubernetes refused to {verb} kaniko Job {self.where} for image {self.spec.reference} "
            f"(HTTP {exc.status}: {message}); check the namespace and the kubeconfig's permissions."
        )


def _condition(job: dict[str, Any], *types: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in types and cond.get("status") == "True":
            return dict(cond)
    return None


def _api_client(settings: KanikoSettings, spec: "BuildSpec") -> Any:
    """The cluster the builder settings name, reached the way the Kubernetes adapter reaches its own."""
    from stackhop.adapters.kubernetes.client import KubeconfigError, load_api_client

    try:
        return load_api_client(settings.kubeconfig, settings.context, in_cluster=settings.in_cluster)
    except KubeconfigError as exc:
        raise ImageError(
            f"The kaniko builder cannot build image {spec.reference}: kubeconfig {exc.path!r} "
            f"(context {exc.context or 'current'}) does not load ({exc.reason}); "
            "set kubeconfig/context in the kaniko builder_settings or export KUBECONFIG."
        ) from None
