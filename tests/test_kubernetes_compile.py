"""Kubernetes compile: every manifest the adapter can produce, checked against the official schemas."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

import stackhop
from stackhop.adapters.kubernetes.manifests import bind_job
from stackhop.adapters.kubernetes.names import MAX, bound_name, job_bases
from stackhop.errors import CapabilityError, PipelineDefinitionError

from conftest import EXAMPLES

GOLDEN = Path(__file__).parent / "golden" / "kubernetes"
VERSIONS = ["1.30", "1.37"]

STACKS = """
stacks:
  k8s:
    adapter: kubernetes
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "registry.example.com/ml/train:1.0"}
    settings:
      namespace: ml
      image_pull_secrets: [regcred]
      service_account: pipeline-runner
      ttl_seconds_after_finished: 3600
      tolerations: [{key: dedicated, operator: Equal, value: ml, effect: NoSchedule}]
  incluster:
    adapter: kubernetes
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "registry.example.com/ml/train:1.0"}
    settings: {namespace: ml, driver: in-cluster, driver_image: "registry.example.com/stackhop:0.1"}
  nvidia:
    adapter: kubernetes
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "img:1"}
    settings:
      accelerator_label: nvidia.com/gpu.product
      accelerator_values: {nvidia-tesla-t4: Tesla-T4}
      gpu_toleration: false
"""

EVERYTHING = """
    from stackhop import step, pipeline, If, ParallelFor, ExitHandler, container_step, resource_op, InputPath, OutputPath, Output, Input, Dataset

    @step(resources={"cpu": "2", "memory": "8Gi", "disk": "50Gi", "gpu": 1, "accelerator": "t4"})
    def train(data: Output[Dataset], lr: float = 0.1) -> float:
        return 0.9

    @step
    def report(score: float) -> None: ...

    @step
    def notify() -> None: ...

    @pipeline
    def everything(threshold: float = 0.5, seeds: list = [1, 2]):
        done = notify()
        with ExitHandler(done):
            t = train().set_retry(3).set_timeout(1800.5).set_env(MODE="prod")
            t.set_secret_env("DB_PASSWORD", secret="db-creds", key="password")
            t.add_node_selector("pool", "gpu").add_toleration("spot", "Exists", effect="NoSchedule")
            with If(t.outputs["output"] > threshold):
                report(score=t.outputs["output"]).set_resources(cpu="500m", memory="256Mi", cpu_limit="1", memory_limit="512Mi")
            with ParallelFor(seeds, parallelism=1) as s:
                train(lr=s)
            container_step("count", "busybox:1.36", ["sh", "-c", "wc -l < $0 > $1", InputPath("d"), OutputPath("n")],
                           inputs={"d": t.outputs["data"]}, outputs={"n": int})
            resource_op("make-config", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                                         "data": {"a": "1"}}, "apply", success_condition="metadata.name == cfg")
"""


def _docs(compiled: stackhop.core.adapter.Compiled) -> list[dict]:
    return [d for d in yaml.safe_load_all(compiled.files["kubernetes.yaml"]) if d]


@pytest.fixture
def stacks(write_config) -> None:
    write_config(STACKS)


def test_every_manifest_validates_strictly_against_1_30_and_1_37(project, write_pipeline, stacks) -> None:
    module = write_pipeline(EVERYTHING)
    for stack in ("k8s", "incluster"):
        docs = _docs(stackhop.compile(module.everything, stack))
        kinds = sorted({d["kind"] for d in docs})
        for doc in docs:
            for version in VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
                if doc["kind"] == "Job":
                    kubernetes_validate.validate(bind_job(doc, "20261122-091005-2eb0b3", (1,)), version, strict=True)
    assert kinds == ["ConfigMap", "Job", "Role", "RoleBinding", "ServiceAccount"]


def test_a_gpu_step_gets_equal_request_and_limit_a_node_selector_and_the_toleration(project, write_pipeline, stacks) -> None:
    module = write_pipeline(EVERYTHING)
    job = next(d for d in _docs(stackhop.compile(module.everything, "k8s")) if d["metadata"]["annotations"]["stackhop.dev/step-name"] == "train")
    pod = job["spec"]["template"]["spec"]
    res = pod["containers"][0]["resources"]
    assert res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"] == "1"
    assert res["requests"] == {"cpu": "2", "memory": "8Gi", "ephemeral-storage": "50Gi", "nvidia.com/gpu": "1"}
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4", "pool": "gpu"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert {"key": "spot", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"} in pod["tolerations"]
    nvidia = next(d for d in _docs(stackhop.compile(module.everything, "nvidia")) if d["metadata"]["annotations"]["stackhop.dev/step-name"] == "train")
    assert nvidia["spec"]["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"] == "Tesla-T4"
    assert all(t["key"] != "nvidia.com/gpu" for t in nvidia["spec"]["template"]["spec"]["tolerations"])


def test_retries_timeouts_secrets_and_env_map_to_job_fields(project, write_pipeline, stacks) -> None:
    module = write_pipeline(EVERYTHING)
    job = next(d for d in _docs(stackhop.compile(module.everything, "k8s")) if d["metadata"]["annotations"]["stackhop.dev/step-name"] == "train")
    spec = job["spec"]
    assert spec["backoffLimit"] == 3
    assert spec["activeDeadlineSeconds"] == 1801
    assert spec["ttlSecondsAfterFinished"] == 3600
    assert spec["podFailurePolicy"]["rules"][0] == {
        "action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "pipeline-runner"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["DB_PASSWORD"] == {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-creds", "key": "password"}}}
    assert env["MODE"]["value"] == "prod"
    assert job["metadata"]["labels"]["stackhop.dev/pipeline"] == "everything"
    assert job["metadata"]["labels"]["stackhop.dev/step"] == "train"


def test_secret_values_never_appear_in_the_compiled_document(project, write_pipeline, stacks, monkeypatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "hunter2-secret")
    text = stackhop.compile(write_pipeline(EVERYTHING).everything, "k8s").files["kubernetes.yaml"]
    assert b"hunter2-secret" not in text


def test_compiling_twice_gives_identical_bytes_and_binding_only_adds_the_run(project, write_pipeline, stacks) -> None:
    module = write_pipeline(EVERYTHING)
    first = stackhop.compile(module.everything, "k8s")
    assert first.files == stackhop.compile(module.everything, "k8s").files
    template = _docs(first)[0]
    bound = bind_job(template, "20261122-091005-2eb0b3", (0, 1))
    assert bound["metadata"]["name"] == template["metadata"]["name"] + "-" + bound["metadata"]["name"].split("-")[-3] + "-0-1"
    assert bound["metadata"]["labels"]["stackhop.dev/run"] == "20261122-091005-2eb0b3"
    container = bound["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-2:] == ["--index", "0,1"]
    assert {"name": "STACKHOP_RUN_ID", "value": "20261122-091005-2eb0b3"} in container["env"]
    assert template["metadata"]["labels"]["stackhop.dev/run"] == ""


def test_the_in_cluster_driver_gets_a_least_privilege_role(project, write_pipeline, stacks) -> None:
    docs = _docs(stackhop.compile(write_pipeline(EVERYTHING).everything, "incluster"))
    role = next(d for d in docs if d["kind"] == "Role")
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert granted == {
        ("batch", "jobs", "create"), ("batch", "jobs", "get"), ("batch", "jobs", "list"), ("batch", "jobs", "watch"),
        ("batch", "jobs", "delete"), ("", "pods", "get"), ("", "pods", "list"), ("", "pods", "watch"),
        ("", "pods/log", "get"), ("", "events", "list"),
    }
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    account = next(d for d in docs if d["kind"] == "ServiceAccount")
    driver = next(d for d in docs if d["metadata"].get("annotations", {}).get("stackhop.dev/step-name") == "_driver")
    assert binding["subjects"][0]["name"] == account["metadata"]["name"] == driver["spec"]["template"]["spec"]["serviceAccountName"]
    assert driver["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == ["--driver", "kubernetes"]


def test_resource_ops_compile_to_their_manifest_with_action_and_conditions(project, write_pipeline, stacks) -> None:
    docs = _docs(stackhop.compile(write_pipeline(EVERYTHING).everything, "k8s"))
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    assert cm["metadata"]["namespace"] == "ml"
    assert cm["metadata"]["annotations"]["stackhop.dev/action"] == "apply"
    assert cm["metadata"]["annotations"]["stackhop.dev/success-condition"] == "metadata.name == cfg"
    assert cm["data"] == {"a": "1"}


def test_job_names_are_dns_labels_unique_and_short_enough_for_the_run_suffix() -> None:
    steps = ["train", "train_1", "train-1", "a" * 63, "Evaluate Model", "x" * 40 + "1", "x" * 40 + "2"]
    bases = job_bases("a-rather-long-pipeline-name-for-testing", steps)
    assert len(set(bases.values())) == len(steps)
    for base in bases.values():
        name = bound_name(base, "20261122-091005-2eb0b3", (12, 3))
        assert len(name) <= MAX
        assert name == name.lower() and name[0].isalnum() and name[-1].isalnum()
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


def test_a_manifest_the_schema_rejects_is_a_compile_error_naming_step_and_field(project, write_pipeline, stacks) -> None:
    module = write_pipeline("""
        from stackhop import pipeline, resource_op

        @pipeline
        def broken():
            resource_op("bad-config", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                                        "data": {"a": 1}, "spex": {}})
    """)
    with pytest.raises(PipelineDefinitionError) as caught:
        stackhop.compile(module.broken, "k8s")
    assert "step 'bad-config'" in str(caught.value) and "ConfigMap" in str(caught.value)


def test_a_step_without_an_image_is_a_compile_error_with_the_fix(project, write_pipeline, write_config) -> None:
    write_config("stacks: {k8s: {adapter: kubernetes}}")
    module = write_pipeline(EVERYTHING)
    with pytest.raises(PipelineDefinitionError, match="has no image; set it on the step"):
        stackhop.compile(module.everything, "k8s")


def test_resource_ops_need_kubernetes_and_the_error_says_so(project, write_pipeline) -> None:
    module = write_pipeline(EVERYTHING)
    with pytest.raises(CapabilityError, match=r"step 'make-config' needs resource_ops, .* adapters that do: kubernetes\."):
        stackhop.compile(module.everything, "local")


def test_the_training_example_matches_its_golden_manifests(project, write_pipeline, stacks) -> None:
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    module = write_pipeline((project / "training_example.py").read_text(), name="training_example")
    text = stackhop.compile(module.training_pipeline, "k8s").files["kubernetes.yaml"].decode()
    golden = GOLDEN / "training_pipeline.yaml"
    if os.environ.get("STACKHOP_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text(), "regenerate with STACKHOP_UPDATE_GOLDEN=1 after reviewing the diff"
