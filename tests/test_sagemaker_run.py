"""SageMaker submit, status, logs and cancel: boto3 over real HTTP against moto's server plus our stand-in.

Nothing runs inside moto: executions and steps move only when a test scripts them
(`set_execution`, `set_steps`), exactly as the stand-in documents.
"""

from __future__ import annotations

import json
import shutil

import pytest

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.core.plugins import adapter_class

from conftest import EXAMPLES, GATED_FAIL

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


@pytest.fixture
def training(project, write_pipeline, write_config, aws):
    write_config(f"""
        default_stack: sm
        stacks:
          sm:
            adapter: sagemaker
            artifact_root: s3://ml-artifacts/stackhop
            defaults: {{image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0"}}
            settings: {{region: us-east-1, role_arn: "{ROLE}", tags: {{team: ml}}, pipeline_name_prefix: "dev-"}}
    """)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    return write_pipeline((project / "training_example.py").read_text(), name="training_example").training_pipeline


def plain_stack(write_config) -> None:
    write_config(f"""
        stacks:
          sm:
            adapter: sagemaker
            artifact_root: s3://ml-artifacts/stackhop
            defaults: {{image: "img:1"}}
            settings: {{role_arn: "{ROLE}"}}
    """)


def operations(aws) -> list[str]:
    return [op for service, op in aws.requests if service == "sagemaker"]


def test_submit_creates_the_pipeline_and_starts_an_execution_with_string_parameters(training, aws) -> None:
    handle = stackhop.run(training, parameters={"min_accuracy": 0.9}, wait=False)
    sm = aws.client("sagemaker")
    pipeline = sm.describe_pipeline(PipelineName="dev-training-pipeline")
    definition = json.loads(pipeline["PipelineDefinition"])
    assert {s["Name"] for s in definition["Steps"]} >= {"load_data", "train_model", "Check-condition-1"}
    assert pipeline["RoleArn"] == ROLE
    execution = sm.describe_pipeline_execution(PipelineExecutionArn=handle.ref.data["execution_arn"])
    assert execution["PipelineExecutionStatus"] == "Executing"
    params = {p["Name"]: p["Value"] for p in sm.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=handle.ref.data["execution_arn"])["PipelineParameters"]}
    assert params["min_accuracy"] == "0.9" and params["n_estimators"] == "100"
    code_uri, digest = params["StackhopCode"].split("#")
    assert code_uri.startswith("s3://ml-artifacts/stackhop/_stackhop/code/") and digest.startswith("sha256:")
    s3 = aws.client("s3")
    assert s3.head_object(Bucket="ml-artifacts", Key=code_uri.removeprefix("s3://ml-artifacts/"))
    spec_key = next(k["Key"] for k in s3.list_objects_v2(Bucket="ml-artifacts", Prefix="stackhop/_stackhop/specs/")["Contents"])
    assert json.loads(s3.get_object(Bucket="ml-artifacts", Key=spec_key)["Body"].read())["pipeline"]["name"] == "training-pipeline"
    assert operations(aws).count("DescribePipeline") >= 1 and "CreatePipeline" in operations(aws)


def test_a_second_run_updates_the_pipeline_instead_of_matching_error_text(training, aws) -> None:
    stackhop.run(training, wait=False)
    stackhop.run(training, parameters={"n_estimators": 10}, wait=False)
    ops = operations(aws)
    assert ops.count("CreatePipeline") == 1 and ops.count("UpdatePipeline") == 1


def test_a_retried_submit_never_starts_a_second_execution(training, aws, project) -> None:
    from stackhop.core.api import run as run_pipeline

    first = run_pipeline(training, run_id="20261122-100000-abcdef", wait=False)
    adapter = first.adapter
    ir = training.build()
    from stackhop.core.adapter import CodeRef, RunRequest
    from stackhop.core.stack import apply_stack

    effective = apply_stack(ir, first.stack)
    again = adapter.submit(adapter.compile(effective), RunRequest(
        "20261122-100000-abcdef", {"min_accuracy": 0.85, "n_estimators": 100, "deploy_endpoint": "production",
                                   "deploy_dir": ".stackhop/deployments"},
        first.stack.artifact_root, CodeRef(), pipeline=json.loads(effective.to_json())))
    assert again.data["execution_arn"] == first.ref.data["execution_arn"]
    assert len(aws.client("sagemaker").list_pipeline_executions(PipelineName="dev-training-pipeline")["PipelineExecutionSummaries"]) == 1


def test_status_maps_sagemaker_words_and_steps_that_never_ran_are_skipped(training, aws) -> None:
    handle = stackhop.run(training, parameters={"min_accuracy": 0.999}, wait=False)
    arn = handle.ref.data["execution_arn"]
    job = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/pipelines-abc-train-model-1"
    aws.set_steps(arn, [
        {"StepName": "load_data", "StepStatus": "Succeeded"},
        {"StepName": "train_model", "StepStatus": "Executing", "Metadata": {"ProcessingJob": {"Arn": job}}},
    ])
    steps = handle.steps()
    assert handle.status == RunStatus.RUNNING
    assert steps["load_data"].status == StepStatus.SUCCEEDED and steps["load_data"].native == "Succeeded"
    assert steps["train_model"].status == StepStatus.RUNNING and steps["train_model"].log_uri == job
    assert steps["deploy_model"].status == StepStatus.PENDING
    aws.set_steps(arn, [
        {"StepName": "load_data", "StepStatus": "Succeeded"},
        {"StepName": "train_model", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": job}}},
        {"StepName": "evaluate_model", "StepStatus": "Succeeded"},
        {"StepName": "Check-condition-1", "StepStatus": "Succeeded"},
    ])
    aws.set_execution(arn, "Succeeded")
    assert handle.wait(timeout=30) == RunStatus.SUCCEEDED
    steps = handle.steps()
    assert steps["deploy_model"].status == StepStatus.SKIPPED and "Check-condition-1" not in steps


def test_a_failed_execution_reports_sagemakers_reason(training, aws) -> None:
    handle = stackhop.run(training, wait=False)
    arn = handle.ref.data["execution_arn"]
    aws.set_steps(arn, [{"StepName": "load_data", "StepStatus": "Failed", "FailureReason": "ClientError: image not found"}])
    aws.set_execution(arn, "Failed", failure_reason="Step failure: One or multiple steps failed.")
    assert handle.wait(timeout=30) == RunStatus.FAILED
    assert handle.steps()["load_data"].message == "ClientError: image not found"
    assert "One or multiple steps failed" in handle.state().message


def test_logs_come_from_the_jobs_cloudwatch_streams(training, aws) -> None:
    handle = stackhop.run(training, wait=False)
    job = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/pipelines-xyz-evaluate-model"
    aws.set_steps(handle.ref.data["execution_arn"], [
        {"StepName": "evaluate_model", "StepStatus": "Succeeded", "Metadata": {"ProcessingJob": {"Arn": job}}}])
    aws.put_log_events("/aws/sagemaker/ProcessingJobs", "pipelines-xyz-evaluate-model/algo-1-123", ["accuracy=0.93", "done"])
    aws.put_log_events("/aws/sagemaker/ProcessingJobs", "another-job/algo-1-9", ["not ours"])
    assert handle.logs("evaluate_model") == "accuracy=0.93\ndone\n"


def test_cancel_stops_the_execution(training, aws) -> None:
    handle = stackhop.run(training, wait=False)
    handle.cancel()
    assert handle.wait(timeout=30) == RunStatus.CANCELLED
    assert "StopPipelineExecution" in operations(aws)


def test_a_definition_over_one_megabyte_is_uploaded_to_s3(project, write_pipeline, write_config, aws) -> None:
    plain_stack(write_config)
    module = write_pipeline("""
        from stackhop import step, pipeline

        @step
        def add_one(x: int) -> int:
            return x + 1

        @pipeline
        def long_chain():
            value = 0
            for _ in range(850):
                value = add_one(x=value).output
    """)
    compiled = stackhop.compile(module.long_chain, "sm")
    assert any("over 1 MB" in n for n in compiled.notes)
    handle = stackhop.run(module.long_chain, "sm", wait=False)
    pipeline = aws.client("sagemaker").describe_pipeline(PipelineName="long-chain")
    assert len(json.loads(pipeline["PipelineDefinition"])["Steps"]) == 850
    keys = [k["Key"] for k in aws.client("s3").list_objects_v2(Bucket="ml-artifacts", Prefix="stackhop/_stackhop/definitions/")["Contents"]]
    assert len(keys) == 1 and handle.ref.data["execution_arn"]
    assert adapter_class("sagemaker", where="test").name == "sagemaker"


def test_the_compiled_definition_runs_locally_with_emulate_deploy_taken_and_skipped(training, aws, project) -> None:
    deployed = project / "deployed"
    taken = stackhop.run(training, parameters={"deploy_dir": str(deployed)}, emulate=True)
    assert taken.status == RunStatus.SUCCEEDED, taken.state().message
    assert {k: v.status.value for k, v in taken.steps().items()} == {
        "load_data": "SUCCEEDED", "train_model": "SUCCEEDED", "evaluate_model": "SUCCEEDED", "deploy_model": "SUCCEEDED"}
    assert (deployed / "production" / "model.pkl").exists()
    model = taken.artifact("train_model", "model")
    assert model.uri.startswith(f"s3://ml-artifacts/stackhop/training-pipeline/{taken.run_id}/train_model/")
    assert "accuracy=" in taken.logs("evaluate_model")
    keys = [k["Key"] for k in aws.client("s3").list_objects_v2(Bucket="ml-artifacts", Prefix=f"stackhop/training-pipeline/{taken.run_id}/evaluate_model/")["Contents"]]
    assert f"stackhop/training-pipeline/{taken.run_id}/evaluate_model/_stackhop/outputs.json" in keys
    assert operations(aws) == [], "emulation never calls the SageMaker API"

    skipped = stackhop.run(training, parameters={"min_accuracy": 0.999, "deploy_dir": str(deployed)}, emulate=True)
    assert skipped.status == RunStatus.SUCCEEDED, skipped.state().message
    steps = skipped.steps()
    assert steps["deploy_model"].status == StepStatus.SKIPPED and steps["deploy_model"].native == "condition_false"
    assert skipped.artifact("evaluate_model", "output").load() == "no"


def test_an_emulated_step_failure_fails_the_run_and_skips_what_follows(project, write_pipeline, write_config, aws) -> None:
    plain_stack(write_config)
    module = write_pipeline("""
        from stackhop import step, pipeline

        @step
        def boom() -> int:
            raise RuntimeError("exploded on purpose")

        @step
        def after(x: int) -> None: ...

        @pipeline
        def failing():
            after(x=boom().output)
    """)
    handle = stackhop.run(module.failing, "sm", emulate=True)
    assert handle.status == RunStatus.FAILED
    assert "exploded on purpose" in handle.steps()["boom"].message
    assert handle.steps()["after"].status == StepStatus.SKIPPED


def test_a_training_step_runs_in_emulation_like_a_processing_step(project, write_pipeline, write_config, aws) -> None:
    write_config(f"""
        stacks:
          sm:
            adapter: sagemaker
            artifact_root: s3://ml-artifacts/stackhop
            defaults: {{image: "img:1"}}
            settings: {{role_arn: "{ROLE}", training_steps: [train_model]}}
    """)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    pipe = write_pipeline((project / "training_example.py").read_text(), name="training_example").training_pipeline
    handle = stackhop.run(pipe, "sm", parameters={"deploy_dir": str(project / "deployed")}, emulate=True)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.steps()["deploy_model"].status == StepStatus.SUCCEEDED
    assert handle.artifact("train_model", "model").uri.endswith("/train_model/model")


def test_an_emulated_fail_step_fails_the_execution_with_its_message(project, write_pipeline, write_config, aws) -> None:
    plain_stack(write_config)
    module = write_pipeline(GATED_FAIL)
    failed = stackhop.run(module.gated, "sm", emulate=True)
    assert failed.status == RunStatus.FAILED
    assert failed.steps()["fail"].message == "accuracy is below the threshold"
    passed = stackhop.run(module.gated, "sm", parameters={"threshold": 0.1}, emulate=True)
    assert passed.status == RunStatus.SUCCEEDED and passed.steps()["fail"].status == StepStatus.SKIPPED
