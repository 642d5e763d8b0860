"""The SageMaker stand-in, proven with boto3 and s3fs over real HTTP against moto's server.

Every call here goes through botocore's serialization (or aiobotocore's, for s3fs) to the socket
`FakeSageMaker` serves; only the service's own moves (an execution failing, a step finishing, a
log line) are scripted through its helpers. What passes here is what the SageMaker adapter can
rely on the stand-in to do, and to refuse.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import s3fs
from botocore.config import Config
from botocore.exceptions import ClientError

from stackhop.testing.sagemaker import FakeSageMaker

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
TOKEN_A = "a" * 32
TOKEN_B = "b" * 32


def definition(*steps: dict[str, Any], parameters: tuple[str, ...] = ("min_accuracy",)) -> str:
    return json.dumps(
        {
            "Version": "2020-12-01",
            "Parameters": [{"Name": p, "Type": "String", "DefaultValue": "x"} for p in parameters],
            "Steps": list(steps),
        }
    )


def step(name: str, **extra: Any) -> dict[str, Any]:
    return {"Name": name, "Type": "Processing", "Arguments": {}, **extra}


def condition(name: str, if_steps: list[dict[str, Any]], else_steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "Condition",
        "Arguments": {"Conditions": [], "IfSteps": if_steps, "ElseSteps": else_steps},
        **extra,
    }


#: prep -> train (reads prep's output) -> check (condition) -> deploy | too_low
PIPELINE = definition(
    step("prep"),
    step("train", Arguments={"In": {"Get": "Steps.prep.ProcessingOutputConfig.Outputs['data'].S3Output.S3Uri"}}),
    condition("check", [step("deploy")], [{"Name": "too_low", "Type": "Fail", "Arguments": {}}], DependsOn=["train"]),
)


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture
def aws() -> Iterator[FakeSageMaker]:
    with FakeSageMaker(region="us-east-1") as fake:
        yield fake


@pytest.fixture
def sm(aws: FakeSageMaker) -> Any:
    return aws.client("sagemaker")


@pytest.fixture
def pipeline(sm: Any) -> str:
    return str(sm.create_pipeline(PipelineName="train-pipe", PipelineDefinition=PIPELINE, RoleArn=ROLE)["PipelineArn"])


def start(sm: Any, token: str = TOKEN_A, **kwargs: Any) -> str:
    return str(sm.start_pipeline_execution(PipelineName="train-pipe", ClientRequestToken=token, **kwargs)["PipelineExecutionArn"])


# -- the server --------------------------------------------------------------------------------


def test_serves_loopback_and_records_calls(aws: FakeSageMaker) -> None:
    assert aws.endpoint_url.startswith("http://127.0.0.1:")
    s3 = aws.client("s3")
    aws.create_bucket("artifacts")  # set-up through the backend: not a request
    s3.put_object(Bucket="artifacts", Key="runs/1/model.bin", Body=b"\x00weights")
    assert s3.get_object(Bucket="artifacts", Key="runs/1/model.bin")["Body"].read() == b"\x00weights"
    listed = s3.list_objects_v2(Bucket="artifacts", Prefix="runs/")
    assert [o["Key"] for o in listed["Contents"]] == ["runs/1/model.bin"]
    assert aws.requests == [("s3", "PutObject"), ("s3", "GetObject"), ("s3", "ListObjectsV2")]


def test_unknown_operation_fails_at_once_whatever_the_retry_config(aws: FakeSageMaker, pipeline: str) -> None:
    sm = aws.client("sagemaker")
    arn = start(sm)
    assert arn
    with pytest.raises(ClientError) as exc:
        sm.send_pipeline_execution_step_success(CallbackToken="callback-token-1")
    assert error_code(exc) == "NotImplemented"
    assert "SendPipelineExecutionStepSuccess" in str(exc.value)
    # A client with botocore's standard retries (3 attempts, as the adapter uses) is not retried either.
    standard = boto3.client(
        "sagemaker",
        endpoint_url=aws.endpoint_url,
        region_name=aws.region,
        aws_access_key_id=aws.ACCESS_KEY_ID,
        aws_secret_access_key=aws.SECRET_ACCESS_KEY,
        config=Config(retries={"mode": "standard"}),
    )
    with pytest.raises(ClientError):
        standard.send_pipeline_execution_step_success(CallbackToken="callback-token-1")
    assert [op for _, op in aws.requests].count("SendPipelineExecutionStepSuccess") == 2


def test_retry_restarts_a_failed_execution_once_per_token_and_refuses_a_running_one(aws: FakeSageMaker,
                                                                                    pipeline: str) -> None:
    sm = aws.client("sagemaker")
    arn = start(sm)
    with pytest.raises(ClientError) as exc:
        sm.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=TOKEN_B)
    assert error_code(exc) == "ValidationException"
    assert str(exc.value).endswith(f"Pipeline execution {arn} is Executing; only a Failed or Stopped execution can "
                                   "be retried.")
    aws.set_execution(arn, "Failed", "a step failed")
    assert sm.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=TOKEN_B)["PipelineExecutionArn"] == arn
    described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionStatus"] == "Executing" and "FailureReason" not in described
    aws.set_execution(arn, "Failed", "again")
    assert sm.retry_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=TOKEN_B)["PipelineExecutionArn"] == arn
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Failed", \
        "the same token is the same retry"


def test_env_points_a_subprocess_at_the_server(aws: FakeSageMaker) -> None:
    aws.create_bucket("from-env")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | aws.env()
    script = textwrap.dedent(
        """
        import boto3
        boto3.client("s3").put_object(Bucket="from-env", Key="hello.txt", Body=b"from a subprocess")
        print(boto3.client("sagemaker").list_pipelines()["PipelineSummaries"])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    body = aws.client("s3").get_object(Bucket="from-env", Key="hello.txt")["Body"].read()
    assert body == b"from a subprocess"
    assert ("sagemaker", "ListPipelines") in aws.requests


def test_s3fs_reads_and_writes_against_the_same_server(aws: FakeSageMaker) -> None:
    aws.create_bucket("fsspec")
    fs = s3fs.S3FileSystem(
        key=aws.ACCESS_KEY_ID,
        secret=aws.SECRET_ACCESS_KEY,
        client_kwargs={"endpoint_url": aws.endpoint_url, "region_name": aws.region},
        skip_instance_cache=True,
    )
    fs.pipe("fsspec/run/metrics.json", b'{"accuracy": 0.93}')
    with fs.open("fsspec/run/model.txt", "wb") as f:
        f.write(b"model")
    assert fs.cat("fsspec/run/metrics.json") == b'{"accuracy": 0.93}'
    assert sorted(fs.ls("fsspec/run", detail=False)) == ["fsspec/run/metrics.json", "fsspec/run/model.txt"]
    # the same objects through boto3: one server, one store
    assert aws.client("s3").get_object(Bucket="fsspec", Key="run/model.txt")["Body"].read() == b"model"


def test_exit_resets_moto_and_restores_its_response_class() -> None:
    from moto.sagemaker.responses import SageMakerResponse

    from moto.logs.responses import LogsResponse

    original_create = SageMakerResponse.__dict__["create_pipeline"]
    original_filter = LogsResponse.__dict__["filter_log_events"]
    assert "list_pipeline_execution_steps" not in SageMakerResponse.__dict__
    with FakeSageMaker() as aws:
        assert "list_pipeline_execution_steps" in SageMakerResponse.__dict__
        with pytest.raises(RuntimeError, match="one FakeSageMaker at a time"):
            FakeSageMaker().start()
        aws.client("sagemaker").create_pipeline(PipelineName="left-over", PipelineDefinition=PIPELINE, RoleArn=ROLE)
    assert SageMakerResponse.__dict__["create_pipeline"] is original_create
    assert LogsResponse.__dict__["filter_log_events"] is original_filter
    assert "list_pipeline_execution_steps" not in SageMakerResponse.__dict__
    with FakeSageMaker() as aws:
        assert aws.client("sagemaker").list_pipelines()["PipelineSummaries"] == []


# -- pipelines -----------------------------------------------------------------------------------


def test_create_describe_update_pipeline(sm: Any, pipeline: str) -> None:
    assert pipeline == "arn:aws:sagemaker:us-east-1:123456789012:pipeline/train-pipe"
    described = sm.describe_pipeline(PipelineName="train-pipe")
    assert json.loads(described["PipelineDefinition"]) == json.loads(PIPELINE)
    assert described["PipelineStatus"] == "Active"
    assert described["RoleArn"] == ROLE
    assert sm.describe_pipeline(PipelineName=pipeline)["PipelineName"] == "train-pipe"  # by ARN too

    new = definition(step("prep"), step("train", DependsOn=["prep"]))
    assert sm.update_pipeline(PipelineName="train-pipe", PipelineDefinition=new)["PipelineArn"] == pipeline
    updated = sm.describe_pipeline(PipelineName="train-pipe")
    assert json.loads(updated["PipelineDefinition"]) == json.loads(new)
    assert updated["LastModifiedTime"] >= described["LastModifiedTime"]


def test_unknown_pipeline_is_resource_not_found(sm: Any) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: sm.describe_pipeline(PipelineName="missing"),
        lambda: sm.update_pipeline(PipelineName="missing", PipelineDefinition=PIPELINE),
        lambda: sm.start_pipeline_execution(PipelineName="missing", ClientRequestToken=TOKEN_A),
        lambda: sm.describe_pipeline_execution(
            PipelineExecutionArn="arn:aws:sagemaker:us-east-1:123456789012:pipeline/missing/execution/abc"
        ),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc) == "ResourceNotFound"


def test_create_is_idempotent_by_token_and_names_are_unique(sm: Any) -> None:
    first = sm.create_pipeline(PipelineName="p", PipelineDefinition=PIPELINE, RoleArn=ROLE, ClientRequestToken=TOKEN_A)
    again = sm.create_pipeline(PipelineName="p", PipelineDefinition=PIPELINE, RoleArn=ROLE, ClientRequestToken=TOKEN_A)
    assert again["PipelineArn"] == first["PipelineArn"]
    with pytest.raises(ClientError) as exc:
        sm.create_pipeline(PipelineName="p", PipelineDefinition=PIPELINE, RoleArn=ROLE, ClientRequestToken=TOKEN_B)
    assert error_code(exc) == "ValidationException"
    assert "already exists" in str(exc.value)


def test_definition_from_s3_location(aws: FakeSageMaker, sm: Any) -> None:
    aws.create_bucket("defs")
    aws.client("s3").put_object(Bucket="defs", Key="p.json", Body=PIPELINE.encode())
    sm.create_pipeline(
        PipelineName="from-s3", PipelineDefinitionS3Location={"Bucket": "defs", "ObjectKey": "p.json"}, RoleArn=ROLE
    )
    assert json.loads(sm.describe_pipeline(PipelineName="from-s3")["PipelineDefinition"]) == json.loads(PIPELINE)
    with pytest.raises(ClientError) as exc:
        sm.create_pipeline(
            PipelineName="nowhere", PipelineDefinitionS3Location={"Bucket": "defs", "ObjectKey": "missing.json"}, RoleArn=ROLE
        )
    assert error_code(exc) == "ValidationException"
    assert "s3://defs/missing.json" in str(exc.value)


INVALID_DEFINITIONS = {
    "not json": ("{'Steps': []}", "not valid JSON"),
    "not an object": ("[]", "must be a JSON object"),
    "no steps": (json.dumps({"Version": "2020-12-01"}), "'Steps' list"),
    "too large inline": (
        definition(step("big", Arguments={"Pad": "x" * 1_048_576})),
        "at 'pipelineDefinition' failed to satisfy constraint: Member must have length less than or equal to 1048576",
    ),
    "dot in step name": (definition(step("train.v2")), "'train.v2' is invalid"),
    "step name too long": (definition(step("s" * 65)), "is invalid"),
    "empty step name": (definition(step("")), "is invalid"),
    "duplicate step": (definition(step("train"), step("train")), "'train' is used by more than one step"),
    "duplicate in a branch": (
        definition(step("deploy"), condition("check", [step("deploy")], [])),
        "'deploy' is used by more than one step",
    ),
    "unknown DependsOn": (definition(step("train", DependsOn=["prep"])), "DependsOn 'prep'"),
    "Get of an unknown step": (
        definition(step("train", Arguments={"In": {"Get": "Steps.prep.Properties.ProcessingJobArn"}})),
        "'prep' is not a step",
    ),
    "JsonGet of an unknown step": (
        definition(
            condition(
                "check",
                [],
                [],
                Arguments={
                    "Conditions": [
                        {
                            "Type": "GreaterThan",
                            "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.eval.PropertyFiles.M"}, "Path": "a"}},
                            "RightValue": 0.5,
                        }
                    ]
                },
            )
        ),
        "'eval' is not a step",
    ),
    "cycle": (definition(step("a", DependsOn=["b"]), step("b", DependsOn=["a"])), "cycle: a -> b -> a"),
}


@pytest.mark.parametrize("text, message", INVALID_DEFINITIONS.values(), ids=INVALID_DEFINITIONS.keys())
def test_invalid_definitions_are_rejected(sm: Any, pipeline: str, text: str, message: str) -> None:
    with pytest.raises(ClientError) as exc:
        sm.create_pipeline(PipelineName="bad", PipelineDefinition=text, RoleArn=ROLE)
    assert error_code(exc) == "ValidationException"
    assert message in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        sm.update_pipeline(PipelineName="train-pipe", PipelineDefinition=text)
    assert error_code(exc) == "ValidationException"
    # a refused update leaves the pipeline as it was
    assert json.loads(sm.describe_pipeline(PipelineName="train-pipe")["PipelineDefinition"]) == json.loads(PIPELINE)


def test_requests_are_checked_against_the_service_constraints(sm: Any, pipeline: str) -> None:
    with pytest.raises(ClientError) as exc:
        sm.create_pipeline(PipelineName="under_score", PipelineDefinition=PIPELINE, RoleArn=ROLE)
    assert error_code(exc) == "ValidationException"
    assert "at 'pipelineName' failed to satisfy constraint: Member must satisfy regular expression pattern" in str(exc.value)
    arn = start(sm)
    with pytest.raises(ClientError) as exc:
        sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, MaxResults=101)
    assert "less than or equal to 100" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, SortOrder="Sideways")
    assert "enum value set: [Ascending, Descending]" in str(exc.value)


# -- executions ----------------------------------------------------------------------------------


def test_start_is_idempotent_by_token_and_starts_executing(sm: Any, pipeline: str) -> None:
    first = start(sm, TOKEN_A, PipelineParameters=[{"Name": "min_accuracy", "Value": "0.9"}])
    assert start(sm, TOKEN_A, PipelineParameters=[{"Name": "min_accuracy", "Value": "0.9"}]) == first
    second = start(sm, TOKEN_B)
    assert second != first
    assert first.startswith(pipeline + "/execution/")
    assert sm.describe_pipeline_execution(PipelineExecutionArn=first)["PipelineExecutionStatus"] == "Executing"
    assert sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=first)["PipelineParameters"] == [
        {"Name": "min_accuracy", "Value": "0.9"}
    ]
    assert len(sm.list_pipeline_executions(PipelineName="train-pipe")["PipelineExecutionSummaries"]) == 2


def test_start_rejects_parameters_the_definition_does_not_declare(sm: Any, pipeline: str) -> None:
    with pytest.raises(ClientError) as exc:
        start(sm, PipelineParameters=[{"Name": "min_acuracy", "Value": "0.9"}])
    assert error_code(exc) == "ValidationException"
    assert "min_acuracy" in str(exc.value) and "min_accuracy" in str(exc.value)
    assert sm.list_pipeline_executions(PipelineName="train-pipe")["PipelineExecutionSummaries"] == []


def test_list_executions_sorts_and_pages(aws: FakeSageMaker, sm: Any, pipeline: str) -> None:
    arns = [start(sm, str(i) * 32) for i in range(3)]
    aws.set_execution(arns[0], "Failed", failure_reason="prep: exit status 1")
    newest_first = sm.list_pipeline_executions(PipelineName="train-pipe")["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in newest_first] == arns[::-1]
    failed = newest_first[-1]
    assert failed["PipelineExecutionStatus"] == "Failed"
    assert failed["PipelineExecutionFailureReason"] == "prep: exit status 1"
    assert "PipelineExecutionFailureReason" not in newest_first[0]

    page = sm.list_pipeline_executions(PipelineName="train-pipe", SortOrder="Ascending", MaxResults=2)
    assert [e["PipelineExecutionArn"] for e in page["PipelineExecutionSummaries"]] == arns[:2]
    rest = sm.list_pipeline_executions(PipelineName="train-pipe", SortOrder="Ascending", MaxResults=2, NextToken=page["NextToken"])
    assert [e["PipelineExecutionArn"] for e in rest["PipelineExecutionSummaries"]] == arns[2:]
    assert "NextToken" not in rest


def test_scripted_states_come_back_through_describe_and_paginated_steps(aws: FakeSageMaker, sm: Any, pipeline: str) -> None:
    arn = start(sm)
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    job = "arn:aws:sagemaker:us-east-1:123456789012:processing-job/pipelines-abc-prep"
    aws.set_steps(
        arn,
        [
            {
                "StepName": "prep",
                "StepStatus": "Succeeded",
                "StartTime": t0,
                "EndTime": t0 + dt.timedelta(minutes=3),
                "AttemptCount": 1,
                "Metadata": {"ProcessingJob": {"Arn": job}},
            },
            {"StepName": "train", "StepStatus": "Failed", "StartTime": "2026-01-02T03:08:00Z", "FailureReason": "OOM"},
            {"StepName": "check", "StepStatus": "Starting"},
        ],
    )
    aws.set_execution(arn, "Failed", failure_reason="Step failure: One or multiple steps failed.")
    described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"] == "Step failure: One or multiple steps failed."

    # the adapter's way: Ascending, following NextToken page by page
    pages = list(
        sm.get_paginator("list_pipeline_execution_steps").paginate(
            PipelineExecutionArn=arn, SortOrder="Ascending", PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["PipelineExecutionSteps"]) for p in pages] == [2, 1]
    steps = [s for p in pages for s in p["PipelineExecutionSteps"]]
    assert [(s["StepName"], s["StepStatus"]) for s in steps] == [("prep", "Succeeded"), ("train", "Failed"), ("check", "Starting")]
    assert steps[0]["Metadata"] == {"ProcessingJob": {"Arn": job}}
    assert steps[0]["StartTime"] == t0 and steps[0]["EndTime"] == t0 + dt.timedelta(minutes=3)
    assert steps[1]["FailureReason"] == "OOM"
    assert steps[1]["StartTime"] == dt.datetime(2026, 1, 2, 3, 8, tzinfo=dt.timezone.utc)

    default = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert [s["StepName"] for s in default] == ["check", "train", "prep"]  # Descending by default
    with pytest.raises(ClientError) as exc:
        sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, NextToken="not-a-token")
    assert error_code(exc) == "ValidationException"


def test_set_steps_and_set_execution_refuse_what_the_service_could_not_report(aws: FakeSageMaker, sm: Any, pipeline: str) -> None:
    arn = start(sm)
    with pytest.raises(ValueError, match="has no step 'evaluate'"):
        aws.set_steps(arn, [{"StepName": "evaluate", "StepStatus": "Executing"}])
    with pytest.raises(ValueError, match="not a PipelineExecutionStep"):
        aws.set_steps(arn, [{"StepName": "prep", "StepStatus": "Executing", "Retries": 2}])
    with pytest.raises(ValueError, match="needs StepName and StepStatus"):
        aws.set_steps(arn, [{"StepName": "prep"}])
    with pytest.raises(ValueError, match="not a pipeline execution status"):
        aws.set_execution(arn, "Running")
    with pytest.raises(ValueError, match="does not exist"):
        aws.set_execution(arn[:-3] + "zzz", "Failed")


def test_stop_moves_executing_to_stopping_to_stopped(aws: FakeSageMaker, sm: Any, pipeline: str) -> None:
    arn = start(sm)
    aws.set_steps(arn, [{"StepName": "prep", "StepStatus": "Succeeded"}, {"StepName": "train", "StepStatus": "Executing"}])
    assert sm.stop_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionArn"] == arn

    def statuses() -> tuple[str, list[str]]:
        execution = sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]
        steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn, SortOrder="Ascending")["PipelineExecutionSteps"]
        return execution, [s["StepStatus"] for s in steps]

    assert statuses() == ("Stopping", ["Succeeded", "Stopping"])
    assert statuses() == ("Stopped", ["Succeeded", "Stopped"])
    train = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"][0]
    assert "EndTime" in train
    # stopping again is harmless; stopping a finished execution is refused
    assert sm.stop_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionArn"] == arn
    done = start(sm, TOKEN_B)
    aws.set_execution(done, "Succeeded")
    with pytest.raises(ClientError) as exc:
        sm.stop_pipeline_execution(PipelineExecutionArn=done)
    assert error_code(exc) == "ValidationException"


def test_stop_after_polls_is_configurable() -> None:
    with FakeSageMaker(stop_after_polls=0) as aws:
        sm = aws.client("sagemaker")
        sm.create_pipeline(PipelineName="train-pipe", PipelineDefinition=PIPELINE, RoleArn=ROLE)
        arn = start(sm)
        sm.stop_pipeline_execution(PipelineExecutionArn=arn)
        assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Stopped"


# -- CloudWatch Logs -----------------------------------------------------------------------------


def test_seeded_logs_are_read_back_in_order(aws: FakeSageMaker) -> None:
    group = "/aws/sagemaker/ProcessingJobs"
    aws.put_log_events(group, "pipelines-abc-prep/algo-1-1700000000", ["loading data", "wrote 3 files"])
    aws.put_log_events(group, "pipelines-abc-prep/algo-1-1700000000", ["done"])
    aws.put_log_events(group, "pipelines-abc-train/algo-1-1700000000", ["epoch 1"])
    logs = aws.client("logs")
    events = logs.get_log_events(logGroupName=group, logStreamName="pipelines-abc-prep/algo-1-1700000000", startFromHead=True)
    assert [e["message"] for e in events["events"]] == ["loading data", "wrote 3 files", "done"]
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group, logStreamNamePrefix="pipelines-abc-prep/")
    assert [e["message"] for p in pages for e in p["events"]] == ["loading data", "wrote 3 files", "done"]
    nothing = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="pipelines-abc-deploy/")
    assert nothing["events"] == []
    with pytest.raises(ClientError) as exc:
        logs.filter_log_events(logGroupName=group, logStreamNamePrefix="p", logStreamNames=["x"])
    assert error_code(exc) == "InvalidParameterException"
    with pytest.raises(ClientError) as exc:
        logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName="nope")
    assert error_code(exc) == "ResourceNotFoundException"
