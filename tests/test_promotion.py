"""Release once, promote the very same IR dev (local) -> staging (Kubernetes) -> prod (SageMaker).

Staging is the fake Kubernetes API server (its kubelet runs the step pods here), prod is moto's
SageMaker; nothing is re-traced or rebuilt on the way, gates are evaluated on the source
stack's runs, and every hop records the same IR digest.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

import stackhop
from stackhop.cli.main import main
from stackhop.core.store import RunStore
from stackhop.promotion.gates import GateError
from stackhop.promotion.promote import PromotionError, promote
from stackhop.promotion.release import ReleaseError, create_release, load_release
from stackhop.testing.kubernetes import FakeKubernetes
from stackhop.testing.sagemaker import FakeSageMaker

from conftest import EXAMPLES

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


@pytest.fixture
def clouds(project, monkeypatch):
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube, FakeSageMaker(region="us-east-1") as aws:
        for key, value in aws.env().items():
            monkeypatch.setenv(key, value)
        aws.create_bucket("ml-artifacts")
        kube.write_kubeconfig(str(project / "kubeconfig"), namespace="ml")
        yield kube, aws


def write_stacks(project, threshold: float, **prod_gates) -> None:
    (project / "stackhop.yaml").write_text(yaml.safe_dump({
        "promotion": ["dev", "staging", "prod"],
        "stacks": {
            "dev": {"adapter": "local"},
            "staging": {
                "adapter": "kubernetes", "artifact_root": str(project / "staging-artifacts"),
                "defaults": {"image": "python:3.11-slim"},
                "settings": {"kubeconfig": str(project / "kubeconfig"), "namespace": "ml", "poll_seconds": 0.1,
                             "pending_grace_seconds": 1.0},
                "promotion": {"allowed_sources": ["dev"],
                              "gates": {"metrics": [f"evaluate_model.metrics.accuracy >= {threshold}"]}},
            },
            "prod": {
                "adapter": "sagemaker", "artifact_root": "s3://ml-artifacts/prod",
                "defaults": {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train@sha256:" + "a" * 64},
                "settings": {"region": "us-east-1", "role_arn": ROLE},
                "overrides": {"steps": {"train_model": {"resources": {"cpu": "4", "memory": "16Gi"}}}},
                "promotion": {"gates": {"approval": True, **prod_gates}},
            },
        },
    }))


@pytest.fixture
def example(project, write_pipeline, clouds):
    write_stacks(project, threshold=0.8)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    return write_pipeline((project / "training_example.py").read_text(), name="training_example").training_pipeline


def test_one_release_travels_dev_to_staging_to_prod_with_gates_and_one_ir_digest(project, example, clouds) -> None:
    kube, aws = clouds
    release = create_release(example, "dev")
    rid, digest = release["release_id"], release["content"]["ir_digest"]
    assert release["content"]["compiled"]["prod"]["adapter"] == "sagemaker"
    assert create_release(example, "dev")["release_id"] == rid  # content-addressed

    with pytest.raises(GateError, match=rf"release {rid} may not enter stack 'staging': gate 'successful_run' failed"):
        promote(rid, "staging")

    weak = stackhop.run(example, "dev", {"n_estimators": 1, "deploy_dir": str(project / "deployed")})
    assert weak.status.value == "SUCCEEDED"
    write_stacks(project, threshold=weak.artifact("evaluate_model", "metrics").metadata["accuracy"] + 0.01)
    with pytest.raises(GateError, match=r"gate 'evaluate_model.metrics.accuracy >= [0-9.]+' failed \(evaluate_model"
                                        r"\.metrics\.accuracy = 0\.[0-9]+\)"):
        promote(rid, "staging")

    better = stackhop.run(example, "dev", {"deploy_dir": str(project / "deployed")})
    assert better.artifact("evaluate_model", "metrics").metadata["accuracy"] > \
        weak.artifact("evaluate_model", "metrics").metadata["accuracy"]
    staged = promote(rid, "staging", run=True)
    assert staged["result"] == "promoted" and staged["run_status"] == "SUCCEEDED"
    assert all(j["spec"]["template"]["spec"]["containers"][0]["image"] == "python:3.11-slim"
               for j in kube.objects("Job", "ml"))

    with pytest.raises(GateError, match=r"gate 'approval' failed \(nobody approved\)"):
        promote(rid, "prod")
    shipped = promote(rid, "prod", approved_by="release-manager")
    assert shipped["deployed"]["pipeline_arn"].endswith(":pipeline/training-pipeline")
    definition = json.loads(aws.client("sagemaker").describe_pipeline(PipelineName="training-pipeline")[
        "PipelineDefinition"])
    train = next(s for s in definition["Steps"] if s["Name"] == "train_model")
    assert train["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"] != "ml.t3.medium"

    store = RunStore(project / ".stackhop" / "runs.db")
    hops = store.promotions(rid)
    assert [(h["to"], h["result"]) for h in hops] == [
        ("staging", "refused"), ("staging", "refused"), ("staging", "promoted"), ("prod", "refused"), ("prod", "promoted")]
    assert {h["ir_digest"] for h in hops} == {digest}
    assert {r.ir_digest for r in store.list(limit=10)} == {digest}  # dev runs and the staging run alike


def test_promotion_follows_the_order_unless_forced(project, example) -> None:
    rid = create_release(example, "dev")["release_id"]
    with pytest.raises(PromotionError, match=rf"release {rid} is on stack 'dev' and next in the promotion order is "
                                             r"'staging', not 'prod'; promote in order or pass --force"):
        promote(rid, "prod")
    with pytest.raises(PromotionError, match=r"stack 'prod' accepts releases from staging, not from 'dev'"):
        write_stacks(project, 0.8)
        config = yaml.safe_load((project / "stackhop.yaml").read_text())
        config["stacks"]["prod"]["promotion"]["allowed_sources"] = ["staging"]
        (project / "stackhop.yaml").write_text(yaml.safe_dump(config))
        promote(rid, "prod", force=True)


def test_a_gate_on_a_metric_the_run_did_not_log_is_one_sentence(project, example) -> None:
    rid = create_release(example, "dev")["release_id"]
    stackhop.run(example, "dev", {"deploy_dir": str(project / "deployed")})
    config = yaml.safe_load((project / "stackhop.yaml").read_text())
    config["stacks"]["staging"]["promotion"]["gates"]["metrics"] = ["evaluate_model.metrics.auc >= 0.5"]
    (project / "stackhop.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(stackhop.StackhopError, match=r"gate 'evaluate_model.metrics.auc >= 0.5' names metric 'auc', "
                                                     r"which run \S+ did not log in evaluate_model.metrics \(it logged: "
                                                     r"accuracy, f1\); fix the gate"):
        promote(rid, "staging")


def test_a_release_whose_image_is_a_tag_cannot_enter_a_digest_only_stack(project, example) -> None:
    config = yaml.safe_load((project / "stackhop.yaml").read_text())
    config["stacks"]["prod"]["defaults"]["image"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0"
    config["stacks"]["prod"]["images"] = {"require_digest": True}
    config["stacks"]["prod"]["promotion"]["gates"] = {"successful_run": False}
    (project / "stackhop.yaml").write_text(yaml.safe_dump(config))
    release = create_release(example, "dev")
    assert "requires digests" in release["content"]["compiled"]["prod"]["error"]
    with pytest.raises(stackhop.StackhopError, match=r"image '.*train:1.0' is a tag, and stack 'prod' requires digests"):
        promote(release["release_id"], "prod", force=True)


def test_an_edited_release_is_refused(project, example) -> None:
    release = create_release(example, "dev")
    path = project / ".stackhop" / "releases" / f"{release['release_id']}.json"
    data = json.loads(path.read_text())
    data["content"]["images"]["train_model"] = "evil:latest"
    path.write_text(json.dumps(data))
    with pytest.raises(ReleaseError, match=r"does not match its digest; it was edited"):
        load_release(release["release_id"])


def test_the_cli_releases_diffs_and_exits_3_on_a_failed_gate(project, example, capsys, monkeypatch, tmp_path) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["release", "training_example.py", "--stack", "dev", "--json"]) == 0
    rid = json.loads(capsys.readouterr().out)["release_id"]
    assert main(["release", "show", rid, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["release_id"] == rid
    assert main(["promote", rid, "--to", "staging"]) == 3
    assert "gate 'successful_run' failed" in capsys.readouterr().err
    assert main(["diff", "training_example.py", "--stack", "staging", "--stack", "prod", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["adapters"] == ["kubernetes", "sagemaker"]
    assert result["steps"]["train_model"]["resources"] == ["cpu 1, memory 1Gi", "cpu 4, memory 16Gi"]
    assert "instance type ml." in result["steps"]["train_model"]["backend"][1]
    text = summary.read_text()
    assert f"### stackhop release `{rid}`" in text and "refused" in text and "| train_model | resources |" in text


def test_a_built_image_is_carried_to_the_next_registry_by_digest_not_rebuilt(project, write_pipeline) -> None:
    import hashlib

    from stackhop.images.registry import OCI_MANIFEST
    from stackhop.testing.registry import LocalRegistry

    if LocalRegistry.unavailable():
        pytest.skip(f"no docker-registry: {LocalRegistry.unavailable()}; apt-get install docker-registry")
    with LocalRegistry() as reg_a, LocalRegistry() as reg_b:
        (project / "stackhop.yaml").write_text(yaml.safe_dump({
            "promotion": ["a", "b"],
            "stacks": {name: {"adapter": "kubernetes", "artifact_root": str(project / f"art-{name}"),
                              "images": {"registry": f"{reg.host}/ml", "lock_file": f".stackhop/{name}.lock.json"},
                              "promotion": {"gates": {"successful_run": False}}}
                       for name, reg in (("a", reg_a), ("b", reg_b))}}))
        module = write_pipeline("""
            from stackhop import ImageSettings, pipeline, step

            @step
            def train() -> int:
                return 1

            @pipeline(image=ImageSettings(requirements=["numpy==2.1.0"]))
            def carried():
                train()
        """, name="carried")
        from stackhop.core.api import _prepare, to_ir

        built_ref = _prepare(*to_ir(module.carried), "a", None)[0].steps[0].settings.image  # a's content-hash reference
        repo, tag = built_ref.removeprefix(f"{reg_a.host}/").split(":")
        registry = reg_a.registry()
        config = registry.put_blob(repo, b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 78}, "layers": []}).encode()
        digest = registry.put_manifest(repo, tag, manifest, OCI_MANIFEST)
        (project / ".stackhop").mkdir(exist_ok=True)
        (project / ".stackhop" / "a.lock.json").write_text(json.dumps({"version": 1, "images": {built_ref: digest}}))

        release = create_release(module.carried, "a")
        assert release["content"]["images"]["train"] == f"{reg_a.host}/ml/carried@{digest}"
        record = promote(release["release_id"], "b")

        assert record["deployed"]["images_copied"] == {f"{reg_b.host}/ml/carried:{tag}": f"{reg_b.host}/ml/carried@{digest}"}
        assert reg_b.registry().manifest_digest("ml/carried", tag) == digest
        assert hashlib.sha256(manifest).hexdigest() == digest.split(":")[1]
        deployed = (project / "art-b" / "_stackhop" / "deployments" / release["release_id"] / "kubernetes.yaml").read_text()
        assert f"image: {reg_b.host}/ml/carried@{digest}" in deployed
