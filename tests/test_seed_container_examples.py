"""The seed documents' container examples, written the stackhop way and held to on every backend.

Two examples come from the seeds in ../shared/seeds:

- "Kubeflow Pipeline Basic 1": a KFP v1 `ContainerOp` running `echo 'Hello KFP!'` in `busybox`. In
  stackhop that is a `container_step(...)` (the ContainerOp's name, image and command), or a
  `@container_component` returning `ContainerSpec(image="busybox", command=["echo"], args=[...])`.
- The KFP v2 tutorial's `train_with_gpu` container component: `python train.py --epochs 50 --lr 0.001`
  in `gcr.io/my-project/ml-trainer:v1.2.0`, given one GPU with `.set_resources(gpu=1, accelerator="t4")`.

Compiled for Kubernetes, SageMaker, Vertex AI and Kubeflow, each step keeps its own image (the stack's
default image is only for stackhop's own Python), runs the user's command and args exactly as written
(no `python -m stackhop.entrypoint` in its container), and gets its GPU the way that backend asks for one.

The echo example then runs: locally, and from its compiled SageMaker definition and PipelineSpec through
the emulators. This machine's `echo` stands in for busybox's. Each run is checked by `assert_said_hello`.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.adapters.kubernetes.schemas import validate_manifest

from sagemaker_schema import load_patched

STACKHOP_IMAGES = {
    "k8s": "registry.example.com/ml/stackhop-steps:1.0",
    "sm": "123456789012.dkr.ecr.us-east-1.amazonaws.com/stackhop-steps:1.0",
    "vertex": "us-docker.pkg.dev/my-project/ml/stackhop-steps:1.0",
    "kfp": "registry.example.com/ml/stackhop-steps:1.0",
}

STACKS = f"""
default_stack: laptop
stacks:
  laptop:
    adapter: local
    settings: {{gpus: none}}
  k8s:
    adapter: kubernetes
    artifact_root: s3://ml-artifacts/seeds
    defaults: {{image: "{STACKHOP_IMAGES['k8s']}"}}
    settings: {{namespace: ml}}
  sm:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/seeds
    defaults: {{image: "{STACKHOP_IMAGES['sm']}"}}
    settings: {{region: us-east-1, role_arn: "arn:aws:iam::123456789012:role/SageMakerRole"}}
  vertex:
    adapter: vertex
    artifact_root: gs://ml-artifacts/seeds-vertex
    defaults: {{image: "{STACKHOP_IMAGES['vertex']}"}}
    settings: {{project: my-project}}
  kfp:
    adapter: kfp
    artifact_root: gs://ml-artifacts/seeds-kfp
    defaults: {{image: "{STACKHOP_IMAGES['kfp']}"}}
    settings: {{host: "http://kfp.invalid"}}
"""

# KFP v1:  dsl.ContainerOp(name='sample ContainerOp', image='busybox', command=['echo', 'Hello KFP!'])
HELLO_KFP = """
from stackhop import ContainerSpec, container_component, container_step, pipeline


@container_component
def say_hello():
    return ContainerSpec(image="busybox", command=["echo"], args=["Hello KFP!"])


@pipeline
def sample_container_op():
    container_step("echo", image="busybox", command=["echo", "Hello KFP!"])
    say_hello()
"""

# KFP v2 tutorial:  @dsl.container_component def train_with_gpu(): return dsl.ContainerSpec(...)
TRAIN_WITH_GPU = """
from stackhop import ContainerSpec, container_component, pipeline


@container_component
def train_with_gpu():
    return ContainerSpec(
        image="gcr.io/my-project/ml-trainer:v1.2.0",
        command=["python", "train.py"],
        args=["--epochs", "50", "--lr", "0.001"],
    )


@pipeline
def gpu_training():
    train_with_gpu().set_resources(gpu=1, accelerator="t4")
"""

# What each step's own container must be on every backend: its image, its command and its args as written.
HELLO_CONTAINERS = {
    "echo": ("busybox", ["echo", "Hello KFP!"], []),
    "say_hello": ("busybox", ["echo"], ["Hello KFP!"]),
}
TRAINER = ("gcr.io/my-project/ml-trainer:v1.2.0", ["python", "train.py"], ["--epochs", "50", "--lr", "0.001"])


@pytest.fixture
def hello(write_config, write_pipeline) -> Any:
    write_config(STACKS)
    return write_pipeline(HELLO_KFP)


@pytest.fixture
def gpu(write_config, write_pipeline) -> Any:
    write_config(STACKS)
    return write_pipeline(TRAIN_WITH_GPU)


def no_stackhop_in(command: list[str], args: list[Any]) -> bool:
    return not any("stackhop" in json.dumps(part) for part in [*command, *args])


# ----------------------------------------------------------------------------- Kubernetes


def kubernetes_jobs(pipeline: Any) -> dict[str, dict]:
    text = stackhop.compile(pipeline, "k8s").files["kubernetes.yaml"]
    docs = [d for d in yaml.safe_load_all(text) if d]
    return {d["metadata"]["annotations"]["stackhop.dev/step-name"]: d for d in docs if d["kind"] == "Job"}


def test_hello_kfp_compiles_to_jobs_whose_main_container_is_busybox_echoing_as_written(hello) -> None:
    jobs = kubernetes_jobs(hello.sample_container_op)

    assert set(jobs) == set(HELLO_CONTAINERS)
    for name, (image, command, args) in HELLO_CONTAINERS.items():
        (main,) = jobs[name]["spec"]["template"]["spec"]["containers"]
        assert (main["image"], main["command"], main.get("args", [])) == (image, command, args), name
        assert no_stackhop_in(main["command"], main.get("args", []))
        for version in ("1.30", "1.37"):
            validate_manifest(jobs[name], name, version=version)


def test_train_with_gpu_compiles_to_a_job_with_the_gpu_on_the_trainers_own_container(gpu) -> None:
    (job,) = kubernetes_jobs(gpu.gpu_training).values()
    pod = job["spec"]["template"]["spec"]
    (main,) = pod["containers"]

    assert (main["image"], main["command"], main["args"]) == TRAINER
    assert no_stackhop_in(main["command"], main["args"])
    assert main["resources"]["limits"]["nvidia.com/gpu"] == main["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert all("nvidia.com/gpu" not in json.dumps(c.get("resources", {})) for c in pod.get("initContainers", [])), \
        "stackhop's containers beside the trainer ask for no GPU"


# ----------------------------------------------------------------------------- SageMaker


def sagemaker_steps(pipeline: Any) -> dict[str, dict]:
    doc = json.loads(stackhop.compile(pipeline, "sm").files["sagemaker-pipeline.json"])
    schema = load_patched()
    if schema is not None:
        assert [e.message[:200] for e in jsonschema.Draft7Validator(schema).iter_errors(doc)] == []
    return {s["Name"]: s for s in doc["Steps"]}


def app_specification(image: str, command: list[str], args: list[str]) -> dict[str, Any]:
    return {"ImageUri": image, "ContainerEntrypoint": command, **({"ContainerArguments": args} if args else {})}


def test_hello_kfp_compiles_to_processing_jobs_in_busybox_running_echo_as_written(hello) -> None:
    steps = sagemaker_steps(hello.sample_container_op)

    for name, container in HELLO_CONTAINERS.items():
        job = steps[name]["Arguments"]
        assert job["AppSpecification"] == app_specification(*container), name
        assert "Environment" not in job, "nothing of stackhop is handed to busybox"
        record = steps[f"{name}-outputs"]["Arguments"]["AppSpecification"]
        assert record["ImageUri"] == STACKHOP_IMAGES["sm"], "only the record step beside it runs stackhop"


def test_train_with_gpu_compiles_to_a_processing_job_on_a_gpu_instance(gpu) -> None:
    from stackhop.adapters.sagemaker.catalog import load_catalog

    steps = sagemaker_steps(gpu.gpu_training)
    job = steps["train_with_gpu"]["Arguments"]

    assert job["AppSpecification"] == app_specification(*TRAINER)
    instance = load_catalog().types[job["ProcessingResources"]["ClusterConfig"]["InstanceType"]]
    assert (instance.gpu_count, instance.gpu_model) == (1, "T4"), instance
    recorder = load_catalog().types[steps["train_with_gpu-outputs"]["Arguments"]["ProcessingResources"][
        "ClusterConfig"]["InstanceType"]]
    assert not recorder.gpu_count, "recording the outputs needs no GPU"


# ----------------------------------------------------------------------------- Vertex AI and Kubeflow


def pipeline_documents(pipeline: Any, stack: str) -> list[dict]:
    compiled = stackhop.compile(pipeline, stack)
    docs = list(yaml.safe_load_all(compiled.files["pipeline.json" if stack == "vertex" else "pipeline.yaml"]))
    json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())  # strict: an unknown field fails
    return docs


def executor(spec: dict, step: str) -> dict:
    return spec["deploymentSpec"]["executors"][f"exec-{step.replace('_', '-')}"]["container"]


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_hello_kfp_compiles_to_executors_in_busybox_running_echo_as_written(hello, stack) -> None:
    spec = pipeline_documents(hello.sample_container_op, stack)[0]

    for name, (image, command, args) in HELLO_CONTAINERS.items():
        assert executor(spec, name) == {"image": image, "command": command, **({"args": args} if args else {})}, name


def test_train_with_gpu_compiles_for_vertex_with_its_t4_accelerator(gpu) -> None:
    container = executor(pipeline_documents(gpu.gpu_training, "vertex")[0], "train_with_gpu")

    assert (container["image"], container["command"], container["args"]) == TRAINER
    assert container["resources"]["accelerator"] == {
        "type": "NVIDIA_TESLA_T4", "count": "1", "resourceType": "NVIDIA_TESLA_T4", "resourceCount": "1"}


def test_train_with_gpu_compiles_for_kubeflow_with_a_gpu_and_the_t4_node_selector(gpu) -> None:
    from kfp.kubernetes import kubernetes_executor_config_pb2

    spec, platform = pipeline_documents(gpu.gpu_training, "kfp")
    container = executor(spec, "train_with_gpu")

    assert (container["image"], container["command"], container["args"]) == TRAINER
    assert container["resources"]["accelerator"] == {
        "type": "nvidia.com/gpu", "count": "1", "resourceType": "nvidia.com/gpu", "resourceCount": "1"}
    config = json_format.ParseDict(platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][
        "exec-train-with-gpu"], kubernetes_executor_config_pb2.KubernetesExecutorConfig())
    assert dict(config.node_selector.labels) == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert [(t.key, t.operator, t.effect) for t in config.tolerations] == [("nvidia.com/gpu", "Exists", "NoSchedule")]


# ----------------------------------------------------------------------------- runs


def assert_said_hello(handle: Any) -> None:
    """Both spellings of the ContainerOp succeeded, and each one's log has busybox's greeting."""
    assert handle.status is RunStatus.SUCCEEDED, handle.state().message
    assert {name: s.status for name, s in handle.steps().items()} == {
        name: StepStatus.SUCCEEDED for name in HELLO_CONTAINERS}
    for name in HELLO_CONTAINERS:
        assert "Hello KFP!" in handle.logs(name), name


def test_hello_kfp_runs_locally(hello) -> None:
    assert_said_hello(stackhop.run(hello.sample_container_op, "laptop", cache=False, progress=False))


def test_hello_kfp_runs_from_its_compiled_sagemaker_definition(hello, aws) -> None:
    assert_said_hello(stackhop.run(hello.sample_container_op, "sm", emulate=True, cache=False, progress=False))


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_hello_kfp_runs_from_its_compiled_pipeline_spec(hello, gcs, stack) -> None:
    assert_said_hello(stackhop.run(hello.sample_container_op, stack, emulate=True, cache=False, progress=False))


def test_hello_kfp_runs_on_kubernetes(hello, project, write_config) -> None:
    from stackhop.testing.kubernetes import FakeKubernetes

    from conftest import k8s_stack

    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        handle = stackhop.run(hello.sample_container_op, "k8s", cache=False, progress=False)
        handle.wait(timeout=120)
        assert_said_hello(handle)
        images = {j["spec"]["template"]["spec"]["containers"][0]["image"] for j in kube.objects("Job", "ml")}
    assert images == {"busybox"}


# train_with_gpu runs only locally. Locally a container step runs its command on this machine in the
# project directory, so `python train.py` finds a tiny train.py written there (run by the `python` on
# PATH), and the GPU step runs on the CPU of a machine without one. The emulators run each command in a
# fresh scratch directory (the image, whose working directory would hold train.py, is not there), so
# `python train.py` as written finds no script; on SageMaker, Vertex and Kubeflow it is compiled only.
TRAIN_PY = """\
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int)
parser.add_argument("--lr", type=float)
args = parser.parse_args()
print(f"training for {args.epochs} epochs at lr {args.lr}")
"""


def test_train_with_gpu_runs_locally_on_the_cpu_with_its_args_as_written(gpu, project, capsys) -> None:
    (project / "train.py").write_text(TRAIN_PY)

    handle = stackhop.run(gpu.gpu_training, "laptop", cache=False, progress=False)

    assert handle.status is RunStatus.SUCCEEDED, handle.state().message
    assert handle.steps()["train_with_gpu"].status is StepStatus.SUCCEEDED
    assert "training for 50 epochs at lr 0.001" in handle.logs("train_with_gpu")
    assert ("note: this machine has no GPU the local stack may use, so step train_with_gpu (1 x nvidia-tesla-t4) "
            "runs on the CPU.") in capsys.readouterr().err.splitlines()
