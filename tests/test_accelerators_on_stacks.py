"""GPU steps on a laptop, GPUs shared out on a workstation, and stacks that remove an accelerator.

The local stack runs a GPU step on the CPU when the machine has no GPU (with a one-line note),
and gives each step its own GPUs through CUDA_VISIBLE_DEVICES when it has some. A stack override
`accelerator: null` (or `gpu: 0`) removes the accelerator, and every backend's compile shows it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import stackhop
from stackhop import RunStatus

GPU_STEPS = """
    import os
    from stackhop import pipeline, step

    @step(resources={"gpu": 1, "accelerator": "t4"})
    def train() -> str:
        return os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")

    @pipeline
    def on_gpu():
        train()
"""


def test_a_gpu_step_runs_on_a_machine_without_gpus_with_a_one_line_note(project: Path, write_pipeline, write_config,
                                                                        capsys) -> None:
    write_config("stacks:\n  laptop:\n    adapter: local\n    settings: {gpus: none}\n")
    module = write_pipeline(GPU_STEPS)

    handle = stackhop.run(module.on_gpu, "laptop", progress=False)

    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith(("note:", "warning:"))]
    assert notes == ["note: this machine has no GPU the local stack may use, so step train (1 x nvidia-tesla-t4) runs "
                     "on the CPU."]


def test_each_local_step_gets_its_own_gpus_and_waits_for_free_ones(project: Path, write_pipeline, write_config) -> None:
    write_config("stacks:\n  workstation:\n    adapter: local\n    settings: {gpus: ['0', '1'], max_workers: 4}\n")
    module = write_pipeline("""
        import os, time
        from stackhop import pipeline, step

        @step
        def seen(hold: float = 0.0) -> str:
            time.sleep(hold)
            return os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")

        @pipeline
        def shared():
            seen(hold=1.0).set_name("one-a").set_resources(gpu=1, accelerator="t4").set_caching(False)
            seen(hold=1.0).set_name("one-b").set_resources(gpu=1, accelerator="t4").set_caching(False)
            seen().set_name("two").set_resources(gpu=2, accelerator="t4").set_caching(False)
            seen().set_name("cpu-only").set_caching(False)
    """)

    handle = stackhop.run(module.shared, "workstation", progress=False)

    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    got = {name: handle.artifact(name, "output").value for name in ("one-a", "one-b", "two", "cpu-only")}
    assert sorted([got["one-a"], got["one-b"]]) == ["0", "1"]
    assert got["two"] == "0,1" and got["cpu-only"] == ""
    steps = handle.steps()
    ones = [steps[n] for n in ("one-a", "one-b")]
    assert steps["two"].started_at >= min(s.finished_at for s in ones), "two GPUs were free only after a one-GPU step"


STACKS = """
stacks:
  k8s:
    adapter: kubernetes
    defaults: {image: "registry.example.com/ml/train:1.0"}
    overrides: {steps: {train: {resources: {accelerator: null}}}}
  sm:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0"}
    settings: {region: us-east-1, role_arn: "arn:aws:iam::123456789012:role/SageMakerRole"}
    overrides: {steps: {train: {resources: {gpu: 0}}}}
  vertex:
    adapter: vertex
    artifact_root: gs://ml-artifacts/stackhop
    defaults: {image: "us-docker.pkg.dev/p/ml/train:1.0"}
    settings: {project: my-project}
    overrides: {all_steps: {resources: {accelerator_count: 0}}}
  kfp:
    adapter: kfp
    artifact_root: gs://ml-artifacts/stackhop
    defaults: {image: "registry.example.com/ml/train:1.0"}
    settings: {host: "http://localhost:8080"}
    overrides: {steps: {train: {resources: {accelerator: null, memory: 2Gi}}}}
  laptop:
    adapter: local
    settings: {gpus: none}
    overrides: {steps: {train: {resources: {accelerator: null}}}}
"""


@pytest.fixture
def removed(project: Path, write_pipeline, write_config):
    write_config(STACKS)
    return write_pipeline("""
        from stackhop import pipeline, step

        @step(resources={"cpu": "2", "memory": "8Gi", "gpu": 1, "accelerator": "t4"})
        def train() -> int:
            return 1

        @pipeline
        def p():
            train()
    """)


def test_an_override_removes_the_accelerator_from_the_kubernetes_jobs(removed) -> None:
    import yaml

    text = stackhop.compile(removed.p, "k8s").files["kubernetes.yaml"].decode()
    (job,) = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "Job"]
    pod = job["spec"]["template"]["spec"]

    assert "nvidia.com/gpu" not in text
    assert pod["containers"][0]["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
    assert "nodeSelector" not in pod and not any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", []))


def test_an_override_removes_the_accelerator_from_the_sagemaker_instance_choice(removed) -> None:
    definition = json.loads(stackhop.compile(removed.p, "sm").files["sagemaker-pipeline.json"])
    (train,) = definition["Steps"]
    instance = train["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"]

    assert not instance.startswith(("ml.g", "ml.p")), instance


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_an_override_removes_the_accelerator_from_the_pipeline_spec(removed, stack: str) -> None:
    import yaml

    compiled = stackhop.compile(removed.p, stack)
    spec = next(yaml.safe_load_all(compiled.files["pipeline.json" if stack == "vertex" else "pipeline.yaml"]))
    resources = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]

    platform = json.dumps(list(yaml.safe_load_all(compiled.files.get("pipeline.yaml", b"")))[1:])
    assert "accelerator" not in resources and "nvidia.com/gpu" not in platform
    assert resources["resourceMemoryLimit"] == ("8Gi" if stack == "vertex" else "2Gi")


def test_an_override_removes_the_accelerator_on_the_local_stack_too(removed, capsys) -> None:
    stackhop.compile(removed.p, "laptop")

    assert "GPU" not in capsys.readouterr().err
    assert removed.p.build().step("train").settings.resources.accelerator is not None, "the pipeline itself keeps it"
