"""Reaching the artifact store: no credentials, an endpoint nobody answers or a missing bucket is one
sentence, in seconds, naming the stack, the URI and the fix, on every command, `--emulate` included."""

from __future__ import annotations

import socket
import time

import pytest

from stackhop.cli.main import main

PIPELINE = """
from stackhop import step, pipeline

@step
def count(n: int = 3) -> int:
    return n

@pipeline
def counting():
    count()
"""

STACKS = """
stacks:
  sm:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0"}
    settings: {region: us-east-1, role_arn: "arn:aws:iam::123456789012:role/SageMakerRole"}
  gcp:
    adapter: vertex
    artifact_root: gs://ml-artifacts/stackhop
    defaults: {image: "us-docker.pkg.dev/p/ml/train:1.0"}
    settings: {project: my-project}
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: connections are refused


@pytest.fixture
def no_cloud(project, write_config, monkeypatch, tmp_path):
    """A laptop with no AWS or Google credentials anywhere."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    write_config(STACKS)
    (project / "counting_store_access.py").write_text(PIPELINE)  # every command here stops at the store
    return project


def _fails_in_one_sentence(argv: list[str], capsys, *expected: str) -> str:
    started = time.monotonic()
    code = main(argv)
    took = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    for part in expected:
        assert part in lines[0], lines[0]
    assert took < 5, f"took {took:.1f} s"
    return lines[0]


@pytest.mark.parametrize("emulate", [[], ["--emulate"]], ids=["run", "emulate"])
def test_s3_without_credentials_names_the_stack_the_uri_and_how_to_get_credentials(no_cloud, capsys, emulate,
                                                                                  monkeypatch):
    from stackhop.testing.sagemaker.fake import FakeSageMaker

    with FakeSageMaker(region="us-east-1") as fake:
        fake.create_bucket("ml-artifacts")
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", fake.endpoint_url)  # reachable, but we hold no credentials
        _fails_in_one_sentence(["run", "counting_store_access.py", "-s", "sm", *emulate], capsys,
                               "stack 'sm': cannot use s3://ml-artifacts/stackhop/", "no usable credentials",
                               "AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL_S3")


def test_s3_that_answers_nowhere_is_refused_before_any_retry(no_cloud, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    _fails_in_one_sentence(["run", "counting_store_access.py", "-s", "sm", "--emulate"], capsys,
                           "stack 'sm': cannot use s3://ml-artifacts/stackhop", f"the endpoint {endpoint} cannot be "
                           "reached")


def test_a_missing_s3_bucket_is_named_and_never_created_behind_the_users_back(no_cloud, capsys, monkeypatch):
    from stackhop.testing.sagemaker.fake import FakeSageMaker

    with FakeSageMaker(region="us-east-1") as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        _fails_in_one_sentence(["run", "counting_store_access.py", "-s", "sm", "--emulate"], capsys,
                               "stack 'sm'", "bucket 'ml-artifacts' does not exist; create it")
        import boto3

        s3 = boto3.client("s3", endpoint_url=fake.endpoint_url, region_name="us-east-1")
        assert s3.list_buckets()["Buckets"] == []


@pytest.mark.parametrize("emulate", [[], ["--emulate"]], ids=["run", "emulate"])
def test_cloud_storage_without_credentials_fails_at_once_instead_of_retrying(no_cloud, capsys, emulate):
    _fails_in_one_sentence(["run", "counting_store_access.py", "-s", "gcp", *emulate], capsys,
                           "stack 'gcp': cannot use gs://ml-artifacts/stackhop", "no Google Cloud credentials",
                           "gcloud auth application-default login", "STORAGE_EMULATOR_HOST")


def test_a_cloud_storage_emulator_that_is_down_is_named(no_cloud, capsys, monkeypatch):
    host = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
    _fails_in_one_sentence(["run", "counting_store_access.py", "-s", "gcp", "--emulate"], capsys,
                           "stack 'gcp'", f"the endpoint {host} cannot be reached")
