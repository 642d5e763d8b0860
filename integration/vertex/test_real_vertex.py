"""The Vertex AI scenario against a real GCP project (see integration/README.md)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.core.source import import_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REQUIRED = ("STACKHOP_IT_GCP_PROJECT", "STACKHOP_IT_IMAGE", "STACKHOP_IT_GCS_ROOT")
missing = [v for v in REQUIRED if not os.environ.get(v)]
if not (os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or os.environ.get("STACKHOP_IT_ADC")):
    missing.append("GCP credentials (GOOGLE_APPLICATION_CREDENTIALS, or STACKHOP_IT_ADC=1 after gcloud auth)")
pytestmark = pytest.mark.skipif(bool(missing), reason=f"set {', '.join(missing)} to run against real Vertex AI")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    settings = {"project": os.environ.get("STACKHOP_IT_GCP_PROJECT"),
                "location": os.environ.get("STACKHOP_IT_GCP_LOCATION", "us-central1"), "job_id_prefix": "stackhop-it-"}
    if os.environ.get("STACKHOP_IT_SERVICE_ACCOUNT"):
        settings["service_account"] = os.environ["STACKHOP_IT_SERVICE_ACCOUNT"]
    (tmp_path / "stackhop.yaml").write_text(yaml.safe_dump({"default_stack": "gcp", "stacks": {"gcp": {
        "adapter": "vertex", "artifact_root": os.environ.get("STACKHOP_IT_GCS_ROOT", ""),
        "defaults": {"image": os.environ.get("STACKHOP_IT_IMAGE", "")}, "settings": settings}}}))
    shutil.copy(EXAMPLES / "training_pipeline.py", tmp_path / "training_example.py")
    shutil.copy(EXAMPLES / "container_pipeline.py", tmp_path / "container_example.py")
    return tmp_path


def test_training_example_deploy_taken_and_skipped(project: Path) -> None:
    module = import_file(project / "training_example.py")
    taken = stackhop.run(module.training_pipeline, parameters={"deploy_dir": "/tmp/deployed"})
    assert taken.wait(timeout=3600) == RunStatus.SUCCEEDED, taken.state().message
    assert taken.steps()["deploy_model"].status == StepStatus.SUCCEEDED
    assert "accuracy=" in taken.logs("evaluate_model")
    assert taken.artifact("train_model", "model").uri.startswith(os.environ["STACKHOP_IT_GCS_ROOT"])
    skipped = stackhop.run(module.training_pipeline, parameters={"min_accuracy": 0.999})
    assert skipped.wait(timeout=3600) == RunStatus.SUCCEEDED
    assert skipped.steps()["deploy_model"].status == StepStatus.SKIPPED


def test_the_plain_image_example_runs_busybox_beside_stackhop(project: Path) -> None:
    module = import_file(project / "container_example.py")
    handle = stackhop.run(module.container_pipeline, parameters={"min_len": 8})
    assert handle.wait(timeout=3600) == RunStatus.SUCCEEDED, handle.state().message
    assert handle.steps()["count-words"].status == StepStatus.SUCCEEDED
    assert handle.artifact("count-words", "count").load() == 6
    assert handle.artifact("summarize", "output").load() == "6 long words"


def test_cancel_ends_the_job_cancelled(project: Path) -> None:
    module = import_file(project / "training_example.py")
    handle = stackhop.run(module.training_pipeline, wait=False)
    handle.cancel()
    assert handle.wait(timeout=1800) == RunStatus.CANCELLED


def test_the_example_run_as_a_script_travels_by_value(project: Path, run_as_script) -> None:
    record = run_as_script(project)
    assert record.status == "SUCCEEDED", record.message
