"""The Kubeflow Pipelines stand-in, proven with the real `kfp.Client` over real HTTP.

Every call here goes through kfp's client and `kfp_server_api`'s serialization to the socket
`FakeKFP` serves; only what the cluster would do by itself (a run starting, a task finishing,
a failure) is scripted through the fake's helpers. The pipeline is compiled by kfp's own
compiler in each test. What passes here is what a KFP adapter can rely on the stand-in to do,
and to refuse.
"""

# No `from __future__ import annotations`: kfp reads the components' annotations as types.
import json
import re
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, List

import pytest
import yaml

kfp = pytest.importorskip("kfp", reason="the KFP stand-in is proven with kfp's own client and compiler")

import kfp_server_api  # noqa: E402  (installed with kfp)
from kfp import compiler, dsl  # noqa: E402
from kfp_server_api import ApiException  # noqa: E402

from stackhop.testing.kfp import FakeKFP, kubernetes_config  # noqa: E402

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
EPOCH = "1970-01-01T00:00:00Z"


# -- the pipeline: prep -> if score > threshold: train -> deploy --------------------------------


@dsl.container_component
def prep(rows: int, data: dsl.Output[dsl.Dataset], score: dsl.OutputPath(float)):  # type: ignore[valid-type]
    return dsl.ContainerSpec(image="python:3.11", command=["prep"], args=[rows, data.path, score])


@dsl.container_component
def train(data: dsl.Input[dsl.Dataset], model: dsl.Output[dsl.Model]):
    return dsl.ContainerSpec(image="python:3.11", command=["train"], args=[data.path, model.path])


@dsl.container_component
def deploy(model: dsl.Input[dsl.Model]):
    return dsl.ContainerSpec(image="python:3.11", command=["deploy"], args=[model.path])


@dsl.pipeline(name="churn-training")
def churn(rows: int, threshold: float = 0.5, tag: str = "nightly"):
    scored = prep(rows=rows)
    with dsl.If(scored.outputs["score"] > threshold):
        trained = train(data=scored.outputs["data"])
        deploy(model=trained.outputs["model"])


# -- a pipeline using the rest of the DSL: loops, fan-in, exit handler, importer, if/elif/else ----


@dsl.container_component
def shard(i: int, out: dsl.Output[dsl.Dataset]):
    return dsl.ContainerSpec(image="python:3.11", command=["shard"], args=[i, out.path])


@dsl.container_component
def merge(parts: dsl.Input[List[dsl.Dataset]], merged: dsl.Output[dsl.Dataset]):
    return dsl.ContainerSpec(image="python:3.11", command=["merge"], args=[merged.path])


@dsl.container_component
def notify(status: dsl.PipelineTaskFinalStatus):
    return dsl.ContainerSpec(image="python:3.11", command=["notify"])


@dsl.container_component
def toss(side: dsl.OutputPath(str)):  # type: ignore[valid-type]
    return dsl.ContainerSpec(image="python:3.11", command=["toss"], args=[side])


@dsl.pipeline(name="sharded")
def sharded(shards: List[int] = [1, 2, 3]):
    with dsl.ExitHandler(notify()):
        with dsl.ParallelFor(shards) as i:
            part = shard(i=i)
        merge(parts=dsl.Collected(part.outputs["out"]))
        dsl.importer(artifact_uri="gs://bucket/reference", artifact_class=dsl.Dataset)
        side = toss()
        with dsl.If(side.output == "heads"):
            shard(i=1)
        with dsl.Elif(side.output == "tails"):
            shard(i=2)
        with dsl.Else():
            shard(i=3)


#: kfp-kubernetes's shapes: a deadline and pull secret on prep; on train a GPU node pool, its taint,
#: and secrets as env and as a volume.
PLATFORM_SPEC = {
    "platforms": {
        "kubernetes": {
            "deploymentSpec": {
                "executors": {
                    "exec-prep": {"activeDeadlineSeconds": 3600, "imagePullSecret": [{"secretName": "registry"}]},
                    "exec-train": {
                        "nodeSelector": {"labels": {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                        "secretAsEnv": [
                            {"secretName": "wandb", "keyToEnv": [{"secretKey": "api-key", "envVar": "WANDB_API_KEY"}]}
                        ],
                        "secretAsVolume": [{"secretName": "gcs-key", "mountPath": "/secrets/gcs"}],
                    },
                }
            }
        }
    }
}


@pytest.fixture
def fake() -> Iterator[FakeKFP]:
    with FakeKFP() as server:
        yield server


@pytest.fixture
def client(fake: FakeKFP, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    # A developer's ~/.config/kfp/context.json would change what the client sends (namespace, healthz).
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2 and later"
        return kfp.Client(host=fake.host)


@pytest.fixture
def package(tmp_path: Path) -> Path:
    path = tmp_path / "churn.yaml"
    compiler.Compiler().compile(churn, str(path))
    return path


@pytest.fixture(params=["kfp-kubernetes", "rebuilt"])
def executor_config_message(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Check kubernetes executor configs with kfp-kubernetes's message, then with the stand-in's own."""
    if request.param == "kfp-kubernetes":
        pytest.importorskip("kfp.kubernetes.kubernetes_executor_config_pb2",
                            reason="kfp-kubernetes (stackhop[testing]) holds the platform-spec protos")
    else:
        monkeypatch.setattr(kubernetes_config, "_installed_class", lambda: None)
    return str(request.param)


def compiled(package: Path) -> dict[str, Any]:
    return yaml.safe_load(package.read_text())


def write_package(tmp_path: Path, *documents: dict[str, Any], name: str = "edited.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def submit(client: Any, package: Path, **kwargs: Any) -> Any:
    kwargs.setdefault("arguments", {"rows": 10})
    kwargs.setdefault("run_name", "churn-nightly")
    kwargs.setdefault("experiment_name", "churn")
    return client.create_run_from_pipeline_package(str(package), **kwargs)


def error_of(exc: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.value.body)
    return body


def by_name(filter_name: str, operation: Any = 1) -> str:
    """The filter kfp.Client itself builds to find something by name (operation EQUALS)."""
    return json.dumps({"predicates": [{"operation": operation, "key": "display_name", "stringValue": filter_name}]})


# -- the server --------------------------------------------------------------------------------


def test_client_construction_checks_healthz_on_a_single_user_deployment(fake: FakeKFP, client: Any) -> None:
    assert fake.host.startswith("http://127.0.0.1:")
    assert fake.requests == [("GET", "/apis/v2beta1/healthz", None)]
    health = client.get_kfp_healthz()
    assert not health.multi_user  # so the client never tries to read an in-cluster namespace
    assert health.pipeline_store == "database"


def test_stops_cleanly_and_keeps_its_state_readable(
    tmp_path: Path, package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    with FakeKFP() as fake, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        run = submit(kfp.Client(host=fake.host), package)
        port = int(fake.host.rsplit(":", 1)[1])
    assert not [t for t in threading.enumerate() if t.name == "fake-kfp"]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert fake.runs[run.run_id]["state"] == "PENDING"  # inspectable after the with-block


def test_routes_it_does_not_model_answer_501(client: Any, package: Path) -> None:
    run = submit(client, package)
    with pytest.raises(ApiException) as exc:
        client.archive_run(run.run_id)
    assert exc.value.status == 501
    assert error_of(exc)["message"] == f"FakeKFP does not model POST /apis/v2beta1/runs/{run.run_id}:archive."


# -- submitting ---------------------------------------------------------------------------------


def test_submit_stores_the_run_as_the_api_reports_it(fake: FakeKFP, client: Any, package: Path) -> None:
    result = submit(
        client,
        package,
        arguments={"rows": 10, "threshold": 0.7},
        run_name="churn-nightly",
        enable_caching=False,
        service_account="trainer",
    )

    stored = fake.runs[result.run_id]
    experiment = next(e for e in fake.experiments.values() if e["display_name"] == "churn")
    expected_spec = compiled(package)
    for task in expected_spec["root"]["dag"]["tasks"].values():
        task["cachingOptions"] = {}  # enable_caching=False: enableCache false on root's tasks, omitted as a default
    assert stored["run_id"] == result.run_id
    assert stored["display_name"] == "churn-nightly"
    assert stored["experiment_id"] == experiment["experiment_id"]
    assert stored["state"] == "PENDING"
    assert stored["storage_state"] == "AVAILABLE"
    assert RFC3339.match(stored["created_at"]) and stored["scheduled_at"] == stored["created_at"]
    assert stored["finished_at"] == EPOCH
    assert stored["pipeline_spec"] == expected_spec
    assert stored["runtime_config"] == {"parameters": {"rows": 10, "threshold": 0.7}}
    assert stored["service_account"] == "trainer"
    assert stored["state_history"] == [{"update_time": stored["created_at"], "state": "PENDING"}]
    assert experiment["last_run_created_at"] == stored["created_at"]

    method, path, body = fake.requests[-1]
    assert (method, path) == ("POST", "/apis/v2beta1/runs")
    assert body["pipeline_spec"] == stored["pipeline_spec"]
    assert body["runtime_config"] == {"parameters": {"rows": 10, "threshold": 0.7}}

    fetched = client.get_run(result.run_id)
    assert (fetched.state, fetched.display_name, fetched.service_account) == ("PENDING", "churn-nightly", "trainer")


def test_service_account_defaults_to_pipeline_runner(fake: FakeKFP, client: Any, package: Path) -> None:
    run = submit(client, package)
    assert fake.runs[run.run_id]["service_account"] == "pipeline-runner"


def test_experiment_is_created_by_name_once_and_reused(fake: FakeKFP, client: Any, package: Path) -> None:
    first = submit(client, package, run_name="a")
    second = submit(client, package, run_name="b")

    named = [e for e in fake.experiments.values() if e["display_name"] == "churn"]
    assert len(named) == 1
    experiment_id = named[0]["experiment_id"]
    assert fake.runs[first.run_id]["experiment_id"] == fake.runs[second.run_id]["experiment_id"] == experiment_id
    assert [r[:2] for r in fake.requests].count(("POST", "/apis/v2beta1/experiments")) == 1
    assert client.get_experiment(experiment_name="churn").experiment_id == experiment_id
    assert client.create_experiment("churn").experiment_id == experiment_id


def test_runs_without_an_experiment_name_go_to_the_default_experiment(
    fake: FakeKFP, client: Any, package: Path
) -> None:
    run = submit(client, package, experiment_name=None)
    default = next(e for e in fake.experiments.values() if e["display_name"] == "Default")
    assert fake.runs[run.run_id]["experiment_id"] == default["experiment_id"]
    assert ("POST", "/apis/v2beta1/experiments") not in [r[:2] for r in fake.requests]


def test_an_experiment_name_is_unique(client: Any) -> None:
    client.create_experiment("churn")
    with pytest.raises(ApiException) as exc:
        client.experiments.experiment_service_create_experiment(
            experiment=kfp_server_api.V2beta1Experiment(display_name="Churn")
        )
    assert exc.value.status == 409
    assert error_of(exc)["code"] == 6


def test_platform_spec_in_a_second_document_is_sent_nested_and_accepted(
    fake: FakeKFP, client: Any, package: Path, tmp_path: Path, executor_config_message: str
) -> None:
    two_documents = write_package(tmp_path, compiled(package), PLATFORM_SPEC)
    run = submit(client, two_documents)

    stored = fake.runs[run.run_id]["pipeline_spec"]
    assert set(stored) == {"pipeline_spec", "platform_spec"}
    assert stored["pipeline_spec"]["pipelineInfo"]["name"] == "churn-training"
    assert stored["platform_spec"] == PLATFORM_SPEC
    assert client.get_run(run.run_id).pipeline_spec["platform_spec"] == PLATFORM_SPEC


def test_loops_fan_in_exit_handlers_and_branches_are_accepted(fake: FakeKFP, client: Any, tmp_path: Path) -> None:
    path = tmp_path / "sharded.yaml"
    compiler.Compiler().compile(sharded, str(path))
    run_id = submit(client, path, arguments={}).run_id
    # Tasks of sub-DAGs (loop, exit handler, branches) can be scripted by their task names.
    fake.set_task(run_id, "for-loop-2", "RUNNING")
    fake.set_task(run_id, "merge", "SUCCEEDED", outputs={"merged": ["gs://bucket/merged"]})
    assert fake.output_uris(run_id, "merge") == {"merged": ["gs://bucket/merged"]}


@pytest.mark.parametrize(
    ("executors", "message"),
    [
        pytest.param(
            {"exec-train": {"nodeSelecter": {"labels": {"pool": "gpu"}}}},
            'Invalid kubernetes config for executor "exec-train": Message type '
            '"kfp_kubernetes.KubernetesExecutorConfig" has no field named "nodeSelecter"',
            id="misspelled-key",
        ),
        pytest.param(
            {"exec-train": {"tolerations": {"key": "nvidia.com/gpu"}}},
            'Invalid kubernetes config for executor "exec-train": Failed to parse tolerations field',
            id="toleration-not-a-list",
        ),
        pytest.param(
            {"exec-ghost": {"nodeSelector": {"labels": {"pool": "gpu"}}}},
            'The kubernetes platform spec configures executor "exec-ghost", which the pipeline spec does not define.',
            id="unknown-executor",
        ),
    ],
)
def test_a_bad_platform_spec_is_refused(
    fake: FakeKFP,
    client: Any,
    package: Path,
    tmp_path: Path,
    executor_config_message: str,
    executors: dict[str, Any],
    message: str,
) -> None:
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": executors}}}}
    with pytest.raises(ApiException) as exc:
        submit(client, write_package(tmp_path, compiled(package), platform))
    assert exc.value.status == 400
    assert error_of(exc)["code"] == 3
    assert message in error_of(exc)["message"]
    assert fake.runs == {}


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split("/")
    for key in parents:
        document = document[key]
    document[last] = value


def test_the_rebuilt_kubernetes_config_is_the_kfp_kubernetes_message() -> None:
    # Without kfp-kubernetes the stand-in checks executor configs against a rebuilt message;
    # wherever kfp-kubernetes is installed, prove the two are the same message.
    real = pytest.importorskip("kfp.kubernetes.kubernetes_executor_config_pb2",
                               reason="kfp-kubernetes (stackhop[testing]) holds the platform-spec protos").KubernetesExecutorConfig
    rebuilt = kubernetes_config._rebuilt_class()

    def fields(descriptor: Any, seen: dict[str, Any]) -> dict[str, Any]:
        if descriptor.full_name not in seen:
            seen[descriptor.full_name] = sorted(
                (f.name, f.number, f.type, f.is_repeated, f.message_type.full_name if f.message_type else "")
                for f in descriptor.fields
            )
            for f in descriptor.fields:
                if f.message_type is not None and f.message_type.full_name.startswith("kfp_kubernetes."):
                    fields(f.message_type, seen)
        return seen

    assert fields(rebuilt.DESCRIPTOR, {}) == fields(real.DESCRIPTOR, {})


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        pytest.param(
            "schemaVersion",
            "2.0.0",
            "KFP only supports schema version 2.1.0, but the pipeline spec has version 2.0.0.",
            id="schema-2.0.0",
        ),
        pytest.param("pipelineInfo", {}, "invalid v2 pipeline spec: name is empty.", id="no-name"),
        pytest.param(
            "root/dag/tasks/prep/componentRef/name",
            "comp-missing",
            'Task "prep" refers to component "comp-missing", which components does not define.',
            id="componentRef",
        ),
        pytest.param(
            "components/comp-train/executorLabel",
            "exec-missing",
            'Component "comp-train" uses executor "exec-missing", which deploymentSpec.executors does not define.',
            id="executorLabel",
        ),
        pytest.param(
            "components/comp-condition-1/dag/tasks/deploy/dependentTasks",
            ["trian"],
            'Task "deploy" of component "comp-condition-1" depends on "trian", which is not a task of the same DAG.',
            id="dependentTasks",
        ),
        pytest.param(
            "root/dag/tasks/condition-1/inputs/artifacts/pipelinechannel--prep-data/taskOutputArtifact/producerTask",
            "train",
            'Task "condition-1" of component "root" depends on "train", which is not a task of the same DAG.',
            id="producerTask-in-another-dag",
        ),
        pytest.param(
            "root/dag/tasks/prep/dependentTasks",
            ["condition-1"],
            'Tasks of component "root" depend on each other in a cycle: condition-1 -> prep -> condition-1.',
            id="cycle",
        ),
    ],
)
def test_an_invalid_pipeline_spec_is_refused(
    fake: FakeKFP, client: Any, package: Path, tmp_path: Path, path: str, value: Any, message: str
) -> None:
    spec = compiled(package)
    _set(spec, path, value)
    with pytest.raises(ApiException) as exc:
        submit(client, write_package(tmp_path, spec))
    assert exc.value.status == 400
    assert error_of(exc)["code"] == 3
    assert error_of(exc)["message"] == message
    assert fake.runs == {}


def test_unknown_fields_in_the_pipeline_spec_are_refused(fake: FakeKFP, client: Any, package: Path) -> None:
    # kfp.Client parses the package itself, so it cannot send this; the API must refuse it anyway.
    spec = {**compiled(package), "pipelineInfo": {"name": "churn-training", "owner": "ml-team"}}
    run = kfp_server_api.V2beta1Run(display_name="churn", pipeline_spec=spec)
    with pytest.raises(ApiException) as exc:
        client.runs.run_service_create_run(run=run)
    assert exc.value.status == 400
    assert error_of(exc)["message"].startswith("invalid v2 pipeline spec: ")
    assert 'Message type "ml_pipelines.PipelineInfo" has no field named "owner"' in error_of(exc)["message"]
    assert fake.runs == {}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param(
            {}, "parameter rows is not optional, yet has neither default value nor user provided value.", id="missing"
        ),
        pytest.param(
            {"rows": "ten"},
            "input parameter rows requires type double or integer, "
            "but the parameter value is not of number value type.",
            id="string-for-int",
        ),
        pytest.param(
            {"rows": 10, "tag": 7},
            "input parameter tag requires type string, but the input parameter is not of string value type.",
            id="int-for-string",
        ),
        pytest.param(
            {"rows": 10, "epochs": 3}, "parameter(s) provided are not required by pipeline: epochs.", id="undeclared"
        ),
    ],
)
def test_arguments_must_match_the_pipeline_inputs(
    fake: FakeKFP, client: Any, package: Path, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as exc:
        submit(client, package, arguments=arguments)
    assert exc.value.status == 400
    assert error_of(exc)["message"] == message
    assert fake.runs == {}


def test_a_run_in_an_unknown_experiment_is_refused(fake: FakeKFP, client: Any, package: Path) -> None:
    with pytest.raises(ApiException) as exc:
        submit(client, package, experiment_name=None, experiment_id="no-such-experiment")
    assert exc.value.status == 404
    assert error_of(exc)["message"] == "Experiment no-such-experiment not found"
    assert fake.runs == {}


# -- finding runs -------------------------------------------------------------------------------


def test_list_runs_filtered_by_display_name_finds_the_run(client: Any, package: Path) -> None:
    submit(client, package, run_name="churn-monday")
    wanted = submit(client, package, run_name="churn-tuesday")
    experiment_id = client.get_experiment(experiment_name="churn").experiment_id

    for operation in (1, "EQUALS"):
        found = client.list_runs(experiment_id=experiment_id, filter=by_name("churn-tuesday", operation), page_size=10)
        assert [r.run_id for r in found.runs] == [wanted.run_id]
        assert found.total_size == 1
    assert client.list_runs(experiment_id=experiment_id, filter=by_name("churn-friday"), page_size=10).runs is None


def test_a_name_lookup_ignores_case_as_mysql_does(client: Any, package: Path) -> None:
    run = submit(client, package, run_name="churn-tuesday")
    found = client.list_runs(filter=by_name("CHURN-Tuesday"), page_size=10)
    assert [(r.run_id, r.display_name) for r in found.runs] == [(run.run_id, "churn-tuesday")]


def test_list_runs_pages(client: Any, package: Path) -> None:
    ids = {submit(client, package, run_name=f"churn-{day}").run_id for day in ("mon", "tue", "wed")}
    first = client.list_runs(page_size=2)
    assert len(first.runs) == 2 and first.total_size == 3 and first.next_page_token
    rest = client.list_runs(page_token=first.next_page_token, page_size=2)
    assert len(rest.runs) == 1 and rest.next_page_token is None
    assert {r.run_id for r in first.runs + rest.runs} == ids


def test_list_runs_refuses_what_the_server_refuses(client: Any, package: Path) -> None:
    submit(client, package)
    colour = json.dumps({"predicates": [{"operation": 1, "key": "colour", "stringValue": "red"}]})
    with pytest.raises(ApiException) as exc:
        client.list_runs(filter=colour)
    assert exc.value.status == 400
    assert error_of(exc)["message"] == 'no support for filtering on unrecognized field "colour".'
    with pytest.raises(ApiException) as exc:
        client.list_runs(experiment_id="no-such-experiment")
    assert exc.value.status == 404


# -- scripted life of a run ---------------------------------------------------------------------


def test_scripted_run_succeeds_with_task_details(fake: FakeKFP, client: Any, package: Path) -> None:
    run_id = submit(client, package).run_id
    fake.set_state(run_id, "RUNNING")
    assert client.get_run(run_id).state == "RUNNING"

    fake.set_task(run_id, "prep", "RUNNING")
    fake.set_task(run_id, "prep", "SUCCEEDED", outputs={"data": ["gs://bucket/runs/1/prep/data"]})
    fake.set_task(run_id, "condition-1", "RUNNING")
    fake.set_task(run_id, "train", "SUCCEEDED", outputs={"model": ["gs://bucket/runs/1/train/model"]})
    fake.set_state(run_id, "SUCCEEDED")

    done = client.wait_for_run_completion(run_id, timeout=5, sleep_duration=0)
    assert done.state == "SUCCEEDED"
    assert done.finished_at.year > 1970
    tasks = {t.display_name: t for t in done.run_details.task_details}
    assert {name: t.state for name, t in tasks.items()} == {
        "prep": "SUCCEEDED",
        "condition-1": "RUNNING",
        "train": "SUCCEEDED",
    }
    assert [s.state for s in tasks["prep"].state_history] == ["RUNNING", "SUCCEEDED"]
    assert tasks["prep"].end_time.year > 1970 and tasks["condition-1"].end_time.year == 1970
    # The API lists ML Metadata artifact ids; the URIs live in MLMD, i.e. the fake's `artifacts`.
    (artifact_id,) = tasks["prep"].outputs["data"].artifact_ids
    assert fake.artifacts[artifact_id]["uri"] == "gs://bucket/runs/1/prep/data"
    assert fake.output_uris(run_id, "train") == {"model": ["gs://bucket/runs/1/train/model"]}


def test_scripted_failure_reports_its_error(fake: FakeKFP, client: Any, package: Path) -> None:
    run_id = submit(client, package).run_id
    fake.set_state(run_id, "RUNNING")
    fake.set_task(run_id, "prep", "FAILED", error_message="prep: OOMKilled")
    fake.set_state(run_id, "FAILED", error_message="prep: OOMKilled")

    failed = client.wait_for_run_completion(run_id, timeout=5, sleep_duration=0)
    assert failed.state == "FAILED"
    assert failed.error.message == "prep: OOMKilled"
    assert failed.run_details.task_details[0].error.message == "prep: OOMKilled"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda f, r: f.set_task(r, "evaluate", "RUNNING"), "'evaluate' is not a task", id="unknown-task"),
        pytest.param(
            lambda f, r: f.set_task(r, "prep", "SUCCEEDED", outputs={"model": ["gs://b/m"]}),
            "Task 'prep' has no output artifact 'model'; it declares data.",
            id="undeclared-output",
        ),
        pytest.param(lambda f, r: f.set_task(r, "prep", "DONE"), "'DONE' is not a V2beta1RuntimeState", id="bad-state"),
        pytest.param(
            lambda f, r: f.set_state(r, "SUCCEEDED", error_message="x"),
            "An error_message only goes with state FAILED",
            id="error-without-failure",
        ),
        pytest.param(lambda f, r: f.set_state("no-such-run", "RUNNING"), "There is no run 'no-such-run'.", id="no-run"),
    ],
)
def test_scripting_refuses_what_the_run_could_not_report(
    fake: FakeKFP, client: Any, package: Path, call: Callable[[FakeKFP, str], Any], message: str
) -> None:
    run_id = submit(client, package).run_id
    with pytest.raises(ValueError, match=re.escape(message)):
        call(fake, run_id)


@pytest.mark.parametrize("polls", [0, 1, 3])
def test_terminate_reports_canceling_then_canceled(fake: FakeKFP, client: Any, package: Path, polls: int) -> None:
    run_id = submit(client, package).run_id
    fake.set_state(run_id, "RUNNING")
    fake.set_task(run_id, "prep", "RUNNING")
    fake.terminate_after_polls = polls

    assert client.terminate_run(run_id) == {}
    assert fake.requests[-1] == ("POST", f"/apis/v2beta1/runs/{run_id}:terminate", None)
    assert [client.get_run(run_id).state for _ in range(polls)] == ["CANCELING"] * polls
    canceled = client.get_run(run_id)
    assert canceled.state == "CANCELED"
    assert canceled.finished_at.year > 1970
    assert canceled.run_details.task_details[0].state == "CANCELED"
    assert [s.state for s in canceled.state_history] == ["PENDING", "RUNNING", "CANCELING", "CANCELED"]

    with pytest.raises(ApiException) as exc:
        client.terminate_run(run_id)
    assert (exc.value.status, error_of(exc)["message"]) == (400, f"Failed to terminate a run {run_id}. Row not found.")


def test_wait_for_run_completion_does_not_stop_at_canceled(fake: FakeKFP, client: Any, package: Path) -> None:
    # kfp's finish states are succeeded/failed/skipped/error: an adapter must watch for CANCELED itself.
    run_id = submit(client, package).run_id
    fake.terminate_after_polls = 0
    client.terminate_run(run_id)
    with pytest.raises(TimeoutError):
        client.wait_for_run_completion(run_id, timeout=0.2, sleep_duration=0.05)
    assert client.get_run(run_id).state == "CANCELED"


def test_an_unknown_run_is_404(client: Any) -> None:
    for call in (client.get_run, client.terminate_run):
        with pytest.raises(ApiException) as exc:
            call("no-such-run")
        assert exc.value.status == 404
        assert error_of(exc) == {
            "code": 5,
            "message": "Run no-such-run not found",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.Status", "code": 5, "message": "Run no-such-run not found"}
            ],
        }
