"""Vertex AI runs: the real aiplatform client over REST to the loopback stand-in, artifacts on Cloud Storage.

`FakeVertex` checks each request as the service does and only moves when the test scripts it;
the step logs and outputs the adapter reads live in gcp-storage-emulator, reached by gcsfs.
"""

from __future__ import annotations

import json
import shutil

import pytest

import stackhop
from stackhop.core.adapter import CodeRef, RunRequest
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.runs import RunStatus, StepStatus
from stackhop.errors import StackhopError
from stackhop.testing.vertex import FakeVertex

from conftest import EXAMPLES

PROJECT, NUMBER = "test-project", "123456789012"
SA = "pipelines@test-project.iam.gserviceaccount.com"
ROOT = "gs://ml-artifacts/vertex"


@pytest.fixture
def training(project, write_pipeline, write_config, vertex):
    write_config(f"""
        default_stack: vertex
        stacks:
          vertex:
            adapter: vertex
            artifact_root: {ROOT}
            defaults: {{image: "europe-docker.pkg.dev/p/ml/train:1.0"}}
            settings:
              project: {PROJECT}
              location: europe-west4
              service_account: {SA}
              network: projects/{NUMBER}/global/networks/ml-vpc
              labels: {{team: ML}}
              api_endpoint: {vertex.endpoint}
              anonymous: true
    """)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    return write_pipeline((project / "training_example.py").read_text(), name="training_example").training_pipeline


def only_job(vertex: FakeVertex) -> tuple[str, dict]:
    (job_id, job), = vertex.jobs.items()
    return job_id, job


def finish_step(vertex: FakeVertex, job: str, run_id: str, task: str, step: str, record: dict, log: str,
                state: str = "SUCCEEDED") -> str:
    """What a finished step leaves: its meta folder on Cloud Storage, and a task detail naming it."""
    meta = f"{ROOT}/training-pipeline/{run_id}/{NUMBER}/{job}/{task}_1/stackhop_meta"  # under the run's own root
    store = ArtifactStore.for_uri(meta)
    store.write_json(f"{meta}/outputs.json", record)
    store.write_bytes(f"{meta}/log.txt", log.encode())
    outputs = {"stackhop_meta": [meta], **{k: [v["uri"]] for k, v in record.get("artifacts", {}).items()}}
    vertex.set_task(job, task, state, outputs=outputs)
    return meta


def test_submit_creates_one_pipeline_job_carrying_the_stack_settings(training, vertex) -> None:
    handle = stackhop.run(training, parameters={"min_accuracy": 0.9}, wait=False)

    job_id, job = only_job(vertex)
    assert job_id == f"training-pipeline-{handle.run_id}"
    assert job["name"] == f"projects/{NUMBER}/locations/europe-west4/pipelineJobs/{job_id}"
    assert job["displayName"] == handle.run_id
    assert job["serviceAccount"] == SA
    assert job["network"] == f"projects/{NUMBER}/global/networks/ml-vpc"
    assert job["labels"] == {"team": "ml", "stackhop-pipeline": "training-pipeline", "stackhop-run": handle.run_id}
    runtime = job["runtimeConfig"]
    assert runtime["gcsOutputDirectory"] == f"{ROOT}/training-pipeline/{handle.run_id}", "each run has its own root"
    assert runtime["parameterValues"]["min_accuracy"] == 0.9
    code, _, digest = runtime["parameterValues"]["stackhop_code"].partition("#")
    assert code.startswith(f"{ROOT}/_stackhop/code/") and digest.startswith("sha256:")
    assert ArtifactStore.for_uri(code).exists(code)
    compiled = json.loads(stackhop.compile(training).files["pipeline.json"])
    assert job["pipelineSpec"]["deploymentSpec"] == compiled["deploymentSpec"]
    spec_uri = compiled["deploymentSpec"]["executors"]["exec-train-model"]["container"]["args"][1]
    assert ArtifactStore.for_uri(spec_uri).read_json(spec_uri)["pipeline"]["name"] == "training-pipeline"
    assert handle.status is RunStatus.PENDING
    assert handle.ref.data["dashboard"].endswith(f"/pipelines/runs/{job_id}?project={PROJECT}")


def test_a_retried_submit_finds_the_job_instead_of_starting_a_second(training, vertex) -> None:
    handle = stackhop.run(training, wait=False)
    job_id, _ = only_job(vertex)
    compiled = stackhop.compile(training)
    again = RunRequest(handle.run_id, {}, ROOT, CodeRef(), pipeline=json.loads(
        training.build().to_json()))

    ref = handle.adapter.submit(compiled, again)

    assert list(vertex.jobs) == [job_id]
    assert ref.data["job_id"] == job_id
    creates = [p for m, p, _ in vertex.requests if m == "POST" and p.endswith("/pipelineJobs")]
    assert len(creates) == 2


def test_task_details_become_step_states_logs_and_artifacts(training, vertex) -> None:
    handle = stackhop.run(training, wait=False)
    job, _ = only_job(vertex)
    vertex.set_state(job, "PIPELINE_STATE_RUNNING")
    data_uri = f"{ROOT}/training-pipeline/{handle.run_id}/{NUMBER}/{job}/load-data_1/data"
    finish_step(vertex, job, handle.run_id, "load-data", "load_data",
                {"scalars": {"output": 1000}, "artifacts": {"data": {"uri": data_uri, "type": "Dataset", "digest": "d",
                                                                      "metadata": {"rows": 1000}, "materializer": None}}},
                "wrote 1000 rows\n")
    vertex.set_task(job, "train-model", "RUNNING")

    steps = handle.steps()

    assert handle.status is RunStatus.RUNNING
    assert steps["load_data"].status is StepStatus.SUCCEEDED and steps["load_data"].native == "SUCCEEDED"
    assert steps["train_model"].status is StepStatus.RUNNING
    assert steps["deploy_model"].status is StepStatus.PENDING
    assert handle.logs("load_data") == "wrote 1000 rows\n"
    assert handle.artifact("load_data", "data").uri == data_uri
    assert handle.artifact("load_data", "data").metadata == {"rows": 1000}
    assert handle.artifact("load_data", "output").value == 1000
    assert "gcloud logging read" in handle.logs("train_model")


def test_a_failed_job_reports_the_failing_step_and_skips_the_untriggered_one(training, vertex) -> None:
    handle = stackhop.run(training, wait=False)
    job, _ = only_job(vertex)
    for task in ("load-data", "train-model"):
        vertex.set_task(job, task, "SUCCEEDED")
    vertex.set_task(job, "evaluate-model", "FAILED", error_message="step 'evaluate_model' failed: ValueError: bad")
    vertex.set_task(job, "deploy-model", "NOT_TRIGGERED")
    vertex.set_state(job, "PIPELINE_STATE_FAILED", error_message="The DAG failed because some tasks failed.")

    assert handle.wait() is RunStatus.FAILED
    state = handle.state()

    assert state.status is RunStatus.FAILED
    assert "some tasks failed" in state.message
    assert state.steps["evaluate_model"].status is StepStatus.FAILED
    assert "ValueError: bad" in state.steps["evaluate_model"].message
    assert state.steps["deploy_model"].status is StepStatus.SKIPPED
    assert state.steps["deploy_model"].native == "NOT_TRIGGERED"
    assert stackhop.get_run(handle.run_id).status is RunStatus.FAILED


def test_cancel_asks_vertex_to_cancel_and_the_run_ends_cancelled(training, vertex) -> None:
    handle = stackhop.run(training, wait=False)
    job, _ = only_job(vertex)
    vertex.set_state(job, "PIPELINE_STATE_RUNNING")

    handle.cancel()

    assert ("POST", f"/v1/projects/{PROJECT}/locations/europe-west4/pipelineJobs/{job}:cancel", {}) in [
        (m, p.replace(NUMBER, PROJECT), b or {}) for m, p, b in vertex.requests]
    assert handle.refresh().status is RunStatus.CANCELLING
    assert handle.refresh().status is RunStatus.CANCELLED


def test_a_refused_request_is_one_sentence_naming_the_pipeline(project, training, vertex) -> None:
    config = (project / "stackhop.yaml").read_text().replace("labels: {team: ML}", "labels: {Bad Key: v}")
    (project / "stackhop.yaml").write_text(config)

    with pytest.raises(StackhopError, match=r"^Vertex AI refused pipeline 'training-pipeline': Label key 'Bad Key' must start"):
        stackhop.run(training, wait=False)
    assert vertex.jobs == {}


def test_missing_credentials_are_one_sentence_not_a_traceback(project, write_pipeline, write_config, gcs,
                                                              monkeypatch) -> None:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    def no_credentials(*args, **kwargs):
        raise DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    write_config(f"""
        stacks:
          gcp: {{adapter: vertex, artifact_root: "{ROOT}", defaults: {{image: "i:1"}}, settings: {{project: p}}}}
    """)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    module = write_pipeline((project / "training_example.py").read_text(), name="training_example")
    with pytest.raises(stackhop.StackhopError, match=r"^stack 'gcp': no Google Cloud credentials were found; run "
                                                     r"`gcloud auth application-default login`"):
        stackhop.run(module.training_pipeline, "gcp", wait=False)


def test_a_bucket_that_does_not_exist_is_one_sentence(gcs) -> None:
    from stackhop.errors import ArtifactError

    with pytest.raises(ArtifactError, match=r"^cannot use gs://no-such-bucket/x/y.json: bucket 'no-such-bucket' does not "
                                            r"exist; create it, or point the stack's artifact_root at one that does\.$"):
        ArtifactStore("gs://no-such-bucket").write_json("gs://no-such-bucket/x/y.json", {})
