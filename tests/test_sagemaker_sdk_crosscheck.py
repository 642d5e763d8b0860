"""Our SageMaker definition beside the one the SageMaker SDK v3 builds for the same seed pipeline.

The SDK (~1 GB) lives in its own venv, named by STACKHOP_SAGEMAKER_SDK_PYTHON; `.ci/run` makes
one. The comparison is structural: step types, the dependency graph, how the condition reads a
property file, and the shapes of the processing arguments. Values (images, URIs, how a step
passes data) legitimately differ.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import stackhop

from conftest import EXAMPLES

SDK_PYTHON = os.environ.get("STACKHOP_SAGEMAKER_SDK_PYTHON")
pytestmark = pytest.mark.skipif(
    not SDK_PYTHON, reason="set STACKHOP_SAGEMAKER_SDK_PYTHON to a Python with sagemaker==3.27.0 (.ci/run creates one)")


def flatten(doc: dict) -> dict[str, dict]:
    steps = {}
    for step in doc["Steps"]:
        steps[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for inner in step.get("Arguments", {}).get(branch, []) if step["Type"] == "Condition" else []:
                steps[inner["Name"]] = inner
    return steps


def edges(doc: dict, rename: dict[str, str]) -> set[tuple[str, str]]:
    out = set()
    for name, step in flatten(doc).items():
        body = json.dumps({k: v for k, v in step.get("Arguments", {}).items() if k not in ("IfSteps", "ElseSteps")})
        ups = set(re.findall(r'"Get": "Steps\.([A-Za-z0-9_-]+)\.', body)) | set(step.get("DependsOn", []))
        out |= {(rename.get(u, u), rename.get(name, name)) for u in ups}
    return out


@pytest.fixture(scope="module")
def sdk_definition() -> dict:
    script = Path(__file__).parent / "sagemaker_sdk" / "seed_pipeline.py"
    result = subprocess.run([SDK_PYTHON, str(script)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.fixture
def our_definition(project, write_pipeline, write_config) -> dict:
    write_config("""
        stacks:
          sm:
            adapter: sagemaker
            artifact_root: s3://seed-bucket/stackhop
            defaults: {image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0"}
            settings: {role_arn: "arn:aws:iam::123456789012:role/SageMakerRole", default_instance_type: ml.m5.large}
    """)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    module = write_pipeline((project / "training_example.py").read_text(), name="training_example")
    return json.loads(stackhop.compile(module.training_pipeline, "sm").files["sagemaker-pipeline.json"])


def test_the_same_steps_of_the_same_types(sdk_definition, our_definition) -> None:
    sdk = {n: s["Type"] for n, s in flatten(sdk_definition).items()}
    ours = {n: s["Type"] for n, s in flatten(our_definition).items()}
    assert sdk.pop("check_accuracy") == ours.pop("Check-condition-1") == "Condition"
    assert sdk == ours == {n: "Processing" for n in ("load_data", "train_model", "evaluate_model", "deploy_model")}
    top = lambda d: sorted(s["Name"] for s in d["Steps"])  # noqa: E731
    assert top(sdk_definition) == ["check_accuracy", "evaluate_model", "load_data", "train_model"]
    assert top(our_definition) == ["Check-condition-1", "evaluate_model", "load_data", "train_model"]


def test_the_same_dependency_graph(sdk_definition, our_definition) -> None:
    ours = edges(our_definition, {"Check-condition-1": "check"})
    sdk = edges(sdk_definition, {"check_accuracy": "check"})
    assert ours == sdk == {("load_data", "train_model"), ("load_data", "evaluate_model"), ("train_model", "evaluate_model"),
                           ("evaluate_model", "check"), ("train_model", "deploy_model")}


def test_the_condition_reads_a_property_file_the_same_way(sdk_definition, our_definition) -> None:
    sdk = flatten(sdk_definition)["check_accuracy"]["Arguments"]
    ours = flatten(our_definition)["Check-condition-1"]["Arguments"]
    assert set(sdk) == set(ours) == {"Conditions", "IfSteps", "ElseSteps"}
    assert [s["Name"] for s in sdk["IfSteps"]] == [s["Name"] for s in ours["IfSteps"]] == ["deploy_model"]
    assert sdk["ElseSteps"] == ours["ElseSteps"] == []
    for args in (sdk, ours):
        left = args["Conditions"][0]["LeftValue"]["Std:JsonGet"]
        assert set(left) == {"PropertyFile", "Path"}
        assert re.fullmatch(r"Steps\.evaluate_model\.PropertyFiles\.\w+", left["PropertyFile"]["Get"])
    for definition in (sdk_definition, our_definition):
        evaluate = flatten(definition)["evaluate_model"]
        (prop,) = evaluate["PropertyFiles"]
        assert set(prop) == {"PropertyFileName", "OutputName", "FilePath"}
        outputs = {o["OutputName"] for o in evaluate["Arguments"]["ProcessingOutputConfig"]["Outputs"]}
        assert prop["OutputName"] in outputs


def test_processing_arguments_have_the_sdks_shapes(sdk_definition, our_definition) -> None:
    sdk = flatten(sdk_definition)["train_model"]["Arguments"]
    ours = flatten(our_definition)["train_model"]["Arguments"]
    assert ours["ProcessingResources"]["ClusterConfig"].keys() == sdk["ProcessingResources"]["ClusterConfig"].keys()
    assert ours["ProcessingResources"]["ClusterConfig"]["InstanceType"].startswith("ml.")
    assert {"ImageUri", "ContainerEntrypoint"} <= ours["AppSpecification"].keys() & sdk["AppSpecification"].keys()
    assert ours["RoleArn"] == sdk["RoleArn"]
    for out in (*ours["ProcessingOutputConfig"]["Outputs"], *sdk["ProcessingOutputConfig"]["Outputs"]):
        assert set(out["S3Output"]) == {"S3Uri", "LocalPath", "S3UploadMode"}
    sdk_params = {p["Name"]: p["Type"] for p in sdk_definition["Parameters"]}
    ours_params = {p["Name"]: p["Type"] for p in our_definition["Parameters"]}
    assert sdk_params["min_accuracy"] == ours_params["min_accuracy"] == "Float"
