"""`${VAR}` is a value, not a secret: compile says so where it looks like one, and `secrets:` in a
stack passes a reference that never reaches a compiled document or a run record."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from stackhop.cli.main import main

PIPELINE = """
import os
from stackhop import step, pipeline

@step
def connect() -> str:
    return "db password has %d characters" % len(os.environ["DB_PASSWORD"])

@pipeline
def nightly():
    connect()
"""


_files = itertools.count()


@pytest.fixture
def flow(project: Path) -> str:
    """The pipeline file, under a name no other test has imported in this process."""
    name = f"nightly_{os.getpid()}_{next(_files)}.py"
    (project / name).write_text(PIPELINE)
    return name


def _compile(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(["compile", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_an_interpolated_token_is_compiled_as_a_value_and_compile_says_where_and_what_to_use(
        flow, write_config, capsys, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "tok-123456")
    monkeypatch.setenv("REGION", "eu-west-1")
    write_config("""
        stacks:
          k8s:
            adapter: kubernetes
            defaults:
              image: registry.example.com/ml/train:1.0
              env:
                REGION: ${REGION}
                API_TOKEN: ${MY_TOKEN}
    """)
    code, _, err = _compile([flow, "-s", "k8s", "-o", "out"], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, err
    assert "stackhop.yaml:9: stacks.k8s.defaults.env.API_TOKEN gets the value of ${MY_TOKEN}" in warnings[0]
    assert "secrets: {API_TOKEN: secret-name/key}" in warnings[0]
    assert "tok-123456" not in err
    assert "value: tok-123456" in Path("out/kubernetes.yaml").read_text()  # a value, as the warning said


@pytest.mark.parametrize("name", ["DB_PASSWORD", "aws_secret_access_key", "apiKey", "GITHUB_TOKEN", "passwd"])
def test_secret_looking_names_are_recognised(name):
    from stackhop.core.stack import looks_secret

    assert looks_secret(name)


@pytest.mark.parametrize("name", ["REGION", "KEYBOARD_LAYOUT", "MONKEY", "TOKENIZER_PATH_X"])
def test_ordinary_names_are_not(name):
    from stackhop.core.stack import looks_secret

    assert not looks_secret(name)


def test_an_interpolated_value_under_an_ordinary_name_is_not_flagged(flow, write_config, capsys):
    write_config("""
        stacks:
          k8s:
            adapter: kubernetes
            defaults: {image: registry.example.com/ml/train:1.0, env: {LOG_LEVEL: "${LEVEL:-info}"}}
    """)
    code, _, err = _compile([flow, "-s", "k8s", "-o", "out"], capsys)
    assert code == 0 and "warning:" not in err, err


def test_stack_secrets_become_secret_key_refs_and_no_value_is_compiled(flow, write_config, capsys, monkeypatch):
    monkeypatch.setenv("DB_PASSWORD", "s3cr3t-value")
    write_config("""
        stacks:
          k8s:
            adapter: kubernetes
            defaults:
              image: registry.example.com/ml/train:1.0
              secrets: {DB_PASSWORD: db-creds/password}
    """)
    code, _, err = _compile([flow, "-s", "k8s", "-o", "out"], capsys)
    assert code == 0, err
    text = Path("out/kubernetes.yaml").read_text()
    assert "secretKeyRef:\n              key: password\n              name: db-creds" in text
    assert "s3cr3t-value" not in text


def test_a_local_run_reads_the_stack_secret_through_settings_secrets_and_never_stores_it(
        flow, write_config, capsys, monkeypatch, project):
    monkeypatch.setenv("LOCAL_DB_PASSWORD", "s3cr3t-value")
    write_config("""
        stacks:
          dev:
            adapter: local
            settings: {secrets: {db-creds: {password: LOCAL_DB_PASSWORD}}}
            defaults:
              secrets: {DB_PASSWORD: db-creds/password}
    """)
    assert main(["run", flow, "-s", "dev"]) == 0
    capsys.readouterr()
    assert main(["runs", "list", "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out)[0]["run_id"]
    assert main(["runs", "show", run_id, "--json"]) == 0
    shown = capsys.readouterr().out
    assert "SUCCEEDED" in shown
    stored = b"".join(p.read_bytes() for p in (project / ".stackhop").rglob("*") if p.is_file())
    assert b"s3cr3t-value" not in stored
    assert b"db password has 12 characters" in stored


@pytest.mark.parametrize("ref", ["db-creds", "/password", "db-creds/", "db creds/password", "db-creds/pass word"])
def test_a_malformed_secret_reference_names_the_key_and_the_form(flow, write_config, capsys, ref):
    write_config(f"""
        stacks:
          k8s:
            adapter: kubernetes
            defaults:
              image: registry.example.com/ml/train:1.0
              secrets: {{DB_PASSWORD: "{ref}"}}
    """)
    code, _, err = _compile([flow, "-s", "k8s"], capsys)
    assert code == 2 and "Traceback" not in err
    assert "stackhop.yaml:7" in err and "stacks.k8s.defaults.secrets" in err and "secret-name/key" in err, err


def test_a_stack_secret_on_a_backend_without_secrets_is_a_compile_error(flow, write_config, capsys):
    write_config("""
        stacks:
          sm:
            adapter: sagemaker
            artifact_root: s3://ml-artifacts/x
            defaults:
              image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0
              secrets: {DB_PASSWORD: db-creds/password}
            settings: {region: us-east-1, role_arn: "arn:aws:iam::123456789012:role/SageMakerRole"}
    """)
    code, _, err = _compile([flow, "-s", "sm"], capsys)
    assert code == 2 and "Traceback" not in err
    assert "connect" in err and "secret" in err, err
