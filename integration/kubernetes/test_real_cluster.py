"""The Kubernetes scenarios against a real cluster (see integration/README.md)."""

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
REQUIRED = ("KUBECONFIG", "STACKHOP_IT_IMAGE", "STACKHOP_IT_ARTIFACT_ROOT")
missing = [v for v in REQUIRED if not os.environ.get(v)]
pytestmark = pytest.mark.skipif(
    bool(missing), reason=f"set {', '.join(missing)} to run against a real cluster (see integration/README.md)"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    namespace = os.environ.get("STACKHOP_IT_NAMESPACE", "default")
    (tmp_path / "stackhop.yaml").write_text(yaml.safe_dump({
        "default_stack": "cluster",
        "stacks": {"cluster": {
            "adapter": "kubernetes", "artifact_root": os.environ.get("STACKHOP_IT_ARTIFACT_ROOT", ""),
            "defaults": {"image": os.environ.get("STACKHOP_IT_IMAGE", "")},
            "settings": {"namespace": namespace, "poll_seconds": 1.0, "ttl_seconds_after_finished": 600},
        }},
    }))
    shutil.copy(EXAMPLES / "training_pipeline.py", tmp_path / "training_example.py")
    shutil.copy(EXAMPLES / "container_pipeline.py", tmp_path / "container_example.py")
    return tmp_path


def test_training_example_deploy_taken_and_skipped(project: Path) -> None:
    module = import_file(project / "training_example.py")
    taken = stackhop.run(module.training_pipeline, parameters={"deploy_dir": "/tmp/deployed"})
    assert taken.wait(timeout=900) == RunStatus.SUCCEEDED, taken.state().message
    assert taken.steps()["deploy_model"].status == StepStatus.SUCCEEDED
    skipped = stackhop.run(module.training_pipeline, parameters={"min_accuracy": 0.999})
    assert skipped.wait(timeout=900) == RunStatus.SUCCEEDED
    assert skipped.steps()["deploy_model"].status == StepStatus.SKIPPED


def test_the_plain_image_example_runs_busybox_beside_stackhop(project: Path) -> None:
    module = import_file(project / "container_example.py")
    handle = stackhop.run(module.container_pipeline, parameters={"min_len": 8})
    assert handle.wait(timeout=900) == RunStatus.SUCCEEDED, handle.state().message
    assert handle.steps()["count-words"].status == StepStatus.SUCCEEDED
    assert handle.artifact("count-words", "count").load() == 6
    assert handle.artifact("summarize", "output").load() == "6 long words"


def test_the_seed_containerop_echoes_hello_kfp_in_busybox(project: Path) -> None:
    (project / "hello.py").write_text(
        "from stackhop import ContainerSpec, container_component, pipeline\n\n@container_component\ndef echo():\n"
        "    return ContainerSpec(image=\"library/busybox:latest\", command=[\"sh\", \"-c\"], args=[\"echo 'Hello KFP!'\"])\n\n"
        "@pipeline\ndef hello():\n    echo()\n"
    )
    handle = stackhop.run(import_file(project / "hello.py").hello)
    assert handle.wait(timeout=900) == RunStatus.SUCCEEDED, handle.state().message
    assert "Hello KFP!" in handle.logs("echo")


def test_cancel_stops_a_running_step(project: Path) -> None:
    (project / "slow.py").write_text(
        "import time\nfrom stackhop import step, pipeline\n\n@step\ndef slow() -> None:\n    time.sleep(600)\n\n"
        "@pipeline\ndef slow_pipe():\n    slow().set_caching(False)\n"
    )
    handle = stackhop.run(import_file(project / "slow.py").slow_pipe, wait=False)
    import time

    deadline = time.time() + 300
    while handle.steps().get("slow") is None or handle.steps()["slow"].status != StepStatus.RUNNING:
        assert time.time() < deadline, "the step never started"
        time.sleep(2)
    handle.cancel()
    assert handle.wait(timeout=300) == RunStatus.CANCELLED


def test_the_example_run_as_a_script_travels_by_value(project: Path, run_as_script) -> None:
    record = run_as_script(project)
    assert record.status == "SUCCEEDED", record.message
