"""Shared fixtures: an isolated project directory, and pipelines written as real files.

Step processes import the step's module, so test pipelines live in files under the test's
own temp directory rather than in the test module.
"""

from __future__ import annotations

import itertools
import os
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from stackhop.core.source import import_file

_counter = itertools.count()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project: cwd, run store and artifacts all under tmp_path, no env leaking in."""
    monkeypatch.chdir(tmp_path)
    for var in ("STACKHOP_STACK", "STACKHOP_CONFIG", "STACKHOP_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("STACKHOP_CODE_CACHE", str(tmp_path / ".code-cache"))
    return tmp_path


@pytest.fixture
def write_pipeline(project: Path) -> Callable[..., Any]:
    """Write `source` to a uniquely named module in the project and import it."""

    def write(source: str, name: str | None = None) -> Any:
        module = name or f"pipe_{os.getpid()}_{next(_counter)}"
        path = project / f"{module}.py"
        path.write_text(textwrap.dedent(source))
        sys.modules.pop(module, None)
        return import_file(path)

    return write


@pytest.fixture
def write_config(project: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = project / "stackhop.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# A pipeline that fails on purpose when its score is under the threshold (SageMaker FailStep specs).
GATED_FAIL = """
        from stackhop import step, pipeline, If, fail_step

        @step
        def score() -> float:
            return 0.5

        @pipeline
        def gated(threshold: float = 0.8):
            s = score()
            with If(s.output < threshold):
                fail_step("accuracy is below the threshold")
    """


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    """SageMaker, S3 and CloudWatch Logs on loopback (moto's server), with the bucket `ml-artifacts`."""
    from stackhop.testing.sagemaker import FakeSageMaker

    with FakeSageMaker(region="us-east-1") as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        fake.create_bucket("ml-artifacts")
        yield fake


@pytest.fixture(scope="session")
def gcs():
    """Cloud Storage on loopback for the whole session (gcsfs caches clients, so one server it is)."""
    from stackhop.testing.gcs import FakeGCS

    with FakeGCS(buckets=("ml-artifacts", "stackhop")) as fake:
        yield fake


def k8s_stack(write_config: Callable[[str], Path], kube: Any, project: Path, **settings: object) -> None:
    """Make `k8s` the default stack: the fake API server `kube`, namespace ml, quick polling."""
    import yaml

    kubeconfig = project / "kubeconfig"
    kube.write_kubeconfig(str(kubeconfig), namespace="ml")
    base = {"kubeconfig": str(kubeconfig), "namespace": "ml", "poll_seconds": 0.1, "pending_grace_seconds": 1.0}
    write_config(yaml.safe_dump({
        "default_stack": "k8s",
        "stacks": {"k8s": {"adapter": "kubernetes", "defaults": {"image": "python:3.11-slim"},
                           "settings": {**base, **settings}}},
    }))


def emulated_stacks(name: str, *, vertex: Any = None, kubeflow: Any = None, default: str = "laptop") -> str:
    """A stackhop.yaml with a local stack and a SageMaker (moto's, through `aws`), Vertex and KFP stack, artifacts
    under `name`. Given the Vertex or KFP stand-in, that stack submits to it; otherwise it can only emulate."""
    vertex_settings = (f"{{project: test-project, location: europe-west4, api_endpoint: {vertex.endpoint}, "
                       "anonymous: true}" if vertex else "{project: my-project}")
    kfp_host = kubeflow.host if kubeflow else "http://kfp.invalid"
    return f"""
default_stack: {default}
stacks:
  laptop:
    adapter: local
  sm:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/{name}
    defaults: {{image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/stackhop:1.0"}}
    settings: {{region: us-east-1, role_arn: "arn:aws:iam::123456789012:role/SageMakerRole"}}
  vertex:
    adapter: vertex
    artifact_root: gs://ml-artifacts/{name}-vertex
    defaults: {{image: "python:3.11"}}
    settings: {vertex_settings}
  kfp:
    adapter: kfp
    artifact_root: gs://ml-artifacts/{name}-kfp
    defaults: {{image: "python:3.11"}}
    settings: {{host: "{kfp_host}"}}
"""


@pytest.fixture
def vertex(monkeypatch: pytest.MonkeyPatch, gcs: Any) -> Iterator[Any]:
    """The Vertex AI stand-in for project test-project in europe-west4, with aiplatform pointed at it."""
    from stackhop.testing.vertex import FakeVertex

    with FakeVertex(project="test-project", location="europe-west4") as fake:
        fake.patch_client(monkeypatch)
        yield fake


@pytest.fixture
def kubeflow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gcs: Any) -> Iterator[Any]:
    """The Kubeflow Pipelines API stand-in; kfp.Client reads no kfp context of the machine's."""
    import kfp

    from stackhop.testing.kfp import FakeKFP

    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    with FakeKFP() as fake:
        yield fake


def output_of(handle: Any, step: str, output: str = "output") -> Any:
    """A finished run's value of one step output, after checking the run succeeded (its message says why not)."""
    from stackhop.core.runs import RunStatus

    assert handle.status is RunStatus.SUCCEEDED, handle.state().message
    return handle.artifact(step, output).value
