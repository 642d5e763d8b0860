"""The CodeBuild builder: boto3 over real HTTP against moto's server (via FakeCodeBuild).

moto runs nothing: each build stays IN_PROGRESS until the test, playing CodeBuild in an
`on_start` hook, reads the uploaded source from S3 and finishes the build, so what is proven is
the request the builder sends and how it reads every outcome, not that the buildspec builds.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackhop.core.stack import Stack, StackConfig
from stackhop.images.builders.codebuild import (
    CodeBuildBuilder,
    CodeBuildSettings,
    codebuild_buildspec,
    codebuild_environment,
)
from stackhop.images.builders.remote_context import context_zip
from stackhop.images.errors import ImageError
from stackhop.images.spec import BuildSpec
from stackhop.testing.codebuild import FakeCodeBuild

ROLE = "arn:aws:iam::123456789012:role/codebuild-images"
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml/train"
DIGEST = "sha256:" + "c0ffee00" * 8


def spec(repository: str = ECR, **kw: Any) -> BuildSpec:
    fields: dict[str, Any] = dict(
        name="train", repository=repository, tag="h-" + "7" * 32,
        dockerfile="FROM python:3.11-slim\nCOPY app.py /app/\n", context=(("app.py", b"print(1)\n"),),
        platform="linux/amd64", build_args=(("PIP_INDEX_URL", "https://p/simple"), ("QUOTE", "it's $(rm -rf /)")),
    )
    fields.update(kw)
    return BuildSpec(**fields)


def settings(**kw: Any) -> CodeBuildSettings:
    return CodeBuildSettings(**{"project": "images", "region": "us-east-1", "poll_seconds": 0.02, **kw})


@pytest.fixture
def aws(monkeypatch):
    with FakeCodeBuild(region="us-east-1") as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        fake.create_bucket("ml-artifacts")
        yield fake


def builder(tmp_path: Path, root: str = "s3://ml-artifacts/stackhop", **kw: Any) -> CodeBuildBuilder:
    return CodeBuildBuilder(settings(**kw), Stack("aws", StackConfig(artifact_root=root), tmp_path, "test"))


def play_build(aws: FakeCodeBuild, status: str = "SUCCEEDED", **finish: Any) -> list[bytes]:
    """Act as CodeBuild: fetch the zip the build points at, then end the build."""
    fetched: list[bytes] = []

    def on_start(build: dict[str, Any], params: dict[str, Any]) -> None:
        bucket, key = build["source"]["location"].split("/", 1)
        fetched.append(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        aws.finish(build["id"], status, **finish)

    aws.on_start = on_start
    return fetched


def test_the_buildspec_keeps_every_spec_value_in_environment_variables() -> None:
    the_spec = spec()
    text = codebuild_buildspec(the_spec, settings(registry_credentials_secret="ci/dockerhub"))
    assert text == codebuild_buildspec(the_spec, settings(registry_credentials_secret="ci/dockerhub"))
    doc = yaml.safe_load(text)
    assert doc["version"] == 0.2
    assert doc["env"]["exported-variables"] == ["IMAGE_DIGEST"]
    assert doc["env"]["secrets-manager"] == {"STACKHOP_DOCKER_CONFIG": "ci/dockerhub"}
    login = doc["phases"]["pre_build"]["commands"]
    assert "$STACKHOP_DOCKER_CONFIG" in login[0], "the secret's config is written before docker login adds to it"
    assert login[1].startswith('aws ecr get-login-password --region "$REGISTRY_REGION"')
    build = doc["phases"]["build"]["commands"]
    assert build[0] == ('docker build --file Dockerfile --tag "$IMAGE_REFERENCE" --platform "$IMAGE_PLATFORM" '
                        '--build-arg "$STACKHOP_BUILD_ARG_0" --build-arg "$STACKHOP_BUILD_ARG_1" .')
    assert 'docker push "$IMAGE_REFERENCE" > push.log' in build
    for value in ("rm -rf", "https://p/simple", ECR):
        assert value not in text, "spec values travel as environment variables, never as buildspec text"

    env = {v["name"]: v["value"] for v in codebuild_environment(the_spec)}
    assert env == {
        "IMAGE_REFERENCE": the_spec.reference, "IMAGE_PLATFORM": "linux/amd64",
        "STACKHOP_BUILD_ARG_0": "PIP_INDEX_URL=https://p/simple", "STACKHOP_BUILD_ARG_1": "QUOTE=it's $(rm -rf /)",
        "REGISTRY_HOST": "123456789012.dkr.ecr.us-east-1.amazonaws.com", "REGISTRY_REGION": "us-east-1",
    }
    other = yaml.safe_load(codebuild_buildspec(spec("ghcr.io/acme/train", platform=None, build_args=()), settings()))
    assert "pre_build" not in other["phases"]
    assert other["phases"]["build"]["commands"][0] == 'docker build --file Dockerfile --tag "$IMAGE_REFERENCE" .'


def test_the_context_zip_is_reproducible_and_holds_the_dockerfile() -> None:
    data = context_zip(spec())
    assert data == context_zip(spec())
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["Dockerfile", "app.py"]
        assert archive.read("Dockerfile").decode() == spec().dockerfile


def test_settings_need_a_role_to_create_a_project() -> None:
    with pytest.raises(ValueError, match="service_role_arn"):
        CodeBuildSettings(project="images", create_project=True)
    with pytest.raises(ValueError):
        CodeBuildSettings(project="images", timeout_minutes=3)


def test_a_build_creates_the_project_overrides_source_and_buildspec_and_returns_the_exported_digest(aws, tmp_path) -> None:
    fetched = play_build(aws, exported={"IMAGE_DIGEST": DIGEST})
    messages: list[str] = []
    the_spec = spec()
    assert builder(tmp_path, create_project=True, service_role_arn=ROLE).build(the_spec, messages.append) == DIGEST

    data = context_zip(the_spec)
    key = f"stackhop/_stackhop/build-contexts/{hashlib.sha256(data).hexdigest()}.zip"
    assert fetched == [data], "the build's source location is the uploaded zip"

    (created,) = aws.calls("CreateProject")
    assert created["environment"] == {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                                      "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": True}
    assert created["serviceRole"] == ROLE and created["artifacts"] == {"type": "NO_ARTIFACTS"}
    (started,) = aws.calls("StartBuild")
    assert started["projectName"] == "images"
    assert started["sourceTypeOverride"] == "S3"
    assert started["sourceLocationOverride"] == f"ml-artifacts/{key}"
    assert started["buildspecOverride"] == codebuild_buildspec(the_spec, settings())
    assert started["environmentVariablesOverride"] == codebuild_environment(the_spec)
    assert started["privilegedModeOverride"] is True and started["timeoutInMinutesOverride"] == 60

    build = aws.build(aws.calls("BatchGetBuilds")[0]["ids"][0])
    assert build["source"]["type"] == "S3" and build["environment"]["privilegedMode"] is True
    assert any("created CodeBuild project images" in m for m in messages)

    # Again: the project exists now, and the zip is already in S3.
    play_build(aws, exported={"IMAGE_DIGEST": DIGEST})
    assert builder(tmp_path, create_project=True, service_role_arn=ROLE).build(the_spec, messages.append) == DIGEST
    assert len(aws.calls("CreateProject")) == 1 and len(aws.calls("StartBuild")) == 2
    puts = [op for op, _ in aws.requests if op.startswith("PUT ") and op.endswith(".zip")]
    assert len(puts) == 1, f"the context is content-addressed and uploaded once: {puts}"


@pytest.mark.parametrize("status", ["FAILED", "FAULT", "TIMED_OUT", "STOPPED"])
def test_a_build_that_does_not_succeed_names_the_build_the_phase_and_the_reason(aws, tmp_path, status) -> None:
    play_build(aws, status, phase="BUILD", message="Error while executing command: docker build ... Reason: exit status 1")
    with pytest.raises(ImageError) as info:
        builder(tmp_path, create_project=True, service_role_arn=ROLE).build(spec(), lambda _: None)
    message = str(info.value)
    assert message.startswith("CodeBuild build images:") and f"for image {spec().reference} ended {status} in phase BUILD" in message
    assert "docker build ... Reason: exit status 1" in message
    assert message.endswith("and fix the Dockerfile or the project's permissions.") and "\n" not in message


def test_a_success_without_the_exported_digest_is_an_error(aws, tmp_path) -> None:
    play_build(aws)
    with pytest.raises(ImageError, match=r"exported no IMAGE_DIGEST \(got 'nothing'\)"):
        builder(tmp_path, create_project=True, service_role_arn=ROLE).build(spec(), lambda _: None)


def test_a_missing_project_is_not_created_unless_asked(aws, tmp_path) -> None:
    with pytest.raises(ImageError, match=r"^CodeBuild project 'images' does not exist in us-east-1, .* set create_project: true and service_role_arn\.$"):
        builder(tmp_path).build(spec(), lambda _: None)
    assert aws.calls("StartBuild") == []


def test_the_artifact_root_must_be_s3(tmp_path) -> None:
    with pytest.raises(ImageError, match=r"reads the build context from s3://, but stack 'aws' has artifact_root 'gs://b/x'"):
        builder(tmp_path, root="gs://b/x").build(spec(), lambda _: None)
