"""The SageMaker scenario against real AWS (see integration/README.md)."""

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
REQUIRED = ("STACKHOP_IT_ROLE_ARN", "STACKHOP_IT_IMAGE", "STACKHOP_IT_S3_ROOT")
missing = [v for v in REQUIRED if not os.environ.get(v)]
if not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
    missing.append("AWS credentials (AWS_ACCESS_KEY_ID or AWS_PROFILE)")
pytestmark = pytest.mark.skipif(bool(missing), reason=f"set {', '.join(missing)} to run against real SageMaker")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stackhop.yaml").write_text(yaml.safe_dump({"default_stack": "aws", "stacks": {"aws": {
        "adapter": "sagemaker", "artifact_root": os.environ.get("STACKHOP_IT_S3_ROOT", ""),
        "defaults": {"image": os.environ.get("STACKHOP_IT_IMAGE", "")},
        "settings": {"region": os.environ.get("AWS_REGION", "us-east-1"), "role_arn": os.environ.get("STACKHOP_IT_ROLE_ARN"),
                     "pipeline_name_prefix": "stackhop-it-"},
    }}}))
    shutil.copy(EXAMPLES / "training_pipeline.py", tmp_path / "training_example.py")
    shutil.copy(EXAMPLES / "container_pipeline.py", tmp_path / "container_example.py")
    return tmp_path


@pytest.fixture
def busybox_stack(project: Path) -> str:
    """The `aws` stack with count-words' busybox:1.36 replaced by an ECR copy: SageMaker Processing pulls only from ECR."""
    config = yaml.safe_load((project / "stackhop.yaml").read_text())
    config["stacks"]["aws-busybox"] = {**config["stacks"]["aws"], "overrides": {"steps": {"count-words": {
        "image": os.environ.get("STACKHOP_IT_BUSYBOX_IMAGE", "")}}}}
    (project / "stackhop.yaml").write_text(yaml.safe_dump(config))
    return "aws-busybox"


def test_training_example_deploy_taken_and_skipped(project: Path) -> None:
    module = import_file(project / "training_example.py")
    taken = stackhop.run(module.training_pipeline, parameters={"deploy_dir": "/tmp/deployed"})
    assert taken.wait(timeout=3600) == RunStatus.SUCCEEDED, taken.state().message
    assert taken.steps()["deploy_model"].status == StepStatus.SUCCEEDED
    assert "accuracy=" in taken.logs("evaluate_model")
    skipped = stackhop.run(module.training_pipeline, parameters={"min_accuracy": 0.999})
    assert skipped.wait(timeout=3600) == RunStatus.SUCCEEDED
    assert skipped.steps()["deploy_model"].status == StepStatus.SKIPPED


@pytest.mark.skipif(not os.environ.get("STACKHOP_IT_BUSYBOX_IMAGE"), reason=(
    f"set {', '.join([*missing, 'STACKHOP_IT_BUSYBOX_IMAGE (an ECR copy of busybox:1.36)'])} to run against real SageMaker, "
    "which pulls the container step's image only from ECR"))
def test_the_plain_image_example_runs_busybox_beside_stackhop(project: Path, busybox_stack: str) -> None:
    module = import_file(project / "container_example.py")
    handle = stackhop.run(module.container_pipeline, busybox_stack, parameters={"min_len": 8})
    assert handle.wait(timeout=3600) == RunStatus.SUCCEEDED, handle.state().message
    assert handle.steps()["count-words"].status == StepStatus.SUCCEEDED
    assert handle.artifact("count-words", "count").load() == 6
    assert handle.artifact("summarize", "output").load() == "6 long words"


def test_the_example_run_as_a_script_travels_by_value(project: Path, run_as_script) -> None:
    record = run_as_script(project)
    assert record.status == "SUCCEEDED", record.message
