"""Kubeflow Pipelines runs: the real kfp.Client over HTTP to the loopback API stand-in, artifacts on Cloud Storage.

`FakeKFP` checks each request as ml-pipeline does (the spec and the kfp-kubernetes platform spec
parse strictly) and only moves when the test scripts it. The KFP API reports no output URIs,
so step logs and outputs are read from the meta folder each entrypoint mirrors under the run.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

import stackhop
from stackhop.adapters.pipelinespec.compiler import mirror_uri
from stackhop.core.adapter import CodeRef, Compiled, RunRequest
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.runs import RunStatus, StepStatus
from stackhop.errors import ConfigError, StackhopError
from stackhop.testing.kfp import FakeKFP

from conftest import EXAMPLES

ROOT = "gs://ml-artifacts/kfp"


@pytest.fixture
def server(kubeflow):
    return kubeflow


@pytest.fixture
def training(project, write_pipeline, write_config, server):
    write_config(f"""
        default_stack: kubeflow
        stacks:
          kubeflow:
            adapter: kfp
            artifact_root: {ROOT}
            defaults: {{image: "registry.example.com/ml/train:1.0"}}
            settings: {{host: "{server.host}", experiment: churn, service_account: pipeline-runner,
                        image_pull_secrets: [regcred]}}
            overrides:
              steps:
                train_model: {{node_selector: {{pool: gpu}}}}
    """)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    return write_pipeline((project / "training_example.py").read_text(), name="training_example").training_pipeline


def only_run(server: FakeKFP) -> tuple[str, dict]:
    (run_id, run), = server.runs.items()
    return run_id, run


def test_submit_files_one_run_under_the_experiment_with_the_platform_spec(training, server) -> None:
    handle = stackhop.run(training, parameters={"min_accuracy": 0.9}, wait=False)

    run_id, run = only_run(server)
    (experiment,) = [e for e in server.experiments.values() if e["display_name"] == "churn"]
    assert run["experiment_id"] == experiment["experiment_id"]
    assert run["display_name"] == handle.run_id
    assert run["service_account"] == "pipeline-runner"
    assert run["runtime_config"]["pipeline_root"] == f"{ROOT}/training-pipeline/{handle.run_id}", \
        "each run has its own root: its steps find their run there, and no task input carries it"
    assert run["runtime_config"]["parameters"]["min_accuracy"] == 0.9
    assert run["runtime_config"]["parameters"]["stackhop_code"].startswith(f"{ROOT}/_stackhop/code/")
    platform = run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert platform["exec-train-model"]["nodeSelector"] == {"labels": {"pool": "gpu"}}
    assert [s["secretName"] for s in platform["exec-load-data"]["imagePullSecret"]] == ["regcred"]
    assert handle.ref.data["run_id"] == run_id
    assert handle.ref.data["dashboard"] == f"{server.host}/#/runs/details/{run_id}"
    assert handle.status is RunStatus.PENDING


def test_a_retried_submit_finds_the_run_by_name(training, server) -> None:
    handle = stackhop.run(training, wait=False)
    run_id, _ = only_run(server)
    again = RunRequest(handle.run_id, {}, ROOT, CodeRef(), pipeline=json.loads(training.build().to_json()))

    ref = handle.adapter.submit(stackhop.compile(training), again)

    assert ref.data["run_id"] == run_id
    assert list(server.runs) == [run_id]


def test_task_details_and_mirrored_meta_become_step_states_logs_and_artifacts(training, server) -> None:
    handle = stackhop.run(training, wait=False)
    run_id, _ = only_run(server)
    meta = mirror_uri(ROOT, "training-pipeline", handle.run_id, "load_data", "task-7f3a")
    store = ArtifactStore.for_uri(meta)
    data_uri = f"{ROOT}/training-pipeline/{run_id}/load-data/data"
    store.write_json(f"{meta}/outputs.json", {"scalars": {"output": 1000}, "artifacts": {"data": {
        "uri": data_uri, "type": "Dataset", "digest": "d", "metadata": {}, "materializer": None}}})
    store.write_bytes(f"{meta}/log.txt", b"wrote 1000 rows\n")
    server.set_state(run_id, "RUNNING")
    server.set_task(run_id, "load-data", "SUCCEEDED")
    server.set_task(run_id, "train-model", "RUNNING")

    steps = handle.steps()

    assert handle.status is RunStatus.RUNNING
    assert steps["load_data"].status is StepStatus.SUCCEEDED
    assert steps["train_model"].status is StepStatus.RUNNING
    assert steps["evaluate_model"].status is StepStatus.PENDING
    assert handle.logs("load_data") == "wrote 1000 rows\n"
    assert handle.artifact("load_data", "data").uri == data_uri
    assert handle.artifact("load_data", "output").value == 1000
    assert handle.ref.data["dashboard"] in handle.logs("train_model")


def test_a_failed_run_names_the_failing_step_even_without_a_run_error(training, server) -> None:
    handle = stackhop.run(training, wait=False)
    run_id, _ = only_run(server)
    for task in ("load-data", "train-model"):
        server.set_task(run_id, task, "SUCCEEDED")
    server.set_task(run_id, "evaluate-model", "FAILED", error_message="ValueError: bad data")
    server.set_task(run_id, "deploy-model", "SKIPPED")
    server.set_state(run_id, "FAILED")

    assert handle.wait() is RunStatus.FAILED
    state = handle.state()
    assert state.message == "step evaluate_model failed: ValueError: bad data"
    assert state.steps["deploy_model"].status is StepStatus.SKIPPED


def test_cancel_terminates_the_run(training, server) -> None:
    handle = stackhop.run(training, wait=False)
    run_id, _ = only_run(server)
    server.set_state(run_id, "RUNNING")

    handle.cancel()

    assert ("POST", f"/apis/v2beta1/runs/{run_id}:terminate", None) in server.requests
    assert handle.refresh().status is RunStatus.CANCELLING
    assert handle.refresh().status is RunStatus.CANCELLED


def test_a_refused_run_is_one_sentence_naming_the_pipeline(training, server) -> None:
    compiled = stackhop.compile(training)
    spec = json.loads(compiled.files["pipeline.yaml"].split(b"\n---\n")[0])
    spec["schemaVersion"] = "2.0.0"  # every KFP 2.x server refuses it
    old_schema = Compiled("kfp", {**compiled.files, "pipeline.yaml": json.dumps(spec).encode()})
    adapter = stackhop.run(training, wait=False).adapter
    request = RunRequest("other-run", {}, ROOT, CodeRef(), pipeline=json.loads(training.build().to_json()))

    with pytest.raises(StackhopError, match=rf"^Kubeflow Pipelines at {server.host} refused pipeline 'training-pipeline': "
                                            r"400 .*schema version 2\.1\.0"):
        adapter.submit(old_schema, request)


def test_a_token_env_that_is_not_set_is_a_config_error(training, write_config, project, server, monkeypatch) -> None:
    config = (project / "stackhop.yaml").read_text().replace("experiment: churn,", "experiment: churn, token_env: KFP_TOKEN,")
    (project / "stackhop.yaml").write_text(config)
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"settings.token_env names \$KFP_TOKEN, which is not set"):
        stackhop.run(training, wait=False)


def test_the_cli_reports_the_run_id_and_the_dashboard_url(training, server, project, capsys) -> None:
    from stackhop.cli.main import main

    assert main(["run", "training_example.py", "--detach"]) == 0
    out, err = capsys.readouterr()
    run_id, _ = only_run(server)
    assert out.strip() == server.runs[run_id]["display_name"]
    assert f"dashboard: {server.host}/#/runs/details/{run_id}" in err


def test_an_unreachable_api_is_one_sentence(training, project, monkeypatch) -> None:
    config = (project / "stackhop.yaml").read_text()
    (project / "stackhop.yaml").write_text(re.sub(r'host: "[^"]+"', 'host: "http://127.0.0.1:1"', config))
    with pytest.raises(StackhopError, match=r"^stack 'kubeflow': Kubeflow Pipelines at http://127.0.0.1:1 cannot be "
                                            r"reached \(MaxRetryError\); check settings.host"):
        stackhop.run(training, wait=False)
