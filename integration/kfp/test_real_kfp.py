"""The Kubeflow Pipelines scenario against a real KFP endpoint, e.g. the standalone deployment on kind (see README)."""

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
REQUIRED = ("STACKHOP_IT_KFP_HOST", "STACKHOP_IT_IMAGE", "STACKHOP_IT_ARTIFACT_ROOT")
missing = [v for v in REQUIRED if not os.environ.get(v)]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"set {', '.join(missing)} to run against real Kubeflow Pipelines")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    settings = {"host": os.environ.get("STACKHOP_IT_KFP_HOST"), "experiment": "stackhop-it"}
    if os.environ.get("STACKHOP_IT_KFP_TOKEN"):
        settings["token_env"] = "STACKHOP_IT_KFP_TOKEN"
    (tmp_path / "stackhop.yaml").write_text(yaml.safe_dump({"default_stack": "kfp", "stacks": {"kfp": {
        "adapter": "kfp", "artifact_root": os.environ.get("STACKHOP_IT_ARTIFACT_ROOT", ""),
        "defaults": {"image": os.environ.get("STACKHOP_IT_IMAGE", "")}, "settings": settings}}}))
    shutil.copy(EXAMPLES / "training_pipeline.py", tmp_path / "training_example.py")
    shutil.copy(EXAMPLES / "container_pipeline.py", tmp_path / "container_example.py")
    return tmp_path


def test_training_example_deploy_taken_and_skipped(project: Path) -> None:
    module = import_file(project / "training_example.py")
    taken = stackhop.run(module.training_pipeline, parameters={"deploy_dir": "/tmp/deployed"})
    assert taken.ref.data["dashboard"].startswith(os.environ["STACKHOP_IT_KFP_HOST"].rstrip("/"))
    assert taken.wait(timeout=3600) == RunStatus.SUCCEEDED, taken.state().message
    assert taken.steps()["deploy_model"].status == StepStatus.SUCCEEDED
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


def test_cancel_ends_the_run_cancelled(project: Path) -> None:
    module = import_file(project / "training_example.py")
    handle = stackhop.run(module.training_pipeline, wait=False)
    handle.cancel()
    assert handle.wait(timeout=1800) == RunStatus.CANCELLED


def test_the_example_run_as_a_script_travels_by_value(project: Path, run_as_script) -> None:
    record = run_as_script(project)
    assert record.status == "SUCCEEDED", record.message
