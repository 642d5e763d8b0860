"""Vertex AI and Kubeflow compile: one PipelineSpec, proven with kfp's own protobufs, loader and compiler.

Every document parses strictly into `pipeline_spec_pb2.PipelineSpec` (unknown fields fail),
loads with `kfp.components.load_component_from_file`, and has the shape kfp itself gives the
same pipeline. The Kubeflow platform spec parses into kfp-kubernetes' `KubernetesExecutorConfig`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format
from kfp.components import load_component_from_file
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

import stackhop
from stackhop.adapters.vertex.adapter import accelerator_enums
from stackhop.errors import CapabilityError, ConfigError, PipelineDefinitionError

from conftest import EXAMPLES

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"

STACKS = """
stacks:
  vertex:
    adapter: vertex
    artifact_root: gs://ml-artifacts/stackhop
    defaults: {image: "us-docker.pkg.dev/p/ml/train:1.0"}
    settings: {project: my-project, location: europe-west4}
  kfp:
    adapter: kfp
    artifact_root: gs://ml-artifacts/stackhop
    defaults: {image: "registry.example.com/ml/train:1.0"}
    settings:
      host: http://localhost:8080
      image_pull_secrets: [regcred]
  vertex-s3:
    adapter: vertex
    artifact_root: s3://bucket/x
    defaults: {image: "img:1"}
"""

KITCHEN_SINK = """
from stackhop import (Dataset, ExitHandler, If, Input, InputPath, Model, Output, OutputPath, ParallelFor,
                      container_step, pipeline, step)

@step
def load_data(data: Output[Dataset], rows: int = 10) -> int:
    return rows

@step
def train(data: Input[Dataset], model: Output[Model], lr: float = 0.1) -> float:
    return 0.9

@step
def shard(i: int, name: str) -> str:
    return name

@step
def notify(channel: str) -> None: ...

@pipeline(description="everything at once")
def sink(lr: float = 0.1, shards: list = [{"i": 1, "name": "a"}, {"i": 2, "name": "b"}], mode: str = "full"):
    cleanup = notify(channel="#ml")
    with ExitHandler(cleanup):
        data = load_data()
        trained = (train(data=data.outputs["data"], lr=lr)
                   .set_resources(cpu="500m", memory="1Gi", cpu_limit="2", memory_limit="4Gi", gpu=1, accelerator="l4")
                   .set_retry(3, backoff_seconds=30)
                   .set_timeout(3600)
                   .set_env(B="2", A="1"))
        with If((trained.outputs["output"] > 0.5) & (mode == "full")):
            container_step("report", image="alpine:3", command=["cat", InputPath("m")], inputs={"m": trained.outputs["model"]})
        with ParallelFor(shards, parallelism=2) as item:
            shard(i=item.i, name=item["name"]).set_caching(False)
        with ParallelFor([1, 2, 3]) as n:
            load_data(rows=n).set_name("more_data")
"""


@pytest.fixture
def stacks(write_config):
    write_config(STACKS)


@pytest.fixture
def training(project, stacks, write_pipeline):
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    return write_pipeline((project / "training_example.py").read_text(), name="training_example").training_pipeline


@pytest.fixture
def sink(stacks, write_pipeline):
    return write_pipeline(KITCHEN_SINK).sink


def documents(pipeline: Any, stack: str) -> list[dict[str, Any]]:
    compiled = stackhop.compile(pipeline, stack)
    name = "pipeline.json" if stack.startswith("vertex") else "pipeline.yaml"
    return list(yaml.safe_load_all(compiled.files[name]))


def strict(doc: dict[str, Any]) -> pipeline_spec_pb2.PipelineSpec:
    return json_format.ParseDict(doc, pipeline_spec_pb2.PipelineSpec())


def write(tmp: Path, text: bytes, name: str) -> Path:
    path = tmp / name
    path.write_bytes(text)
    return path


# ----------------------------------------------------------------------------- validity


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
@pytest.mark.parametrize("which", ["training", "sink"])
def test_every_document_parses_strictly_and_loads_with_kfp(request, project, stack, which) -> None:
    pipeline = request.getfixturevalue(which)
    compiled = stackhop.compile(pipeline, stack)
    (name,) = [n for n in compiled.files if n.startswith("pipeline.")]
    spec = list(yaml.safe_load_all(compiled.files[name]))[0]

    parsed = strict(spec)
    component = load_component_from_file(str(write(project, compiled.files[name], name)))

    assert parsed.schema_version == "2.1.0"
    assert parsed.pipeline_info.name == component.name == pipeline.build().name
    assert spec["defaultPipelineRoot"] == "gs://ml-artifacts/stackhop"
    assert set(component.component_spec.inputs) == {p.name for p in pipeline.build().parameters} | {"stackhop_code"}


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_compile_is_deterministic_across_processes(project, training, stack) -> None:
    first = stackhop.compile(training, stack)
    code = ("import stackhop, sys, training_example; sys.stdout.buffer.write("
            f"stackhop.compile(training_example.training_pipeline, {stack!r}).digest().encode())")
    other = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=True,
                           env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "7"})
    assert first.files == stackhop.compile(training, stack).files
    assert other.stdout == first.digest()


def test_one_comp_and_exec_pair_per_step_with_unique_dns_names(sink) -> None:
    (spec,) = documents(sink, "vertex")
    steps = [s.name for s in sink.build().steps]
    tasks = [n.replace("_", "-") for n in steps]
    assert sorted(spec["deploymentSpec"]["executors"]) == sorted(f"exec-{t}" for t in tasks)
    executor_components = {k for k, v in spec["components"].items() if "executorLabel" in v}
    assert executor_components == {f"comp-{t}" for t in tasks}
    assert all(re.fullmatch(r"[a-z][a-z0-9-]*", t) for t in tasks)


# ----------------------------------------------------------------------------- how steps run


def test_a_step_runs_the_entrypoint_with_kfp_placeholders_for_its_data(training) -> None:
    (spec,) = documents(training, "vertex")
    container = spec["deploymentSpec"]["executors"]["exec-evaluate-model"]["container"]
    args = container["args"]
    pairs = dict(zip(args[::2], args[1::2]))

    assert container["command"] == ["python", "-m", "stackhop.entrypoint"]
    assert args[:6] == ["--spec", pairs["--spec"], "--step", "evaluate_model",
                        "--wiring", "stackhop.adapters.pipelinespec.runtime:PipelineSpecWiring"]
    assert container["image"] == "us-docker.pkg.dev/p/ml/train:1.0"
    assert pairs["--spec"].startswith("gs://ml-artifacts/stackhop/_stackhop/specs/")
    assert "--run-id" not in pairs, "the run is told by the step's meta location, never by an input"
    assert pairs["--run-root"] == "gs://ml-artifacts/stackhop/training-pipeline"
    assert pairs["--meta"] == "{{$.outputs.artifacts['stackhop_meta'].uri}}"
    flags = [f"{a} {b}" for a, b in zip(args[::2], args[1::2])]
    assert "--input-artifact model={{$.inputs.artifacts['model'].uri}}" in flags
    assert "--input-artifact test_data={{$.inputs.artifacts['test_data'].uri}}" in flags
    assert "--input min_accuracy={{$.inputs.parameters['min_accuracy']}}" in flags
    assert "--output-artifact metrics={{$.outputs.artifacts['metrics'].uri}}" in flags
    assert "--output-parameter output={{$.outputs.parameters['output'].output_file}}" in flags
    assert "--upstream train_model={{$.inputs.artifacts['stackhop_meta_train_model'].uri}}" in flags


def test_nothing_that_differs_between_runs_reaches_a_task_so_kfp_and_vertex_can_serve_it_from_their_cache(
        training) -> None:
    """KFP's driver keys its cache on a task's resolved inputs (a runtimeValue such as `{{$.pipeline_job_name}}`
    resolves to each run's own name) and on its command as written; so neither may carry the run. The run is
    told by where the launcher puts the step's meta, under the run's own pipeline root, and KFP's meta mirror is
    placed from that too."""
    spec = documents(training, "kfp")[0]
    dags = [spec["root"], *(c for c in spec["components"].values() if "dag" in c)]
    tasks = {name: t for dag in dags for name, t in dag["dag"]["tasks"].items()
             if "executorLabel" in spec["components"][t["componentRef"]["name"]]}
    assert set(tasks) == {"load-data", "train-model", "evaluate-model", "deploy-model"}
    for task_name, task in tasks.items():
        executor = spec["deploymentSpec"]["executors"][spec["components"][task["componentRef"]["name"]]["executorLabel"]]
        args = executor["container"]["args"]
        assert re.findall(r"\{\{\$\.pipeline_[a-z_]+\}\}", json.dumps(task) + " ".join(args)) == [], task_name
        assert args[args.index("--mirror-step") + 1] == args[args.index("--step") + 1]


def test_a_step_finds_its_run_below_the_run_root_and_mirrors_its_meta_into_that_runs_layout() -> None:
    from stackhop.adapters.pipelinespec.runtime import PipelineSpecWiring, mirror_uri, run_of

    root = "gs://ml/kfp/churn"
    meta = f"{root}/20261204-101010-abcdef/churn/9f1c-kfp-run/train-model/4711/stackhop_meta"
    wiring = PipelineSpecWiring(meta=meta, run_root=root, mirror_step="train_model")

    assert wiring.run_id == "20261204-101010-abcdef"
    assert wiring.mirror.startswith(mirror_uri("gs://ml/kfp", "churn", "20261204-101010-abcdef", "train_model", ""))
    other = PipelineSpecWiring(meta=meta.replace("/4711/", "/4712/"), run_root=root, mirror_step="train_model")
    assert other.mirror != wiring.mirror, "two tasks of one run mirror to two folders"
    assert run_of("gs://elsewhere/x/stackhop_meta", root).startswith("external-"), "submitted by hand: a folder of its own"


def test_artifacts_are_typed_and_wired_from_the_producing_task(training) -> None:
    (spec,) = documents(training, "vertex")
    comp = spec["components"]["comp-train-model"]
    task = spec["root"]["dag"]["tasks"]["train-model"]

    assert comp["outputDefinitions"]["artifacts"]["model"] == {
        "artifactType": {"schemaTitle": "system.Model", "schemaVersion": "0.0.1"}}
    assert comp["outputDefinitions"]["artifacts"]["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert comp["outputDefinitions"]["parameters"] == {"output": {"parameterType": "NUMBER_DOUBLE"}}
    assert task["inputs"]["artifacts"]["dataset"] == {
        "taskOutputArtifact": {"outputArtifactKey": "data", "producerTask": "load-data"}}
    assert task["inputs"]["parameters"]["n_estimators"] == {"componentInputParameter": "n_estimators"}
    assert task["dependentTasks"] == ["load-data"]
    assert spec["root"]["inputDefinitions"]["parameters"]["min_accuracy"] == {
        "parameterType": "NUMBER_DOUBLE", "defaultValue": 0.85, "isOptional": True}


def test_a_condition_is_a_sub_dag_whose_trigger_reads_pipeline_channels_in_cel(training, sink) -> None:
    (spec,) = documents(training, "vertex")
    cond = spec["root"]["dag"]["tasks"]["condition-1"]
    assert cond["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--evaluate-model-output'] == 'yes'")
    assert cond["inputs"]["parameters"]["pipelinechannel--evaluate-model-output"] == {
        "taskOutputParameter": {"outputParameterKey": "output", "producerTask": "evaluate-model"}}
    assert cond["dependentTasks"] == ["evaluate-model", "train-model"]
    inner = spec["components"]["comp-condition-1"]["dag"]["tasks"]["deploy-model"]
    assert inner["inputs"]["artifacts"]["model"] == {"componentInputArtifact": "pipelinechannel--train-model-model"}

    (spec,) = documents(sink, "vertex")
    group = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]["condition-1"]
    assert group["triggerPolicy"]["condition"] == (
        "inputs.parameter_values['pipelinechannel--train-output'] > 0.5 && "
        "inputs.parameter_values['pipelinechannel--mode'] == 'full'")


def test_loops_iterate_with_parameter_iterators_and_read_item_fields(sink) -> None:
    (spec,) = documents(sink, "vertex")
    body = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    over_param, over_list = body["for-loop-1"], body["for-loop-2"]

    assert over_param["parameterIterator"] == {"itemInput": "pipelinechannel--shards-loop-item",  # kfp's name
                                               "items": {"inputParameter": "pipelinechannel--shards"}}
    assert over_param["iteratorPolicy"] == {"parallelismLimit": 2}
    assert over_list["parameterIterator"]["items"] == {"raw": "[1,2,3]"}
    shard = spec["components"]["comp-for-loop-1"]["dag"]["tasks"]["shard"]
    assert shard["inputs"]["parameters"]["name"] == {"componentInputParameter": "pipelinechannel--shards-loop-item",
                                                     "parameterExpressionSelector": 'parseJson(string_value)["name"]'}
    assert shard["cachingOptions"] == {"enableCache": False}
    assert spec["components"]["comp-for-loop-2"]["inputDefinitions"]["parameters"][
        "pipelinechannel--for-loop-2-loop-item"] == {"parameterType": "NUMBER_INTEGER"}


def test_the_exit_step_waits_for_all_upstream_tasks_and_receives_the_final_status(sink) -> None:
    (spec,) = documents(sink, "vertex")
    notify = spec["root"]["dag"]["tasks"]["notify"]
    assert notify["triggerPolicy"] == {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
    assert notify["dependentTasks"] == ["exit-handler-1"]
    assert notify["inputs"]["parameters"]["stackhop_final_status"] == {"taskFinalStatus": {"producerTask": "exit-handler-1"}}
    assert spec["components"]["comp-notify"]["inputDefinitions"]["parameters"]["stackhop_final_status"] == {
        "parameterType": "TASK_FINAL_STATUS", "isOptional": True}


def test_retries_resources_env_and_timeouts_are_per_task(sink) -> None:
    (vertex,) = documents(sink, "vertex")
    task = vertex["components"]["comp-exit-handler-1"]["dag"]["tasks"]["train"]
    container = vertex["deploymentSpec"]["executors"]["exec-train"]["container"]

    assert task["retryPolicy"] == {"maxRetryCount": 3, "backoffDuration": "30s", "backoffFactor": 2.0,
                                   "backoffMaxDuration": "300s"}
    assert container["resources"] == {
        "cpuLimit": 2.0, "resourceCpuLimit": "2", "memoryLimit": 4.294967296, "resourceMemoryLimit": "4Gi",
        "accelerator": {"type": "NVIDIA_L4", "count": "1", "resourceType": "NVIDIA_L4", "resourceCount": "1"}}
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"},
                                {"name": "STACKHOP_STEP", "value": "train"}]
    args = container["args"]
    assert args[:6] == ["--spec", args[1], "--step", "train", "--timeout", "3600"]  # the entrypoint's, not the wiring's

    kfp = documents(sink, "kfp")[0]["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert kfp["resourceCpuRequest"] == "500m" and kfp["resourceMemoryRequest"] == "1Gi"
    assert kfp["cpuRequest"] == 0.5 and kfp["resourceCpuLimit"] == "2"
    assert kfp["accelerator"]["type"] == "nvidia.com/gpu"


# ----------------------------------------------------------------------------- Vertex specifics


def test_vertex_names_accelerators_with_its_own_enum(project) -> None:
    from google.cloud.aiplatform_v1.types import AcceleratorType

    assert set(accelerator_enums().values()) <= {a.name for a in AcceleratorType}


def test_vertex_refuses_an_accelerator_it_does_not_offer(stacks, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline

        @step
        def train() -> None: ...

        @pipeline
        def p():
            train().set_resources(gpu=1, accelerator="a10g")
    """)
    with pytest.raises(PipelineDefinitionError, match=r"step 'train' asks for accelerator 'nvidia-a10g', which Vertex AI"):
        stackhop.compile(module.p, "vertex")


def test_vertex_compiles_requests_as_limits_and_says_so(stacks, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline

        @step(resources={"cpu": "1", "memory": "2Gi"})
        def train() -> None: ...

        @pipeline
        def p():
            train().set_resources(cpu="1", memory="2Gi", cpu_limit="4")
    """)
    compiled = stackhop.compile(module.p, "vertex")
    resources = json.loads(compiled.files["pipeline.json"])["deploymentSpec"]["executors"]["exec-train"]["container"][
        "resources"]
    assert resources == {"cpuLimit": 4.0, "resourceCpuLimit": "4", "memoryLimit": 2.147483648,
                         "resourceMemoryLimit": "2Gi"}
    assert not any("Request" in k for k in resources)


@pytest.mark.parametrize("setter, feature", [
    ('.add_node_selector("pool", "gpu")', "node_selectors"),
    ('.add_toleration("gpu", "Exists", effect="NoSchedule")', "tolerations"),
    ('.set_secret_env("TOKEN", "creds", "token")', "secrets"),
])
def test_vertex_refuses_kubernetes_only_settings_naming_the_step(stacks, write_pipeline, setter, feature) -> None:
    module = write_pipeline(f"""
        from stackhop import step, pipeline

        @step
        def train() -> None: ...

        @pipeline
        def p():
            train(){setter}
    """)
    with pytest.raises(CapabilityError, match=rf"step 'train' needs {feature}, which stack 'vertex' \(adapter 'vertex'\)"
                                              r" does not support; adapters that do: .*kfp"):
        stackhop.compile(module.p, "vertex")


def test_vertex_refuses_a_resource_op(stacks, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import pipeline, resource_op

        @pipeline
        def p():
            resource_op("make", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    """)
    with pytest.raises(CapabilityError, match=r"step 'make' needs resource_ops"):
        stackhop.compile(module.p, "vertex")


def test_vertex_needs_a_cloud_storage_artifact_root(training) -> None:
    with pytest.raises(ConfigError, match=r"stack 'vertex-s3': Vertex AI .* set artifact_root to a gs:// URI"):
        stackhop.compile(training, "vertex-s3")


def test_names_that_collide_once_sanitised_are_refused(stacks, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline

        @step
        def load_data() -> None: ...

        @pipeline
        def p():
            load_data()
            load_data().set_name("load-data")
    """)
    with pytest.raises(PipelineDefinitionError, match=r"'load-data' and 'load_data' both become task 'load-data'"):
        stackhop.compile(module.p, "vertex")


# ----------------------------------------------------------------------------- Kubeflow specifics


def test_kubeflow_puts_kubernetes_settings_in_a_platform_spec(stacks, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline

        @step
        def train() -> None: ...

        @pipeline
        def p():
            (train().add_node_selector("pool", "gpu").add_toleration("dedicated", "Equal", "ml", "NoSchedule")
                    .set_secret_env("TOKEN", "creds", "token").set_resources(gpu=1, accelerator="t4"))
    """)
    spec, platform = documents(module.p, "kfp")
    strict(spec)
    config = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]
    parsed = json_format.ParseDict(config, kubernetes_executor_config_pb2.KubernetesExecutorConfig())

    assert dict(parsed.node_selector.labels) == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4", "pool": "gpu"}
    assert [(t.key, t.operator, t.effect) for t in parsed.tolerations] == [
        ("dedicated", "Equal", "NoSchedule"), ("nvidia.com/gpu", "Exists", "NoSchedule")]
    assert [(s.secret_name, [(k.secret_key, k.env_var) for k in s.key_to_env]) for s in parsed.secret_as_env] == [
        ("creds", [("token", "TOKEN")])]
    assert [s.secret_name for s in parsed.image_pull_secret] == ["regcred"]
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    assert "creds" not in json.dumps(spec)  # the secret is a reference in the platform spec only


def test_kubeflow_leaves_out_the_platform_spec_when_nothing_needs_it(stacks, write_config, training) -> None:
    write_config(STACKS.replace("image_pull_secrets: [regcred]", "experiment: ml"))
    assert len(documents(training, "kfp")) == 1


# ----------------------------------------------------------------------------- shape against kfp's own compiler


def _shape(spec: dict[str, Any]) -> dict[str, Any]:
    """Per DAG: each task's kind and wiring, with group names reduced to their kind (kfp numbers them globally)."""

    def group_kind(name: str) -> str:
        return re.sub(r"-\d+$", "", name)

    def dag_shape(dag: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, task in dag["tasks"].items():
            comp = spec["components"][task["componentRef"]["name"]]
            key = group_kind(name) if "dag" in comp else name
            out[key] = {
                "kind": "dag" if "dag" in comp else "executor",
                "deps": sorted(group_kind(d) for d in task.get("dependentTasks", [])),
                "trigger": sorted(task.get("triggerPolicy", {})),
                "iterator": sorted(task.get("parameterIterator", {}).get("items", {})),
                "inner": dag_shape(comp["dag"]) if "dag" in comp else None,
            }
        return out

    return dag_shape(spec["root"]["dag"])


KFP_EQUIVALENT = '''
from kfp import dsl

@dsl.component(base_image="python:3.11")
def load_data(data: dsl.Output[dsl.Dataset], n_samples: int = 1000) -> int:
    return n_samples

@dsl.component(base_image="python:3.11")
def train_model(dataset: dsl.Input[dsl.Dataset], model: dsl.Output[dsl.Model], metrics: dsl.Output[dsl.Metrics],
                n_estimators: int = 100) -> float:
    return 0.9

@dsl.component(base_image="python:3.11")
def evaluate_model(model: dsl.Input[dsl.Model], test_data: dsl.Input[dsl.Dataset], metrics: dsl.Output[dsl.Metrics],
                   min_accuracy: float = 0.85) -> str:
    return "yes"

@dsl.component(base_image="python:3.11")
def deploy_model(model: dsl.Input[dsl.Model], endpoint_name: str = "production", deploy_dir: str = "d") -> str:
    return endpoint_name

@dsl.pipeline(name="training-pipeline")
def training_pipeline(min_accuracy: float = 0.85, n_estimators: int = 100, deploy_endpoint: str = "production",
                      deploy_dir: str = ".stackhop/deployments"):
    data = load_data()
    trained = train_model(dataset=data.outputs["data"], n_estimators=n_estimators)
    evaluated = evaluate_model(model=trained.outputs["model"], test_data=data.outputs["data"], min_accuracy=min_accuracy)
    with dsl.If(evaluated.outputs["Output"] == "yes"):
        deploy_model(model=trained.outputs["model"], endpoint_name=deploy_endpoint, deploy_dir=deploy_dir)
'''


def test_the_training_example_has_the_shape_kfp_compiles_for_it(project, training) -> None:
    from kfp import compiler

    (project / "kfp_training.py").write_text(KFP_EQUIVALENT)
    sys.path.insert(0, str(project))
    try:
        import kfp_training
    finally:
        sys.path.remove(str(project))
    compiler.Compiler().compile(kfp_training.training_pipeline, str(project / "kfp.yaml"))
    theirs = yaml.safe_load((project / "kfp.yaml").read_text())
    (ours,) = documents(training, "vertex")

    assert _shape(ours) == _shape(theirs)
    assert ours["root"]["inputDefinitions"]["parameters"].keys() - {"stackhop_code"} == \
        theirs["root"]["inputDefinitions"]["parameters"].keys()
    for comp in ("comp-train-model", "comp-evaluate-model"):
        assert ours["components"][comp]["outputDefinitions"]["artifacts"].keys() - {"stackhop_meta"} == \
            theirs["components"][comp]["outputDefinitions"]["artifacts"].keys()
    cel = ours["root"]["dag"]["tasks"]["condition-1"]["triggerPolicy"]["condition"]
    # kfp names a return value "Output", stackhop "output"
    assert cel == theirs["root"]["dag"]["tasks"]["condition-1"]["triggerPolicy"]["condition"].replace("Output", "output")


def _reference(name: str) -> list[dict[str, Any]]:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f"{path} is not beside this checkout, so kfp's reference compile cannot be read")
    return list(yaml.safe_load_all(path.read_text()))


def _keys(doc: Any, prefix: str = "") -> set[str]:
    """Every field path in a document: names the pipeline chooses become '*', values are not entered,
    and a DAG's fields read the same at the root and in a sub-DAG."""
    named = {"components", "executors", "tasks", "parameters", "artifacts"}
    leaves = {"defaultValue", "constant", "raw"}
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            parent = prefix.rsplit(".", 1)[-1]
            label = "*" if parent in named and not (parent in ("inputs", "outputs") and k in named) else k
            path = f"{prefix}.{label}" if prefix else label
            path = re.sub(r"^(root|components\.\*)\.dag", "dag", path)
            out.add(path)
            if k not in leaves:
                out |= _keys(v, path)
    elif isinstance(doc, list):
        for v in doc:
            out |= _keys(v, prefix + "[]")
    return out


def test_every_field_we_emit_is_one_kfp_emits_in_the_reference_compiles(sink) -> None:
    reference = _keys(_reference("kfp-three-step-condition.yaml")[0]) | _keys(
        _reference("kfp-control-flow-and-platform.yaml")[0])
    ours = _keys(documents(sink, "kfp")[0])
    # Ours alone, each for a reason: a pipeline description; selecting a field of a dict loop
    # item (the references loop over numbers); a runtime constant (the references pass none); a
    # loop over a literal list (the references loop over a parameter).
    allowed = {"pipelineInfo.description", "dag.tasks.*.parameterIterator.items.raw", "dag.tasks.*.inputs.parameters.*.parameterExpressionSelector",
               "dag.tasks.*.inputs.parameters.*.runtimeValue", "dag.tasks.*.inputs.parameters.*.runtimeValue.constant"}
    assert ours - reference - allowed == set()


def test_platform_spec_fields_are_those_kfp_kubernetes_emits(stacks, write_pipeline) -> None:
    (_, ref_platform) = _reference("kfp-control-flow-and-platform.yaml")
    module = write_pipeline("""
        from stackhop import step, pipeline

        @step
        def shard() -> None: ...

        @pipeline
        def p():
            shard().add_node_selector("a", "b").add_toleration("nvidia.com/gpu", "Exists", effect="NoSchedule") \\
                   .set_secret_env("DB_PASSWORD", "db-creds", "password")
    """)
    _, ours = documents(module.p, "kfp")
    theirs = ref_platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-shard"]
    mine = ours["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-shard"]
    assert mine["secretAsEnv"] == theirs["secretAsEnv"]
    assert mine["tolerations"] == theirs["tolerations"]
    assert set(mine) - {"imagePullSecret"} <= set(theirs)
