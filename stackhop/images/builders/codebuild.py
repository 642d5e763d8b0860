"""`codebuild`: build and push an image with AWS CodeBuild, for stacks that live on AWS.

Why: a SageMaker stack already has an S3 artifact root and an AWS identity; CodeBuild turns
those into image builds with no Docker, no cluster and no long-lived builder on the user's side,
and pushes to ECR with the project's own role.

How: the context is uploaded as a zip (CodeBuild's S3 sources must be zip archives, not the
tar.gz other remote builders read) to `<artifact_root>/_stackhop/build-contexts/<sha256>.zip`,
then one StartBuild overrides the project's source with it, and its buildspec with one rendered
here that runs `docker build` and `docker push` (CodeBuild's standard images ship Docker; the
build runs with privileged mode) and exports the pushed digest as IMAGE_DIGEST, which
BatchGetBuilds returns in `exportedEnvironmentVariables`. Every value from the spec reaches the
build as an environment variable, quoted where the shell expands it, never as buildspec text.

Limits: the artifact root must be s3:// in the project's region; pushing needs credentials:
ECR registries are logged in with the project's role, any other registry needs
`registry_credentials_secret` (a Secrets Manager secret holding a docker config.json). `platform`
is passed to `docker build --platform`, which builds a foreign architecture only if the build
host can emulate it; pick `environment_type: ARM_CONTAINER` for arm64 images instead. Builds
are not cached between runs beyond what the project's own cache settings give.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import Field, model_validator

from stackhop.core.image_settings import Reference
from stackhop.images.builder import Builder, BuilderSettings
from stackhop.images.builders.remote_context import context_zip, require_scheme, split_bucket, upload_context
from stackhop.images.errors import ImageError

if TYPE_CHECKING:
    from stackhop.images.spec import BuildSpec

DIGEST_VARIABLE = "IMAGE_DIGEST"
DOCKER_CONFIG_VARIABLE = "STACKHOP_DOCKER_CONFIG"
# CodeBuild's curated images, both with Docker: standard 7.0 (Ubuntu 22.04, x86-64) and the
# aarch64 standard 3.0 image (arm64), the ids AWS CDK's LinuxBuildImage constants use.
DEFAULT_IMAGES = {
    "LINUX_CONTAINER": "aws/codebuild/standard:7.0",
    "ARM_CONTAINER": "aws/codebuild/amazonlinux2-aarch64-standard:3.0",
}
_ECR = re.compile(r"^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_TERMINAL_FAILURES = ("FAILED", "FAULT", "TIMED_OUT", "STOPPED")


class CodeBuildSettings(BuilderSettings):
    """`images.builder_settings` for CodeBuild."""

    project: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$", description="CodeBuild project name.")
    region: str | None = Field(default=None, description="Default: the AWS SDK's (AWS_REGION, profile).")
    create_project: bool = Field(default=False, description="Create the project when it does not exist.")
    service_role_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$", description="Role for a created project."
    )
    environment_type: Literal["LINUX_CONTAINER", "ARM_CONTAINER"] = "LINUX_CONTAINER"
    build_image: Reference | None = Field(default=None, description="Build environment image of a created project.")
    compute_type: str = Field(default="BUILD_GENERAL1_SMALL", pattern=r"^BUILD_[A-Z0-9_]+$")
    registry_credentials_secret: str | None = Field(
        default=None,
        description="Secrets Manager secret (name or ARN) whose value is a docker config.json, for non-ECR registries.",
    )
    timeout_minutes: int = Field(default=60, ge=5, le=2160)
    poll_seconds: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _role_for_creation(self) -> "CodeBuildSettings":
        if self.create_project and not self.service_role_arn:
            raise ValueError("create_project needs service_role_arn, the IAM role the new project's builds run as")
        return self


def ecr_region(reference: str) -> tuple[str, str] | None:
    """(registry host, region) when the image goes to ECR, whose login the project's role can do."""
    from stackhop.images.reference import parse_reference

    host = parse_reference(reference).registry
    match = _ECR.match(host)
    return (host, match.group(1)) if match else None


def codebuild_environment(spec: "BuildSpec") -> list[dict[str, str]]:
    """environmentVariablesOverride: the only way spec values reach the build."""
    variables = [{"name": "IMAGE_REFERENCE", "value": spec.reference, "type": "PLAINTEXT"}]
    if spec.platform:
        variables.append({"name": "IMAGE_PLATFORM", "value": spec.platform, "type": "PLAINTEXT"})
    for index, (key, value) in enumerate(spec.build_args):
        variables.append({"name": f"STACKHOP_BUILD_ARG_{index}", "value": f"{key}={value}", "type": "PLAINTEXT"})
    ecr = ecr_region(spec.reference)
    if ecr:
        variables.append({"name": "REGISTRY_HOST", "value": ecr[0], "type": "PLAINTEXT"})
        variables.append({"name": "REGISTRY_REGION", "value": ecr[1], "type": "PLAINTEXT"})
    return variables


def codebuild_buildspec(spec: "BuildSpec", settings: CodeBuildSettings) -> str:
    """The buildspec (version 0.2) that builds, pushes and exports the digest; deterministic YAML."""
    import yaml

    env: dict[str, Any] = {
        "shell": "bash",
        "variables": {"DOCKER_BUILDKIT": "1"},
        "exported-variables": [DIGEST_VARIABLE],
    }
    login: list[str] = []
    if settings.registry_credentials_secret:  # first: `docker login` below adds to this file
        env["secrets-manager"] = {DOCKER_CONFIG_VARIABLE: settings.registry_credentials_secret}
        login.append(f'mkdir -p "$HOME/.docker" && printf \'%s\' "${DOCKER_CONFIG_VARIABLE}" > "$HOME/.docker/config.json"')
    if ecr_region(spec.reference):
        login.append(
            'aws ecr get-login-password --region "$REGISTRY_REGION" '
            '| docker login --username AWS --password-stdin "$REGISTRY_HOST"'
        )
    build = ['docker build --file Dockerfile --tag "$IMAGE_REFERENCE"']
    if spec.platform:
        build.append('--platform "$IMAGE_PLATFORM"')
    build += [f'--build-arg "$STACKHOP_BUILD_ARG_{i}"' for i in range(len(spec.build_args))]
    build.append(".")
    phases: dict[str, Any] = {}
    if login:
        phases["pre_build"] = {"on-failure": "ABORT", "commands": login}
    phases["build"] = {
        "on-failure": "ABORT",
        "commands": [
            " ".join(build),
            'docker push "$IMAGE_REFERENCE" > push.log',
            "cat push.log",
            f"{DIGEST_VARIABLE}=\"$(grep -o 'digest: sha256:[0-9a-f]*' push.log | tail -n 1 | cut -d ' ' -f 2)\"",
            f'test -n "${DIGEST_VARIABLE}"',
            f'echo "pushed $IMAGE_REFERENCE@${DIGEST_VARIABLE}"',
        ],
    }
    return str(yaml.safe_dump({"version": 0.2, "env": env, "phases": phases}, sort_keys=False, width=1000))


class CodeBuildBuilder(Builder):
    """Runs one CodeBuild build per image and returns the digest it exported."""

    name = "codebuild"
    Settings = CodeBuildSettings
    remote = True

    settings: CodeBuildSettings

    def unavailable(self) -> str | None:
        try:
            import boto3  # noqa: F401
        except ImportError:
            return "the codebuild builder needs boto3; install it with `pip install 'stackhop[aws]'`."
        return None

    def build(self, spec: "BuildSpec", log: Callable[[str], None]) -> str:
        require_scheme(self.stack, ("s3",), "codebuild", spec.reference)
        uri = upload_context(self.stack, context_zip(spec), "zip", log)
        bucket, key = split_bucket(uri)
        client = self._client(spec)
        self._ensure_project(client, spec, log)
        build = self._call(client, "start_build", spec, **self.start_build_request(spec, f"{bucket}/{key}"))["build"]
        build_id = build["id"]
        log(f"started CodeBuild build {build_id} for {spec.reference}")
        build = self._wait(client, spec, build_id)
        status = build.get("buildStatus")
        if status != "SUCCEEDED":
            raise ImageError(_failure(build, spec, self.settings.project))
        exported = {v.get("name"): v.get("value") for v in build.get("exportedEnvironmentVariables") or []}
        digest = (exported.get(DIGEST_VARIABLE) or "").strip()
        if not _DIGEST.match(digest):
            raise ImageError(
                f"CodeBuild build {build_id} pushed image {spec.reference} but exported no {DIGEST_VARIABLE} "
                f"(got {digest or 'nothing'!r}); check that the project does not replace stackhop's buildspec and read the build's logs."
            )
        log(f"CodeBuild pushed {spec.reference}@{digest}")
        return digest

    def start_build_request(self, spec: "BuildSpec", source_location: str) -> dict[str, Any]:
        """StartBuild's parameters: the project, with source, buildspec and environment overridden."""
        return {
            "projectName": self.settings.project,
            "sourceTypeOverride": "S3",
            "sourceLocationOverride": source_location,
            "buildspecOverride": codebuild_buildspec(spec, self.settings),
            "environmentVariablesOverride": codebuild_environment(spec),
            "artifactsOverride": {"type": "NO_ARTIFACTS"},
            "privilegedModeOverride": True,  # docker build needs the daemon CodeBuild starts in privileged mode
            "timeoutInMinutesOverride": self.settings.timeout_minutes,
        }

    # -- steps ---------------------------------------------------------------------------------

    def _client(self, spec: "BuildSpec") -> Any:
        try:
            import boto3
        except ImportError:
            raise ImageError(
                f"The codebuild builder cannot build image {spec.reference} without boto3; "
                "install it with `pip install 'stackhop[aws]'`."
            ) from None
        from botocore.exceptions import BotoCoreError

        try:
            return boto3.client("codebuild", region_name=self.settings.region)
        except BotoCoreError as exc:
            raise ImageError(
                f"The codebuild builder cannot reach CodeBuild to build image {spec.reference} ({exc}); "
                "set builder_settings.region or AWS_REGION."
            ) from None

    def _ensure_project(self, client: Any, spec: "BuildSpec", log: Callable[[str], None]) -> None:
        found = self._call(client, "batch_get_projects", spec, names=[self.settings.project]).get("projects") or []
        if found:
            return
        if not self.settings.create_project:
            raise ImageError(
                f"CodeBuild project {self.settings.project!r} does not exist in {client.meta.region_name}, so image "
                f"{spec.reference} cannot be built; create it, or set create_project: true and service_role_arn."
            )
        bucket, key = split_bucket(self.stack.artifact_root)
        placeholder = "/".join(p for p in (bucket, key, "_stackhop", "build-contexts") if p) + "/"
        image = self.settings.build_image or DEFAULT_IMAGES[self.settings.environment_type]
        self._call(
            client,
            "create_project",
            spec,
            name=self.settings.project,
            description="Image builds for stackhop pipelines (each build overrides source and buildspec).",
            source={"type": "S3", "location": placeholder},
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": self.settings.environment_type,
                "image": image,
                "computeType": self.settings.compute_type,
                "privilegedMode": True,
            },
            serviceRole=self.settings.service_role_arn,
            timeoutInMinutes=self.settings.timeout_minutes,
        )
        log(f"created CodeBuild project {self.settings.project} ({self.settings.environment_type}, {image})")

    def _wait(self, client: Any, spec: "BuildSpec", build_id: str) -> dict[str, Any]:
        # The build times itself out; the margin covers queueing before it starts.
        deadline = time.monotonic() + (self.settings.timeout_minutes + 30) * 60
        while True:
            builds = self._call(client, "batch_get_builds", spec, ids=[build_id]).get("builds") or []
            if not builds:
                raise ImageError(
                    f"CodeBuild build {build_id} for image {spec.reference} is not found any more; build again."
                )
            build = dict(builds[0])
            if build.get("buildStatus") != "IN_PROGRESS":
                return build
            if time.monotonic() > deadline:
                self._call(client, "stop_build", spec, id=build_id)
                raise ImageError(
                    f"CodeBuild build {build_id} for image {spec.reference} did not finish in "
                    f"{self.settings.timeout_minutes + 30} minutes and was stopped; raise timeout_minutes or check the project's queue."
                )
            time.sleep(self.settings.poll_seconds)

    def _call(self, client: Any, operation: str, spec: "BuildSpec", **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return dict(getattr(client, operation)(**params))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ImageError(
                f"CodeBuild {operation} for image {spec.reference} failed ({error.get('Code')}: "
                f"{str(error.get('Message', '')).rstrip('.')}); check the project {self.settings.project!r} and the "
                "caller's IAM permissions."
            ) from None
        except BotoCoreError as exc:
            raise ImageError(
                f"CodeBuild {operation} for image {spec.reference} could not be sent ({exc}); "
                "check the AWS region and credentials."
            ) from None


def _failure(build: dict[str, Any], spec: "BuildSpec", project: str) -> str:
    """One sentence: which build, how it ended, in which phase and why, and where its logs are."""
    status = build.get("buildStatus")
    where = ""
    for phase in build.get("phases") or []:
        if phase.get("phaseStatus") in _TERMINAL_FAILURES:
            messages = "; ".join(c.get("message", "") for c in phase.get("contexts") or [] if c.get("message"))
            where = f" in phase {phase.get('phaseType')}" + (f" ({messages.rstrip('.')})" if messages else "")
            break
    link = (build.get("logs") or {}).get("deepLink")
    logs = f"read its logs at {link}" if link else "read its logs in the CodeBuild console"
    return (
        f"CodeBuild build {build.get('id')} of project {project} for image {spec.reference} ended {status}{where}; "
        f"{logs} and fix the Dockerfile or the project's permissions."
    )
