"""The example GitHub Actions workflow, executed: every `run:` line of every job, in order.

A pull request (review), a merge to main (release, run on dev, promote to staging with a run)
and a manual dispatch (promote to prod with an approver) run against the example's own
`stackhop.yaml`: dev is local, staging is the fake Kubernetes API server with artifacts on
moto's S3, prod is moto's SageMaker. Each job gets an empty run store and release folder, as a
fresh runner would, so what one job hands the next goes through the stacks' artifact stores.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackhop.testing.kubernetes import FakeKubernetes
from stackhop.testing.sagemaker import FakeSageMaker

from conftest import EXAMPLES

WORKFLOW = EXAMPLES / "ci" / "github-actions.yml"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
INSTALL = "pip install 'stackhop[all]'"


def run_job(job: dict[str, Any], project: Path, env: dict[str, str], inputs: dict[str, str]) -> list[str]:
    """Run a job's `run:` steps with bash, as Actions does; return the names of the steps run."""
    outputs: dict[str, dict[str, str]] = {}
    ran = []
    for step in job["steps"]:
        script = step.get("run")
        if script is None:
            continue  # `uses:` steps: checkout and setup-python are this test's own setup
        if script.strip() == INSTALL:
            continue  # stackhop is installed in this venv already
        def expand(m: re.Match[str]) -> str:
            expr = m.group(1).strip()
            if expr.startswith("steps."):
                _, step_id, _, key = expr.split(".")
                return outputs[step_id][key]
            if expr.startswith("inputs."):
                return inputs[expr.split(".", 1)[1]]
            raise AssertionError(f"the test does not know {expr!r}")
        script = re.sub(r"\$\{\{(.*?)\}\}", expand, script)
        output_file = project / ".github-output"
        output_file.write_text("")
        done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=project, capture_output=True,
                              text=True, timeout=600, env={**env, "GITHUB_OUTPUT": str(output_file)})
        assert done.returncode == 0, f"step {step.get('name')!r} failed:\n{done.stdout}\n{done.stderr}"
        if "id" in step:
            outputs[step["id"]] = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
        ran.append(step.get("name", script.splitlines()[0]))
    return ran


def test_the_example_workflow_runs_review_release_and_promotion_to_prod(project: Path, tmp_path: Path) -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert jobs["review"]["if"] == "github.event_name == 'pull_request'"
    assert jobs["release"]["if"] == "github.event_name == 'push'"
    assert jobs["promote-prod"]["if"] == "github.event_name == 'workflow_dispatch'"
    shutil.copy(EXAMPLES / "ci" / "stackhop.yaml", project / "stackhop.yaml")
    (project / "examples").mkdir()
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "examples" / "training_pipeline.py")

    with FakeSageMaker(region="us-east-1") as aws:
        aws.create_bucket("ml-artifacts")
        with FakeKubernetes(version="1.37", time_scale=0.05, pod_env=aws.env()) as kube:
            kube.write_kubeconfig(str(project / "kubeconfig"), namespace="ml")
            base = {k: v for k, v in os.environ.items() if not k.startswith(("STACKHOP_", "GITHUB_"))}
            env = {**base, **aws.env(), "KUBECONFIG": str(project / "kubeconfig"), "POLL_SECONDS": "0.1",
                   "PATH": f"{Path(sys.executable).parent}:{base.get('PATH', '')}",
                   "STACKHOP_CODE_CACHE": str(tmp_path / "code-cache")}
            for key, value in workflow["env"].items():
                env[key] = ROLE if "secrets.SAGEMAKER_ROLE_ARN" in str(value) else str(value)

            def job(name: str, **inputs: str) -> list[str]:
                home = tmp_path / f"runner-{name}"  # a fresh runner per job: empty run store and releases
                return run_job(jobs[name], project, {**env, "STACKHOP_HOME": str(home)}, inputs)

            assert job("review") == ["Compile for staging and prod", "What differs between staging and prod",
                                     "Emulate the prod definition"]
            assert job("release") == ["Release", "Run on dev", "Promote to staging and run there"]
            (release_id,) = [p.stem for p in (tmp_path / "runner-release" / "releases").glob("r-*.json")]
            assert job("promote-prod", release=release_id, approver="release-manager") == ["Promote to prod"]

            sagemaker = aws.client("sagemaker")
            assert sagemaker.describe_pipeline(PipelineName="training-pipeline")["PipelineDefinition"]
            assert len(kube.objects("Job", "ml")) == 4
            prod = yaml.safe_load(json_of(aws, f"prod/_stackhop/promotions/{release_id}/prod.json"))
            staging = yaml.safe_load(json_of(aws, f"staging/_stackhop/promotions/{release_id}/staging.json"))
    assert prod["result"] == staging["result"] == "promoted"
    assert prod["ir_digest"] == staging["ir_digest"]
    assert [g["gate"] for g in prod["gates"]] == ["successful_run", "approval"]
    assert prod["gates"][1]["value"] == "release-manager"


def json_of(aws: FakeSageMaker, key: str) -> str:
    body = aws.client("s3").get_object(Bucket="ml-artifacts", Key=key)["Body"].read()
    return body.decode()
