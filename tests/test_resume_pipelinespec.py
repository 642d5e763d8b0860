"""`runs resume` of runs submitted to Kubeflow Pipelines and Vertex AI.

KFP continues a failed run in place (`runs/{id}:retry`) when nothing changed; otherwise, and on
Vertex AI (which has no retry), the resumed run is a new one with caching on and the steps to run
again with caching off. The stand-ins run nothing: the origin's tasks are scripted as the service
reports them, and what proves a finished step is not run twice is what the service is asked to do.
"""

from __future__ import annotations

import shutil

import pytest

import stackhop
from stackhop.core.runs import RunStatus, StepStatus

from conftest import EXAMPLES, emulated_stacks


@pytest.fixture
def training(project, write_pipeline, write_config, kubeflow, vertex):
    write_config(emulated_stacks("resume", vertex=vertex, kubeflow=kubeflow, default="kfp"))
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    return write_pipeline((project / "training_example.py").read_text(), name="training_example").training_pipeline


def failed_kfp_run(training, kubeflow):
    origin = stackhop.run(training, wait=False, progress=False)
    run_id = origin.ref.data["run_id"]
    for task in ("load-data", "train-model"):
        kubeflow.set_task(run_id, task, "SUCCEEDED")
    kubeflow.set_task(run_id, "evaluate-model", "FAILED", error_message="ValueError: bad data")
    kubeflow.set_state(run_id, "FAILED")
    assert origin.status is RunStatus.FAILED
    return origin


def caching(spec: dict) -> dict[str, bool]:
    return {name: task.get("cachingOptions", {}).get("enableCache", False)
            for name, task in spec["root"]["dag"]["tasks"].items() if not name.startswith("condition")}


def test_an_unchanged_failed_kfp_run_is_retried_in_place(training, kubeflow) -> None:
    origin = failed_kfp_run(training, kubeflow)

    resumed = origin.resume(wait=False, progress=False)

    run_id = origin.ref.data["run_id"]
    assert ("POST", f"/apis/v2beta1/runs/{run_id}:retry") in [(m, p) for m, p, _ in kubeflow.requests]
    assert len(kubeflow.runs) == 1, "no second run"
    assert resumed.ref.data["run_id"] == run_id and resumed.ref.data["mechanism"] == "retry"
    assert resumed.status is RunStatus.RUNNING
    kubeflow.set_task(run_id, "evaluate-model", "SUCCEEDED")
    kubeflow.set_task(run_id, "deploy-model", "SKIPPED")
    kubeflow.set_state(run_id, "SUCCEEDED")
    steps = resumed.steps()
    assert resumed.status is RunStatus.SUCCEEDED
    assert (steps["load_data"].status, steps["load_data"].native) == (StepStatus.CACHED, "resumed")
    assert steps["train_model"].status is StepStatus.CACHED
    assert steps["evaluate_model"].status is StepStatus.SUCCEEDED
    assert steps["evaluate_model"].cache == {"result": "miss", "changed": [f"it failed in run {origin.run_id}"]}
    assert resumed.store.get(resumed.run_id).origin_run_id == origin.run_id


def test_from_a_step_on_kfp_is_a_new_run_with_that_step_and_downstream_uncached(training, kubeflow) -> None:
    origin = failed_kfp_run(training, kubeflow)

    resumed = origin.resume(from_step="train_model", wait=False, progress=False)

    assert resumed.ref.data["mechanism"] == "resubmit" and resumed.ref.data["run_id"] != origin.ref.data["run_id"]
    assert not any(p.endswith(":retry") for _, p, _ in kubeflow.requests)
    spec = kubeflow.runs[resumed.ref.data["run_id"]]["pipeline_spec"]
    assert caching(spec) == {"load-data": True, "train-model": False, "evaluate-model": False}
    assert resumed.steps()["train_model"].cache == {"result": "miss", "changed": ["resumed from train_model"]}


def test_the_kfp_stand_in_retries_only_a_failed_or_cancelled_run(training, kubeflow) -> None:
    import kfp_server_api

    origin = stackhop.run(training, wait=False, progress=False)
    client = origin.adapter.client()

    with pytest.raises(kfp_server_api.ApiException) as caught:
        client._run_api.run_service_retry_run(run_id=origin.ref.data["run_id"])

    assert caught.value.status == 400
    assert "Workflow cannot be retried with status PENDING" in caught.value.body


def test_a_failed_vertex_job_is_resubmitted_with_caching_and_cache_hits_read_as_cached(training, vertex) -> None:
    origin = stackhop.run(training, "vertex", wait=False, progress=False)
    (job, _), = vertex.jobs.items()
    for task in ("load-data", "train-model"):
        vertex.set_task(job, task, "SUCCEEDED")
    vertex.set_task(job, "evaluate-model", "FAILED", error_message="ValueError: bad data")
    vertex.set_state(job, "PIPELINE_STATE_FAILED")
    assert origin.status is RunStatus.FAILED

    resumed = origin.resume(from_step="evaluate_model", wait=False, progress=False)

    assert resumed.ref.data["mechanism"] == "resubmit" and len(vertex.jobs) == 2
    new_job = resumed.ref.data["job_id"]
    assert caching(vertex.jobs[new_job]["pipelineSpec"]) == {"load-data": True, "train-model": True,
                                                             "evaluate-model": False}
    vertex.set_task(new_job, "load-data", "SKIPPED")
    vertex.set_task(new_job, "train-model", "SKIPPED")
    steps = resumed.steps()
    assert steps["load_data"].status is StepStatus.CACHED, "Vertex reports a cache hit as SKIPPED"
    assert steps["evaluate_model"].cache == {"result": "miss", "changed": ["resumed from evaluate_model"]}


def test_a_skipped_step_is_left_out_of_the_vertex_job_and_reads_as_skipped(training, vertex) -> None:
    origin = stackhop.run(training, "vertex", wait=False, progress=False)
    (job, _), = vertex.jobs.items()
    vertex.set_state(job, "PIPELINE_STATE_FAILED")

    resumed = origin.resume(skip=["deploy_model"], wait=False, progress=False)

    spec = vertex.jobs[resumed.ref.data["job_id"]]["pipelineSpec"]
    tasks = {n for c in [spec["root"], *spec["components"].values()] if "dag" in c for n in c["dag"]["tasks"]}
    assert "deploy-model" not in tasks and "evaluate-model" in tasks
    assert resumed.steps()["deploy_model"].status is StepStatus.SKIPPED


def test_the_cli_says_how_the_backend_resumes(training, kubeflow, capsys) -> None:
    from stackhop.cli.main import main

    origin = failed_kfp_run(training, kubeflow)
    capsys.readouterr()

    assert main(["runs", "resume", origin.run_id, "--detach"]) == 0

    err = capsys.readouterr().err
    assert f"kfp resumes by retry: Kubeflow Pipelines retries the failed tasks of run {origin.run_id} in place" in err

