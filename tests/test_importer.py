"""Bringing an artifact that already exists into a pipeline, as kfp's `dsl.importer` does.

`importer(uri, Dataset, metadata=...)` is a step whose one output, `artifact`, is the object at
`uri`: nothing is copied and nothing runs. The scheduler checks the URI exists; a step reading it
gets its path, type and metadata. In a PipelineSpec it is kfp's importer task and executor; in
a SageMaker definition there is no step at all, the consumers' inputs point at the URI.
"""

from __future__ import annotations

import json

import pytest

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.core.artifacts import ArtifactStore
from stackhop.errors import PipelineDefinitionError
from stackhop.testing.kubernetes import FakeKubernetes

from conftest import emulated_stacks, k8s_stack

IMPORTING = """
from stackhop import Dataset, Input, InputPath, OutputPath, container_step, importer, pipeline, step


@step
def count_rows(data: Input[Dataset]) -> str:
    rows = sum(1 for line in open(data.path) if line.strip()) - 1
    return f"{rows} rows from {data.metadata['source']}"


@pipeline
def census(uri: str):
    raw = importer(uri, Dataset, metadata={"source": "uci"})
    count_rows(data=raw.output)
    container_step("head", image="busybox", command=["sh", "-c", "head -n 1 $0 > $1"],
                   args=[InputPath("data"), OutputPath("header")], inputs={"data": raw.output},
                   outputs={"header": str})
"""

CSV = b"sepal,petal\n5.1,1.4\n4.9,1.4\n4.7,1.3\n"
STACKS = emulated_stacks("importer")


@pytest.fixture
def census(write_pipeline, write_config):
    write_config(STACKS)
    return write_pipeline(IMPORTING).census


def put(uri: str) -> str:
    ArtifactStore.for_uri(uri).write_bytes(uri, CSV)
    return uri


def read(handle) -> tuple[str, str]:
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    return handle.artifact("count_rows", "output").value, handle.artifact("head", "header").value.strip()


def test_a_local_run_reads_the_file_where_it_is(census, project) -> None:
    uri = put(f"file://{project}/data/iris.csv")
    handle = stackhop.run(census, parameters={"uri": uri}, cache=False, progress=False)
    assert read(handle) == ("3 rows from uci", "sepal,petal")
    imported = handle.artifact("importer", "artifact")
    assert (imported.uri, imported.type, imported.metadata) == (uri, "Dataset", {"source": "uci"})
    assert handle.steps()["importer"].message == f"imported {uri}"


def test_a_reader_is_served_from_cache_until_the_imported_file_changes(census, project) -> None:
    uri = put(f"file://{project}/data/iris.csv")
    first = stackhop.run(census, parameters={"uri": uri}, progress=False)
    again = stackhop.run(census, parameters={"uri": uri}, progress=False)
    assert read(first) == read(again) and again.steps()["count_rows"].status == StepStatus.CACHED
    ArtifactStore.for_uri(uri).write_bytes(uri, CSV + b"6.3,4.9\n")
    changed = stackhop.run(census, parameters={"uri": uri}, progress=False)
    assert read(changed)[0] == "4 rows from uci", "a new file is new input, not a cache hit"


def test_a_missing_uri_fails_the_importer_in_one_sentence_and_skips_its_readers(census, project) -> None:
    uri = f"file://{project}/data/nowhere.csv"
    handle = stackhop.run(census, parameters={"uri": uri}, cache=False, progress=False)
    assert handle.status == RunStatus.FAILED
    steps = handle.steps()
    assert steps["importer"].message == (f"step 'importer' imports {uri}, which does not exist; check the URI, or "
                                         "write the artifact there first")
    assert steps["count_rows"].status == StepStatus.SKIPPED and steps["head"].status == StepStatus.SKIPPED


def test_an_earlier_runs_artifact_comes_with_its_type_and_metadata(census, project, write_pipeline) -> None:
    first = stackhop.run(census, parameters={"uri": put(f"file://{project}/data/iris.csv")}, progress=False)
    earlier = stackhop.get_run(first.run_id).artifact("importer", "artifact")
    module = write_pipeline(IMPORTING.replace("def census(uri: str):\n    raw = importer(uri, Dataset, metadata={\"source\": \"uci\"})",
                                              "def again():\n    raw = importer(EARLIER)"))
    module.EARLIER = earlier
    handle = stackhop.run(module.again, cache=False, progress=False)
    assert read(handle) == ("3 rows from uci", "sepal,petal")


def test_the_importer_runs_through_the_fake_kubernetes_server_without_a_job(census, project, write_config) -> None:
    uri = put(f"file://{project}/data/iris.csv")
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        handle = stackhop.run(census, parameters={"uri": uri}, cache=False, progress=False)
        assert handle.wait(timeout=180) == RunStatus.SUCCEEDED, handle.state().message
        assert read(handle) == ("3 rows from uci", "sepal,petal")
        steps = [j["metadata"]["annotations"].get("stackhop.dev/step-name") for j in kube.objects("Job")]
        assert "importer" not in steps and "count_rows" in steps


def test_the_importer_runs_from_its_compiled_sagemaker_definition(write_pipeline, write_config, aws) -> None:
    write_config(STACKS)
    census = write_pipeline(IMPORTING.split("    container_step(")[0]).census
    uri = put("s3://ml-artifacts/raw/iris.csv")
    compiled = json.loads(stackhop.compile(census, "sm").files["sagemaker-pipeline.json"])
    assert not [s for s in compiled["Steps"] if "importer" in s["Name"]], "SageMaker has no importer: nothing runs"
    handle = stackhop.run(census, "sm", {"uri": uri}, emulate=True, cache=False, progress=False)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("count_rows", "output").value == "3 rows from uci"


def test_a_container_step_on_sagemaker_downloads_an_imported_object_named_in_the_pipeline(write_pipeline, write_config,
                                                                                           aws) -> None:
    write_config(STACKS)
    uri = put("s3://ml-artifacts/raw/iris.csv")
    module = write_pipeline(IMPORTING.replace("def census(uri: str):", f"def census(uri: str = {uri!r}):")
                            .replace("importer(uri,", f"importer({uri!r},"))
    handle = stackhop.run(module.census, "sm", emulate=True, cache=False, progress=False)
    assert read(handle) == ("3 rows from uci", "sepal,petal")
    steps = json.loads(stackhop.compile(module.census, "sm").files["sagemaker-pipeline.json"])["Steps"]
    head = next(s for s in steps if s["Name"].startswith("head"))
    assert head["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] == uri


def test_sagemaker_refuses_a_container_path_to_an_import_it_cannot_name(census, aws) -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        stackhop.compile(census, "sm")
    assert "InputPath('data') reads an importer whose URI is a pipeline parameter" in str(caught.value)


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_the_importer_runs_from_its_compiled_pipeline_spec(census, gcs, stack) -> None:
    uri = put(f"gs://ml-artifacts/raw/{stack}-iris.csv")
    handle = stackhop.run(census, stack, {"uri": uri}, emulate=True, cache=False, progress=False)
    assert read(handle) == ("3 rows from uci", "sepal,petal")


KFP_IMPORTING = """
from kfp import dsl


@dsl.component(base_image="python:3.11")
def count_rows(data: dsl.Input[dsl.Dataset]) -> str:
    return ""


@dsl.pipeline
def census(uri: str):
    raw = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset, metadata={"source": "uci"})
    count_rows(data=raw.output)
    fixed = dsl.importer(artifact_uri="gs://ml-artifacts/raw/iris.csv", artifact_class=dsl.Dataset, reimport=True)
    count_rows(data=fixed.output)
"""


def test_the_importer_task_and_executor_have_kfps_own_shape(write_pipeline, write_config, tmp_path) -> None:
    from kfp import compiler
    import yaml

    write_config(STACKS)
    module = write_pipeline(IMPORTING.replace(
        "    count_rows(data=raw.output)\n",
        "    count_rows(data=raw.output)\n    fixed = importer('gs://ml-artifacts/raw/iris.csv', Dataset, reimport=True)\n"
        "    count_rows(data=fixed.output)\n"))
    ours = json.loads(stackhop.compile(module.census, "vertex").files["pipeline.json"])
    compiler.Compiler().compile(write_pipeline(KFP_IMPORTING).census, str(tmp_path / "kfp.yaml"))
    theirs = yaml.safe_load((tmp_path / "kfp.yaml").read_text())
    for name in ("importer", "importer-2"):
        task = lambda spec: {k: v for k, v in spec["root"]["dag"]["tasks"][name].items() if k != "componentRef"}
        assert task(ours) == task(theirs), name
        assert ours["components"][f"comp-{name}"] == theirs["components"][f"comp-{name}"]
        assert ours["deploymentSpec"]["executors"][f"exec-{name}"] == theirs["deploymentSpec"]["executors"][f"exec-{name}"]
    reader = ours["root"]["dag"]["tasks"]["count-rows"]
    assert reader["inputs"]["artifacts"] == theirs["root"]["dag"]["tasks"]["count-rows"]["inputs"]["artifacts"]
    assert reader["dependentTasks"] == ["importer"]


@pytest.mark.parametrize("call,fragment", [
    ("importer('data/iris.csv', Dataset)", "needs a URI (s3://, gs://, file://) or an absolute path, not the relative "
                                           "path 'data/iris.csv'"),
    ("importer(3, Dataset)", "needs a URI string, a str pipeline parameter or an earlier run's artifact, not 3"),
    ("importer('s3://b/k', int)", "artifact_type must be an artifact class such as Dataset or Model"),
    ("importer('s3://b/k', Dataset, metadata={'when': object()})", "must be a dict of str keys and JSON values"),
    ("importer(n, Dataset)", "takes its URI from pipeline parameter 'n', which is int; declare it `str`"),
])
def test_a_bad_importer_is_refused_in_one_sentence(write_pipeline, call, fragment) -> None:
    module = write_pipeline("from stackhop import Dataset, importer, pipeline\n\n"
                            f"@pipeline\ndef bad(n: int = 1):\n    {call}\n")
    with pytest.raises(PipelineDefinitionError) as caught:
        module.bad.build()
    assert fragment in str(caught.value)
    assert str(caught.value).count(". ") == 0, "one sentence"
