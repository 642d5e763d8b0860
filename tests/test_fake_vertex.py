"""The Vertex AI Pipelines stand-in, proven with the real google-cloud-aiplatform client over HTTP.

Every call goes through aiplatform's REST transport to the socket `FakeVertex` serves: the
high-level `aiplatform.PipelineJob` where it can send the request at all, and the generated
`aiplatform_v1.PipelineServiceClient` for requests the high-level client refuses before sending
(so the service's own rule is what is proven). The input document is a PipelineSpec compiled by
kfp here. Only the service's own moves (a job running, a task finishing) are scripted.
"""

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

WHY = "the Vertex stand-in is proven with aiplatform's client and kfp's compiler (stackhop[dev])"
aiplatform = pytest.importorskip("google.cloud.aiplatform", reason=WHY)
pytest.importorskip("kfp.pipeline_spec", reason=WHY)
dsl = pytest.importorskip("kfp.dsl", reason=WHY)

from google.api_core import exceptions  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import aiplatform_v1  # noqa: E402
from kfp import compiler  # noqa: E402

from stackhop.testing.vertex import FakeVertex  # noqa: E402

PROJECT, LOCATION, NUMBER = "test-project", "us-central1", "123456789012"
SA = "runner@test-project.iam.gserviceaccount.com"
NETWORK = f"projects/{NUMBER}/global/networks/ml-vpc"
PARAMS = {"source": "gs://bucket/data.csv"}
PipelineState = aiplatform_v1.PipelineState
TaskState = aiplatform_v1.PipelineTaskDetail.State


@dsl.component(base_image="python:3.11")
def make_data(rows: int, source: str, out: dsl.Output[dsl.Dataset]) -> float:
    return 0.9


@dsl.component(base_image="python:3.11")
def train(data: dsl.Input[dsl.Dataset], model: dsl.Output[dsl.Model]) -> None:
    pass


@dsl.component(base_image="python:3.11")
def report(message: str) -> None:
    pass


@dsl.pipeline(name="tiny-pipeline")
def tiny(source: str, rows: int = 10, threshold: float = 0.5, dry_run: bool = False) -> None:
    """make-data -> condition-1 (train, when make-data's score beats the threshold); report after make-data."""
    data = make_data(rows=rows, source=source)
    with dsl.If(data.outputs["Output"] > threshold):
        train(data=data.outputs["out"])
    report(message=source).after(data)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    compiler.Compiler().compile(tiny, str(path))
    return path


@pytest.fixture
def spec(spec_file: Path) -> dict[str, Any]:
    return yaml.safe_load(spec_file.read_text())


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVertex]:
    with FakeVertex(project=PROJECT, location=LOCATION) as vertex:
        vertex.patch_client(monkeypatch)
        aiplatform.init(
            project=PROJECT,
            location=LOCATION,
            credentials=AnonymousCredentials(),
            api_endpoint=vertex.endpoint,
            api_transport="rest",
            staging_bucket=None,
        )
        yield vertex


@pytest.fixture
def gapic(fake: FakeVertex) -> aiplatform_v1.PipelineServiceClient:
    """The generated client, for requests the high-level PipelineJob refuses to send."""
    return aiplatform_v1.PipelineServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options={"api_endpoint": fake.endpoint}
    )


def pipeline_job(template: Path, job_id: str = "my-run-1", **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "display_name": "My run",
        "template_path": str(template),
        "job_id": job_id,
        "pipeline_root": "gs://bucket/root",
        "parameter_values": PARAMS,
        "enable_caching": False,
        "labels": {"team": "ml"},
    }
    arguments.update(overrides)
    return aiplatform.PipelineJob(**arguments)


def submit(template: Path, job_id: str = "my-run-1", *, service_account: str = SA, network: str = NETWORK, **overrides: Any) -> Any:
    job = pipeline_job(template, job_id, **overrides)
    job.submit(service_account=service_account, network=network)
    return job


def write_spec(tmp_path: Path, spec: dict[str, Any]) -> Path:
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(spec))
    return path


def status(exc: exceptions.GoogleAPICallError) -> str:
    """The google.rpc status name of the answer (the REST client maps exceptions by HTTP code only)."""
    return exc.response.json()["error"]["status"]


# -- create and get ------------------------------------------------------------------------------


def test_submit_stores_the_whole_request_as_a_pending_job(fake: FakeVertex, spec_file: Path) -> None:
    job = submit(spec_file, parameter_values={**PARAMS, "rows": 3}, labels={"team": "ml", "run_kind": "nightly"})

    stored = fake.jobs["my-run-1"]
    assert stored["name"] == f"projects/{NUMBER}/locations/{LOCATION}/pipelineJobs/my-run-1"
    assert job.resource_name == stored["name"]
    assert stored["state"] == "PIPELINE_STATE_PENDING"
    assert stored["createTime"].endswith("Z") and stored["updateTime"] == stored["createTime"]
    assert stored["displayName"] == "My run"
    assert stored["labels"] == {"team": "ml", "run_kind": "nightly"}
    assert stored["serviceAccount"] == SA and stored["network"] == NETWORK
    assert stored["runtimeConfig"] == {
        "gcsOutputDirectory": "gs://bucket/root",
        "parameterValues": {"source": "gs://bucket/data.csv", "rows": 3.0},
    }
    assert stored["pipelineSpec"]["pipelineInfo"]["name"] == "tiny-pipeline"
    assert stored["pipelineSpec"]["root"]["dag"]["tasks"]["make-data"]["cachingOptions"] == {"enableCache": False}
    method, path, body = fake.requests[0]
    assert (method, path) == ("POST", f"/v1/projects/{PROJECT}/locations/{LOCATION}/pipelineJobs")
    assert body["displayName"] == "My run" and "name" not in body
    assert job.state == PipelineState.PIPELINE_STATE_PENDING


def test_a_job_is_fetched_by_id_or_by_name_with_the_project_number(fake: FakeVertex, spec_file: Path) -> None:
    job = submit(spec_file)

    by_name = aiplatform.PipelineJob.get(resource_name=job.resource_name)
    by_id = aiplatform.PipelineJob.get(resource_name="my-run-1")

    assert by_name.resource_name == by_id.resource_name == job.resource_name
    assert by_id.display_name == "My run"
    paths = [path for method, path, _ in fake.requests if method == "GET"]
    assert paths == [
        f"/v1/projects/{NUMBER}/locations/{LOCATION}/pipelineJobs/my-run-1",
        f"/v1/projects/{PROJECT}/locations/{LOCATION}/pipelineJobs/my-run-1",
    ]


def test_a_duplicate_job_id_is_already_exists_and_the_first_job_stays(fake: FakeVertex, spec_file: Path) -> None:
    submit(spec_file)

    with pytest.raises(exceptions.Conflict) as refused:
        submit(spec_file, display_name="Second")

    assert status(refused.value) == "ALREADY_EXISTS"
    assert "my-run-1 already exists" in refused.value.message
    assert aiplatform.PipelineJob.get(resource_name="my-run-1").display_name == "My run"


def test_an_unknown_job_is_not_found(fake: FakeVertex) -> None:
    with pytest.raises(exceptions.NotFound) as refused:
        aiplatform.PipelineJob.get(resource_name="no-such-run")
    assert status(refused.value) == "NOT_FOUND"


def test_another_location_or_project_is_refused(fake: FakeVertex, gapic: aiplatform_v1.PipelineServiceClient) -> None:
    with pytest.raises(exceptions.BadRequest) as wrong_location:
        gapic.get_pipeline_job(name=f"projects/{PROJECT}/locations/europe-west4/pipelineJobs/x")
    with pytest.raises(exceptions.Forbidden) as wrong_project:
        gapic.get_pipeline_job(name=f"projects/other-project/locations/{LOCATION}/pipelineJobs/x")

    assert "europe-west4" in wrong_location.value.message and status(wrong_location.value) == "INVALID_ARGUMENT"
    assert status(wrong_project.value) == "PERMISSION_DENIED"


def test_rest_json_names_enums_unless_the_client_asks_for_numbers(fake: FakeVertex, spec_file: Path) -> None:
    submit(spec_file)
    url = f"{fake.endpoint}/v1/projects/{PROJECT}/locations/{LOCATION}/pipelineJobs/my-run-1"

    with urllib.request.urlopen(url) as plain, urllib.request.urlopen(url + "?%24alt=json%3Benum-encoding%3Dint") as ints:
        assert json.load(plain)["state"] == "PIPELINE_STATE_PENDING"
        assert json.load(ints)["state"] == PipelineState.PIPELINE_STATE_PENDING.value


# -- create validation ---------------------------------------------------------------------------


def test_a_body_field_the_api_does_not_define_is_refused(fake: FakeVertex, spec: dict[str, Any]) -> None:
    body = {"displayName": "My run", "pipelineSpec": spec, "runtimeConfig": {"gcsOutputDirectory": "gs://b/r"}}
    request = urllib.request.Request(
        f"{fake.endpoint}/v1/projects/{PROJECT}/locations/{LOCATION}/pipelineJobs?pipelineJobId=my-run-1",
        data=json.dumps({**body, "serviceAcount": SA}).encode(),
        headers={"Content-Type": "application/json"},
    )

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)

    with refused.value as answer:
        error = json.load(answer)["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert 'no field named "serviceAcount"' in error["message"]


def _edit(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set the value at a '/'-separated path of the spec."""

    def edit(spec: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node = spec
        for part in parents:
            node = node[part]
        node[last] = value

    return edit


BAD_SPECS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "unknown field": (_edit("colour", "blue"), 'no field named "colour"'),
    "unknown nested field": (_edit("root/dag/tasks/report/retries", 3), 'no field named "retries"'),
    "schema version": (_edit("schemaVersion", "3.0.0"), "schemaVersion '3.0.0' is not supported"),
    "pipeline name": (_edit("pipelineInfo/name", "Tiny_Pipeline"), "pipelineInfo.name 'Tiny_Pipeline'"),
    "componentRef": (
        _edit("root/dag/tasks/make-data/componentRef/name", "comp-missing"),
        "refers to component 'comp-missing', which pipelineSpec.components does not define",
    ),
    "executorLabel": (
        _edit("components/comp-train/executorLabel", "exec-missing"),
        "names executor 'exec-missing', which pipelineSpec.deploymentSpec.executors does not define",
    ),
    "executor spec": (
        _edit("deploymentSpec/executors/exec-train", {"containr": {}}),
        'deploymentSpec is not a valid PipelineDeploymentConfig: Message type "ml_pipelines.PipelineDeploymentConfig.ExecutorSpec" has no field named "containr"',
    ),
    "dependentTasks": (
        _edit("root/dag/tasks/report/dependentTasks", ["ghost"]),
        "Task 'report' in the root DAG depends on task 'ghost', which is not in the same DAG",
    ),
    "producerTask in another DAG": (
        _edit(
            "components/comp-condition-1/dag/tasks/train/inputs/artifacts/data",
            {"taskOutputArtifact": {"producerTask": "make-data", "outputArtifactKey": "out"}},
        ),
        "Input 'data' of task 'train' in the DAG of component 'comp-condition-1' comes from task 'make-data', "
        "which is not in the same DAG",
    ),
    "dependency cycle": (
        _edit("root/dag/tasks/make-data/dependentTasks", ["report"]),
        "Tasks 'make-data', 'report' in the root DAG depend on each other in a cycle",
    ),
}


@pytest.mark.parametrize("edit, message", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_an_invalid_pipeline_spec_is_refused(
    fake: FakeVertex, spec: dict[str, Any], tmp_path: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    edit(spec)

    with pytest.raises(exceptions.BadRequest) as refused:
        submit(write_spec(tmp_path, spec))

    assert status(refused.value) == "INVALID_ARGUMENT"
    assert message in refused.value.message
    assert fake.jobs == {}


BAD_SUBMITS: dict[str, tuple[dict[str, Any], str]] = {
    "job id with capitals": ({"job_id": "My-Run-1"}, "pipelineJobId 'My-Run-1' must be 1-128 characters"),
    "integer parameter given a fraction": (
        {"parameter_values": {**PARAMS, "rows": 2.5}},
        "Parameter 'rows' is declared NUMBER_INTEGER but was given 2.5",
    ),
    "integer parameter given a bool": (
        {"parameter_values": {**PARAMS, "rows": True}},
        "Parameter 'rows' is declared NUMBER_INTEGER but was given True",
    ),
    "double parameter given a string": (
        {"parameter_values": {**PARAMS, "threshold": "high"}},
        "Parameter 'threshold' is declared NUMBER_DOUBLE but was given 'high'",
    ),
    "bool parameter given a string": (
        {"parameter_values": {**PARAMS, "dry_run": "yes"}},
        "Parameter 'dry_run' is declared BOOLEAN but was given 'yes'",
    ),
    "string parameter given a number": (
        {"parameter_values": {"source": 7}},
        "Parameter 'source' is declared STRING but was given 7",
    ),
    "required parameter missing": ({"parameter_values": {"rows": 3}}, "Parameter 'source' is required"),
    "pipeline root not on GCS": (
        {"pipeline_root": "/tmp/root"},
        "runtimeConfig.gcsOutputDirectory '/tmp/root' must be a Cloud Storage URI",
    ),
    "label key with capitals": ({"labels": {"Team": "ml"}}, "Label key 'Team' must start with a lowercase letter"),
    "label key starting with a digit": ({"labels": {"1team": "ml"}}, "Label key '1team' must start with a lowercase letter"),
    "label value with a dot": (
        {"labels": {"team": "ml.core"}},
        "Label value 'ml.core' of key 'team' may only contain lowercase letters",
    ),
    "label value too long": ({"labels": {"team": "x" * 64}}, "is longer than 63 characters"),
    "too many labels": ({"labels": {f"k{i}": "v" for i in range(65)}}, "labels has 65 entries; at most 64"),
    "service account": ({"service_account": "runner"}, "serviceAccount 'runner' is not a service account email"),
    "network by project id": (
        {"network": "projects/test-project/global/networks/ml-vpc"},
        "network 'projects/test-project/global/networks/ml-vpc' must have the form projects/{project number}",
    ),
}


@pytest.mark.parametrize("arguments, message", BAD_SUBMITS.values(), ids=BAD_SUBMITS.keys())
def test_an_invalid_submit_is_refused(fake: FakeVertex, spec_file: Path, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(exceptions.BadRequest) as refused:
        submit(spec_file, **arguments)

    assert status(refused.value) == "INVALID_ARGUMENT"
    assert message in refused.value.message
    assert fake.jobs == {}


def valid_request(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "pipeline_job_id": "my-run-1",
        "display_name": "My run",
        "pipeline_spec": spec,
        "runtime_config": {"gcs_output_directory": "gs://bucket/root", "parameter_values": dict(PARAMS)},
    }


def _request_edit(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(request: dict[str, Any]) -> None:
        for key, value in changes.items():
            value = value(request) if callable(value) else value
            if value is None:
                request.pop(key)
            else:
                request[key] = value

    return edit


BAD_REQUESTS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    # The high-level client checks these itself, or cannot express them.
    "job id too long": (_request_edit(pipeline_job_id="r" * 129), "must be 1-128 characters of lowercase letters"),
    "display name too long": (_request_edit(display_name="d" * 129), "displayName is 129 characters long; the limit is 128"),
    "no pipeline spec": (_request_edit(pipeline_spec=None), "pipelineSpec is required"),
    "no pipeline name": (
        _request_edit(pipeline_spec=lambda r: {**r["pipeline_spec"], "pipelineInfo": {}}),
        "pipelineSpec.pipelineInfo.name is required",
    ),
    "pipeline and platform spec bundled": (
        _request_edit(pipeline_spec=lambda r: {"pipeline_spec": r["pipeline_spec"], "platform_spec": {"platforms": {}}}),
        "Vertex AI Pipelines accepts a single PipelineSpec document and no platform spec",
    ),
    "a platform spec document": (
        _request_edit(pipeline_spec={"platforms": {"kubernetes": {"deploymentSpec": {}}}}),
        "no platform spec",
    ),
    "no pipeline root": (
        _request_edit(runtime_config={"parameter_values": dict(PARAMS)}),
        "runtimeConfig.gcsOutputDirectory is required because pipelineSpec has no defaultPipelineRoot",
    ),
    "undeclared parameter": (
        _request_edit(runtime_config={"gcs_output_directory": "gs://b/r", "parameter_values": {**PARAMS, "nope": 1}}),
        "runtimeConfig.parameterValues names 'nope', which the pipeline does not declare as an input",
    ),
}


@pytest.mark.parametrize("edit, message", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_request_the_high_level_client_would_not_send_is_refused_too(
    fake: FakeVertex,
    gapic: aiplatform_v1.PipelineServiceClient,
    spec: dict[str, Any],
    edit: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    request = valid_request(spec)
    edit(request)
    job_id = request.pop("pipeline_job_id")

    with pytest.raises(exceptions.BadRequest) as refused:
        gapic.create_pipeline_job(
            parent=f"projects/{PROJECT}/locations/{LOCATION}",
            pipeline_job=aiplatform_v1.PipelineJob(**request),
            pipeline_job_id=job_id,
        )

    assert status(refused.value) == "INVALID_ARGUMENT"
    assert message in refused.value.message
    assert fake.jobs == {}


def test_a_default_pipeline_root_stands_in_for_the_output_directory(
    fake: FakeVertex, gapic: aiplatform_v1.PipelineServiceClient, spec: dict[str, Any]
) -> None:
    request = valid_request({**spec, "defaultPipelineRoot": "gs://bucket/default"})
    del request["runtime_config"]["gcs_output_directory"], request["pipeline_job_id"]

    created = gapic.create_pipeline_job(
        parent=f"projects/{PROJECT}/locations/{LOCATION}", pipeline_job=aiplatform_v1.PipelineJob(**request)
    )

    assert created.name.startswith(f"projects/{NUMBER}/locations/{LOCATION}/pipelineJobs/tiny-pipeline-")


def test_every_problem_of_a_request_is_named_at_once(fake: FakeVertex, spec_file: Path) -> None:
    with pytest.raises(exceptions.BadRequest) as refused:
        submit(spec_file, job_id="Bad-Id", labels={"Team": "ml"}, parameter_values={"rows": 1.5})

    for problem in ("pipelineJobId 'Bad-Id'", "Label key 'Team'", "Parameter 'rows'", "Parameter 'source' is required"):
        assert problem in refused.value.message


# -- scripted runs ---------------------------------------------------------------------------------


def test_a_scripted_run_succeeds_with_task_outputs_visible_to_the_client(fake: FakeVertex, spec_file: Path) -> None:
    job = submit(spec_file)
    fake.set_state("my-run-1", "PIPELINE_STATE_RUNNING")
    assert job.state == PipelineState.PIPELINE_STATE_RUNNING

    root = fake.set_task("my-run-1", "tiny-pipeline", "RUNNING")
    fake.set_task("my-run-1", "make-data", "SUCCEEDED", outputs={"out": ["gs://bucket/root/make-data/out"]})
    condition = fake.set_task("my-run-1", "condition-1", "SUCCEEDED")
    fake.set_task("my-run-1", "train", "SUCCEEDED", outputs={"model": ["gs://bucket/root/train/model"]})
    fake.set_task("my-run-1", "report", "SUCCEEDED")
    fake.set_task("my-run-1", "tiny-pipeline", "SUCCEEDED")
    fake.set_state("my-run-1", "PIPELINE_STATE_SUCCEEDED")
    job.wait()

    assert job.state == PipelineState.PIPELINE_STATE_SUCCEEDED
    tasks = {task.task_name: task for task in job.task_details}
    assert set(tasks) == {"tiny-pipeline", "make-data", "condition-1", "train", "report"}
    assert all(task.state == TaskState.SUCCEEDED for task in tasks.values())
    (dataset,) = tasks["make-data"].outputs["out"].artifacts
    assert (dataset.uri, dataset.schema_title) == ("gs://bucket/root/make-data/out", "system.Dataset")
    (model,) = tasks["train"].outputs["model"].artifacts
    assert (model.uri, model.schema_title) == ("gs://bucket/root/train/model", "system.Model")
    assert tasks["train"].parent_task_id == int(condition["taskId"])
    assert tasks["make-data"].parent_task_id == int(root["taskId"])
    stored = fake.jobs["my-run-1"]
    assert {"startTime", "endTime"} <= stored.keys() and "error" not in stored


def test_a_failed_run_reports_its_error_and_wait_raises_it(fake: FakeVertex, spec_file: Path) -> None:
    job = submit(spec_file)
    fake.set_state("my-run-1", "PIPELINE_STATE_RUNNING")
    fake.set_task("my-run-1", "make-data", "FAILED", error_message="The replica workerpool0-0 exited with a non-zero status of 1.")
    fake.set_task("my-run-1", "report", "NOT_TRIGGERED")
    fake.set_state("my-run-1", "PIPELINE_STATE_FAILED")

    with pytest.raises(RuntimeError, match=r"The failed tasks are: \[make-data\]"):
        job.wait()

    assert job.has_failed
    tasks = {task.task_name: task for task in job.task_details}
    assert tasks["make-data"].error.message == "The replica workerpool0-0 exited with a non-zero status of 1."
    assert fake.jobs["my-run-1"]["error"]["code"] == 9


def test_a_failure_message_can_be_scripted(fake: FakeVertex, spec_file: Path) -> None:
    job = submit(spec_file)
    fake.set_state("my-run-1", "PIPELINE_STATE_FAILED", error_message="Quota exceeded for resource cpus.")

    assert job.state == PipelineState.PIPELINE_STATE_FAILED
    assert job._gca_resource.error.message == "Quota exceeded for resource cpus."


def test_cancel_reports_cancelling_for_some_polls_then_cancelled(fake: FakeVertex, spec_file: Path) -> None:
    fake.cancel_after_polls = 2
    job = submit(spec_file)
    fake.set_state("my-run-1", "PIPELINE_STATE_RUNNING")
    fake.set_task("my-run-1", "make-data", "RUNNING")

    job.cancel()

    assert [job.state for _ in range(3)] == [
        PipelineState.PIPELINE_STATE_CANCELLING,
        PipelineState.PIPELINE_STATE_CANCELLING,
        PipelineState.PIPELINE_STATE_CANCELLED,
    ]
    (task,) = job.task_details
    assert [status.state for status in task.pipeline_task_status] == [
        TaskState.RUNNING,
        TaskState.CANCELLING,
        TaskState.CANCELLED,
    ]
    assert fake.jobs["my-run-1"]["error"]["code"] == 1
    assert ("POST", f"/v1/projects/{NUMBER}/locations/{LOCATION}/pipelineJobs/my-run-1:cancel", {}) in fake.requests


def test_wait_follows_a_cancel_to_its_end(fake: FakeVertex, spec_file: Path) -> None:
    job = submit(spec_file)
    job.cancel()
    job.wait()
    assert job.state == PipelineState.PIPELINE_STATE_CANCELLED


def test_cancelling_a_finished_job_is_a_failed_precondition(fake: FakeVertex, spec_file: Path) -> None:
    job = submit(spec_file)
    fake.set_state("my-run-1", "PIPELINE_STATE_SUCCEEDED")

    with pytest.raises(exceptions.BadRequest) as refused:
        job.cancel()

    assert status(refused.value) == "FAILED_PRECONDITION"
    assert "can no longer be cancelled" in refused.value.message


def test_untaken_branches_and_skipped_tasks_are_reported(fake: FakeVertex, spec_file: Path) -> None:
    job = submit(spec_file)
    fake.set_task("my-run-1", "make-data", "SUCCEEDED")
    fake.set_task("my-run-1", "condition-1", "NOT_TRIGGERED")
    fake.set_task("my-run-1", "report", "SKIPPED")

    states = {task.task_name: task.state for task in job.task_details}

    assert states == {"make-data": TaskState.SUCCEEDED, "condition-1": TaskState.NOT_TRIGGERED, "report": TaskState.SKIPPED}


def test_set_task_refuses_what_the_spec_could_not_report(fake: FakeVertex, spec_file: Path) -> None:
    submit(spec_file)

    with pytest.raises(ValueError, match="'evaluate' is not a task of job 'my-run-1'"):
        fake.set_task("my-run-1", "evaluate", "RUNNING")
    with pytest.raises(ValueError, match="declares no output artifact 'metrics'; it declares: model"):
        fake.set_task("my-run-1", "train", "SUCCEEDED", outputs={"metrics": ["gs://bucket/m"]})
    with pytest.raises(ValueError, match="not a PipelineTaskDetail.State"):
        fake.set_task("my-run-1", "train", "DONE")
    with pytest.raises(ValueError, match="not a PipelineState"):
        fake.set_state("my-run-1", "SUCCEEDED")
    with pytest.raises(KeyError):
        fake.set_state("other-run", "PIPELINE_STATE_RUNNING")


# -- list and delete -------------------------------------------------------------------------------


# aiplatform's simple view logs through the deprecated Logger.warn.
@pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning")
def test_list_filters_on_display_name_and_labels_and_pages(
    fake: FakeVertex, spec_file: Path, gapic: aiplatform_v1.PipelineServiceClient
) -> None:
    submit(spec_file, "run-a", display_name="nightly", labels={"team": "ml"})
    submit(spec_file, "run-b", display_name="nightly", labels={"team": "data"})
    submit(spec_file, "run-c", display_name="adhoc", labels={"team": "ml"})

    def ids(jobs: Any) -> list[str]:
        return sorted(job.name.rsplit("/", 1)[-1] for job in jobs)

    assert ids(aiplatform.PipelineJob.list(filter='display_name="nightly"')) == ["run-a", "run-b"]
    assert ids(aiplatform.PipelineJob.list(filter='labels.team="ml"')) == ["run-a", "run-c"]
    assert ids(aiplatform.PipelineJob.list(filter='display_name="nightly" AND labels.team="ml"')) == ["run-a"]
    (simple,) = aiplatform.PipelineJob.list(filter='display_name="adhoc"', enable_simple_view=True)
    assert simple.gca_resource.labels == {"team": "ml"} and not simple.gca_resource.runtime_config.gcs_output_directory
    pages = gapic.list_pipeline_jobs(request={"parent": f"projects/{PROJECT}/locations/{LOCATION}", "page_size": 2})
    assert [len(page.pipeline_jobs) for page in pages.pages] == [2, 1]
    with pytest.raises(exceptions.BadRequest, match="not supported for PipelineJobs"):
        aiplatform.PipelineJob.list(filter='colour="blue"')


def test_delete_resolves_its_operation_and_only_for_a_finished_job(fake: FakeVertex, spec_file: Path) -> None:
    job = submit(spec_file)

    with pytest.raises(exceptions.BadRequest, match="only a finished job can be deleted"):
        job.delete()

    fake.set_state("my-run-1", "PIPELINE_STATE_CANCELLED")
    aiplatform.PipelineJob.get(resource_name="my-run-1").delete()
    assert fake.jobs == {}


def test_the_server_stops_cleanly_and_frees_its_port() -> None:
    with FakeVertex() as vertex:
        endpoint = vertex.endpoint
        with urllib.request.urlopen(f"{endpoint}/v1/projects/{PROJECT}/locations/{LOCATION}/pipelineJobs") as answer:
            assert json.load(answer) == {}

    with pytest.raises(RuntimeError, match="not running"):
        vertex.endpoint
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{endpoint}/v1/projects/{PROJECT}/locations/{LOCATION}/pipelineJobs", timeout=2)
