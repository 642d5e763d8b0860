"""`runs resume` of a submitted SageMaker run: RetryPipelineExecution when nothing changed, a selective
execution of the steps to run again when something did, a new execution when neither fits.

Nothing runs in the stand-in: the origin's steps are scripted as SageMaker would report them, and
what proves a finished step is not run twice is what SageMaker is asked to run: the retry (which
runs only failed steps) or the SelectedSteps of the new execution.
"""

from __future__ import annotations

import json

import pytest

import stackhop
from stackhop.cli.main import main
from stackhop.core.runs import RunStatus, StepStatus
from stackhop.errors import StackhopError

from conftest import emulated_stacks

SOURCE = """
from stackhop import ParallelFor, pipeline, step


@step
def prepare(rows: int) -> int:
    return rows


@step
def train(rows: int, lr: float) -> float:
    return rows * lr


@step
def report(score: float) -> str:
    return f"score {score}"


@pipeline
def sweep(rows: int = 100):
    data = prepare(rows=rows)
    with ParallelFor([0.1, 0.2]) as lr:
        train(rows=data.output, lr=lr)
    report(score=data.output)
"""


@pytest.fixture
def sweep(project, write_pipeline, write_config, aws):
    write_config(emulated_stacks("resume", default="sm"))
    return write_pipeline(SOURCE, name="sweep_pipeline").sweep


def sm_names(handle) -> dict[str, str]:
    """stackhop's instance key -> SageMaker's step name, as the run recorded them."""
    return {key: name for name, key in handle.ref.data["steps"].items()}


def failed_on_sagemaker(handle, aws) -> None:
    """The origin as SageMaker reports it: prepare, train[0] and report succeeded, train[1] failed."""
    names = sm_names(handle)
    arn = handle.ref.data["execution_arn"]
    aws.set_steps(arn, [{"StepName": names["prepare"], "StepStatus": "Succeeded"},
                        {"StepName": names["train[0]"], "StepStatus": "Succeeded"},
                        {"StepName": names["train[1]"], "StepStatus": "Failed", "FailureReason": "OOM"},
                        {"StepName": names["report"], "StepStatus": "Succeeded"}])
    aws.set_execution(arn, "Failed", "step train-1 failed")
    assert handle.status is RunStatus.FAILED


def ops(aws) -> list[str]:
    return [op for service, op in aws.requests if service == "sagemaker"]


def test_an_unchanged_failed_execution_is_retried_in_place(sweep, aws) -> None:
    origin = stackhop.run(sweep, wait=False, progress=False)
    failed_on_sagemaker(origin, aws)
    names = sm_names(origin)

    resumed = origin.resume(wait=False, progress=False)

    assert "RetryPipelineExecution" in ops(aws) and ops(aws).count("StartPipelineExecution") == 1
    assert resumed.ref.data["execution_arn"] == origin.ref.data["execution_arn"], "a retry is the same execution"
    assert resumed.ref.data["mechanism"] == "retry"
    assert resumed.status is RunStatus.RUNNING
    arn = origin.ref.data["execution_arn"]
    aws.set_steps(arn, [{"StepName": names["prepare"], "StepStatus": "Succeeded"},
                        {"StepName": names["train[0]"], "StepStatus": "Succeeded"},
                        {"StepName": names["report"], "StepStatus": "Succeeded"},
                        {"StepName": names["train[1]"], "StepStatus": "Succeeded", "AttemptCount": 2}])
    aws.set_execution(arn, "Succeeded")
    steps = resumed.steps()
    assert resumed.status is RunStatus.SUCCEEDED
    assert {k: s.status for k, s in steps.items()} == {
        "prepare": StepStatus.CACHED, "train[0]": StepStatus.CACHED, "train[1]": StepStatus.SUCCEEDED,
        "report": StepStatus.CACHED}
    assert steps["train[1]"].cache == {"result": "miss", "changed": [f"it failed in run {origin.run_id}"]}
    assert resumed.store.get(resumed.run_id).origin_run_id == origin.run_id


def test_a_changed_parameter_selects_the_steps_that_read_it(sweep, aws) -> None:
    origin = stackhop.run(sweep, wait=False, progress=False)
    failed_on_sagemaker(origin, aws)

    resumed = origin.resume(parameters={"rows": 50}, wait=False, progress=False)

    assert resumed.ref.data["mechanism"] == "rerun", "every step reads the parameter (SageMaker passes all of them)"
    assert "every step runs again" in resumed.ref.data["note"]
    assert "RetryPipelineExecution" not in ops(aws)


def test_from_a_step_runs_a_selective_execution_of_it_and_what_reads_it(sweep, aws) -> None:
    origin = stackhop.run(sweep, wait=False, progress=False)
    failed_on_sagemaker(origin, aws)
    names = sm_names(origin)

    resumed = origin.resume(from_step="report", wait=False, progress=False)

    assert resumed.ref.data["mechanism"] == "selective", (resumed.ref.data["again"], resumed.ref.data["note"])
    sm = aws.client("sagemaker")
    config = sm.describe_pipeline_execution(PipelineExecutionArn=resumed.ref.data["execution_arn"])[
        "SelectiveExecutionConfig"]
    assert config["SourcePipelineExecutionArn"] == origin.ref.data["execution_arn"]
    assert sorted(s["StepName"] for s in config["SelectedSteps"]) == sorted([names["train[1]"], names["report"]]), \
        "the failed iteration and the step resumed from; prepare and train[0] are the origin's"
    aws.set_steps(resumed.ref.data["execution_arn"], [{"StepName": names["train[1]"], "StepStatus": "Succeeded"},
                                                      {"StepName": names["report"], "StepStatus": "Succeeded"}])
    aws.set_execution(resumed.ref.data["execution_arn"], "Succeeded")
    steps = resumed.steps()
    assert resumed.status is RunStatus.SUCCEEDED
    assert (steps["prepare"].status, steps["prepare"].native) == (StepStatus.CACHED, "resumed")
    assert steps["report"].cache["changed"] == ["resumed from report"]
    definition = sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=resumed.ref.data["execution_arn"])
    assert '"Enabled": false' in definition["PipelineDefinition"].replace('"Enabled":false', '"Enabled": false'), \
        "the step resumed from has SageMaker's cache off, so it really runs"


def test_the_stand_in_refuses_a_selection_of_unknown_steps_or_with_a_failed_input(sweep, aws) -> None:
    origin = stackhop.run(sweep, wait=False, progress=False)
    failed_on_sagemaker(origin, aws)
    names = sm_names(origin)
    sm = aws.client("sagemaker")
    arn = origin.ref.data["execution_arn"]
    from botocore.exceptions import ClientError

    def start(*steps: str) -> str:
        with pytest.raises(ClientError) as caught:
            sm.start_pipeline_execution(PipelineName="sweep", SelectiveExecutionConfig={
                "SourcePipelineExecutionArn": arn, "SelectedSteps": [{"StepName": s} for s in steps]})
        return caught.value.response["Error"]["Message"]

    assert start("nope") == "Selected step(s) nope are not steps of pipeline 'sweep'."
    aws.set_steps(arn, [{"StepName": names["prepare"], "StepStatus": "Failed"}])
    assert start(names["train[0]"]) == (f"Step(s) {names['prepare']} did not succeed in source pipeline execution "
                                        f"{arn}; select them too.")


def test_a_retry_of_an_execution_still_running_is_refused_in_one_sentence(sweep, aws) -> None:
    origin = stackhop.run(sweep, wait=False, progress=False)

    with pytest.raises(StackhopError) as caught:
        origin.resume(wait=False, progress=False)

    assert str(caught.value) == (f"run {origin.run_id} is still executing on SageMaker; wait for it to finish, or "
                                 f"cancel it (stackhop cancel {origin.run_id}), then resume it.")


def test_a_skipped_step_is_left_out_of_the_definition_and_reads_as_skipped(sweep, aws) -> None:
    origin = stackhop.run(sweep, wait=False, progress=False)
    failed_on_sagemaker(origin, aws)
    names = sm_names(origin)

    resumed = origin.resume(skip=["report"], wait=False, progress=False)

    sm = aws.client("sagemaker")
    arn = resumed.ref.data["execution_arn"]
    definition = json.loads(sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)["PipelineDefinition"])
    assert names["report"] not in {s["Name"] for s in definition["Steps"]}
    config = sm.describe_pipeline_execution(PipelineExecutionArn=arn)["SelectiveExecutionConfig"]
    assert [s["StepName"] for s in config["SelectedSteps"]] == [names["train[1]"]], "only the failed iteration runs"
    steps = resumed.steps()
    assert (steps["report"].status, steps["report"].message) == (StepStatus.SKIPPED,
                                                                 "left out of the resumed run (--skip)")
    assert main(["runs", "resume", origin.run_id, "--skip", "evaluate"]) == 2
