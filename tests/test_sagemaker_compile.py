"""SageMaker compile: the definition JSON, checked against the (patched) published schema and the SDK's shapes."""

from __future__ import annotations

import json
import shutil

import jsonschema
import pytest

import stackhop
from stackhop.errors import CapabilityError, PipelineDefinitionError

from conftest import EXAMPLES, GATED_FAIL
from sagemaker_schema import PATCHES, load_patched, reference_sdk_definition

STACK = """
stacks:
  sm:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0"}
    settings:
      region: us-east-1
      role_arn: arn:aws:iam::123456789012:role/SageMakerRole
  norole:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "img:1"}
"""


@pytest.fixture
def training(project, write_pipeline, write_config):
    write_config(STACK)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    return write_pipeline((project / "training_example.py").read_text(), name="training_example").training_pipeline


def definition(pipeline, stack: str = "sm") -> dict:
    return json.loads(stackhop.compile(pipeline, stack).files["sagemaker-pipeline.json"])


def schema_errors(doc: dict) -> list[str]:
    schema = load_patched()
    if schema is None:
        pytest.skip("../shared/reference/ is not beside this checkout, so the published schema cannot be read")
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]


def test_the_patched_schema_accepts_what_the_sagemaker_sdk_produces() -> None:
    ref = reference_sdk_definition()
    if ref is None:
        pytest.skip("../shared/reference/ is not beside this checkout")
    assert schema_errors(ref) == []
    assert all(reason for _, reason in PATCHES)


def test_the_training_example_compiles_to_a_schema_valid_deterministic_definition(training) -> None:
    first = stackhop.compile(training, "sm")
    assert first.files == stackhop.compile(training, "sm").files
    doc = json.loads(first.files["sagemaker-pipeline.json"])
    assert schema_errors(doc) == []
    assert doc["Version"] == "2020-12-01"
    assert {p["Name"]: p["Type"] for p in doc["Parameters"]} == {
        "min_accuracy": "Float", "n_estimators": "Integer", "deploy_endpoint": "String", "deploy_dir": "String",
        "StackhopCode": "String"}
    top = {s["Name"]: s for s in doc["Steps"]}
    assert {n: s["Type"] for n, s in top.items()} == {
        "load_data": "Processing", "train_model": "Processing", "evaluate_model": "Processing",
        "Check-condition-1": "Condition"}
    assert [s["Name"] for s in top["Check-condition-1"]["Arguments"]["IfSteps"]] == ["deploy_model"]


def test_the_condition_reads_a_scalar_through_a_property_file_as_the_sdk_does(training) -> None:
    doc = definition(training)
    check = next(s for s in doc["Steps"] if s["Type"] == "Condition")
    (cond,) = check["Arguments"]["Conditions"]
    assert cond == {"Type": "Equals", "RightValue": "yes", "LeftValue": {"Std:JsonGet": {
        "PropertyFile": {"Get": "Steps.evaluate_model.PropertyFiles.StackhopOutputs"}, "Path": "scalars.output"}}}
    evaluate = next(s for s in doc["Steps"] if s["Name"] == "evaluate_model")
    (prop,) = evaluate["PropertyFiles"]
    outputs = evaluate["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert prop["OutputName"] in {o["OutputName"] for o in outputs} and prop["FilePath"] == "outputs.json"
    sdk = reference_sdk_definition()
    if sdk is not None:  # the same shapes the SDK uses for a property-file condition
        sdk_check = next(s for s in sdk["Steps"] if s["Type"] == "Condition")
        sdk_left = sdk_check["Arguments"]["Conditions"][0]["LeftValue"]
        assert sdk_left.keys() == cond["LeftValue"].keys()
        assert sdk_left["Std:JsonGet"].keys() == cond["LeftValue"]["Std:JsonGet"].keys()
        assert set(sdk_check["Arguments"]) == set(check["Arguments"])


def test_steps_get_run_id_parameters_code_and_upstream_locations_from_sagemaker_expressions(training) -> None:
    doc = definition(training)
    train = next(s for s in doc["Steps"] if s["Name"] == "train_model")
    app = train["Arguments"]["AppSpecification"]
    assert app["ContainerEntrypoint"] == ["python", "-m", "stackhop.entrypoint"]
    args = app["ContainerArguments"]
    assert args[args.index("--run-id") + 1] == {"Get": "Execution.PipelineExecutionId"}
    assert args[args.index("--code") + 1] == {"Get": "Parameters.StackhopCode"}
    upstream = args[args.index("--upstream") + 1]["Std:Join"]
    assert upstream["Values"] == ["load_data", {"Get": "Steps.load_data.ProcessingOutputConfig.Outputs['stackhop'].S3Output.S3Uri"}]
    assert {"Std:Join": {"On": "=", "Values": ["n_estimators", {"Get": "Parameters.n_estimators"}]}} in args
    spec_uri = args[args.index("--spec") + 1]
    assert spec_uri.startswith("s3://ml-artifacts/stackhop/_stackhop/specs/") and spec_uri.endswith(".json")
    assert args[:6] == ["--spec", spec_uri, "--step", "train_model",
                        "--wiring", "stackhop.adapters.sagemaker.runtime:SageMakerWiring"]
    out = train["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]["Std:Join"]["Values"]
    assert out == ["s3://ml-artifacts/stackhop/training-pipeline", {"Get": "Execution.PipelineExecutionId"}, "train_model/_stackhop"]
    assert train["Arguments"]["RoleArn"] == "arn:aws:iam::123456789012:role/SageMakerRole"
    assert train["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}


def test_the_run_spec_is_a_second_file_named_by_its_content(training) -> None:
    compiled = stackhop.compile(training, "sm")
    spec = json.loads(compiled.files["stackhop-spec.json"])
    assert spec["pipeline"]["name"] == "training-pipeline" and spec["run_id"] == ""
    import hashlib

    digest = hashlib.sha256(compiled.files["stackhop-spec.json"]).hexdigest()
    assert f"specs/{digest}.json".encode() in compiled.files["sagemaker-pipeline.json"]


LOOPS = """
    from stackhop import step, pipeline, ParallelFor, If

    @step(resources={"cpu": "4", "memory": "16Gi", "gpu": 1, "accelerator": "t4"})
    def train(lr: float) -> float:
        return lr

    @step
    def report(score: float) -> None: ...

    @pipeline
    def sweep(threshold: float = 0.5, rates: list = [0.1]):
        with ParallelFor([0.1, 0.01]) as lr:
            t = train(lr=lr).set_retry(2).set_timeout(3600)
            with If((t.output > threshold) | (t.output.is_in([0.5, 0.7]))):
                with If(~(t.output == 0.3)):
                    report(score=t.output)

    @pipeline
    def dynamic(rates: list = [0.1]):
        with ParallelFor(rates) as lr:
            train(lr=lr)
"""


def test_static_loops_unroll_and_nested_conditions_become_one_anded_condition_step(project, write_pipeline, write_config) -> None:
    write_config(STACK)
    doc = definition(write_pipeline(LOOPS).sweep)
    assert schema_errors(doc) == []
    names = sorted(s["Name"] for s in doc["Steps"])
    assert names == ["Check-condition-2-0", "Check-condition-2-1", "train-0", "train-1"]
    check = next(s for s in doc["Steps"] if s["Name"] == "Check-condition-2-1")
    conditions = check["Arguments"]["Conditions"]
    assert [c["Type"] for c in conditions] == ["Or", "Not"]
    assert conditions[0]["Conditions"][1]["Type"] == "In"
    assert conditions[0]["Conditions"][1]["QueryValue"]["Std:JsonGet"]["PropertyFile"] == {
        "Get": "Steps.train-1.PropertyFiles.StackhopOutputs"}
    train = next(s for s in doc["Steps"] if s["Name"] == "train-1")
    assert train["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    assert train["Arguments"]["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert {r["ExceptionType"] for r in train["RetryPolicies"]} >= {"SageMaker.JOB_INTERNAL_ERROR"}
    assert all(r["MaxAttempts"] == 2 for r in train["RetryPolicies"])
    args = train["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--index") + 1] == "1"


def test_a_loop_over_a_runtime_list_is_a_compile_error_naming_the_step(project, write_pipeline, write_config) -> None:
    write_config(STACK)
    with pytest.raises(PipelineDefinitionError, match="step 'train' loops over parameter 'rates'"):
        stackhop.compile(write_pipeline(LOOPS).dynamic, "sm")


def test_features_sagemaker_cannot_express_are_refused_before_compiling(project, write_pipeline, write_config) -> None:
    write_config(STACK)
    module = write_pipeline("""
        from stackhop import step, pipeline, resource_op, ExitHandler

        @step
        def work() -> None: ...

        @pipeline
        def with_op():
            resource_op("cfg", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})

        @pipeline
        def with_exit():
            done = work()
            with ExitHandler(done):
                work()

        @pipeline
        def with_secret():
            work().set_secret_env("TOKEN", secret="api", key="token")
    """)
    for pipe, feature in ((module.with_op, "resource_ops"), (module.with_exit, "exit_handler"), (module.with_secret, "secrets")):
        with pytest.raises(CapabilityError, match=f"needs {feature}, which stack 'sm' \\(adapter 'sagemaker'\\)"):
            stackhop.compile(pipe, "sm")


def test_a_stack_without_a_role_is_an_error_naming_the_setting(training) -> None:
    with pytest.raises(PipelineDefinitionError, match="set settings.role_arn on the stack"):
        stackhop.compile(training, "norole")


TRAINING_STACK = """
stacks:
  sm:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "img:1"}
    settings: {role_arn: "arn:aws:iam::123456789012:role/SageMakerRole", training_steps: [train_model]}
  wrong:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "img:1"}
    settings: {role_arn: "arn:aws:iam::123456789012:role/SageMakerRole", training_steps: [evaluate_model]}
  typo:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {image: "img:1"}
    settings: {role_arn: "arn:aws:iam::123456789012:role/SageMakerRole", training_steps: [trian_model]}
"""


def test_a_stack_can_run_chosen_steps_as_training_jobs(project, write_pipeline, write_config) -> None:
    write_config(TRAINING_STACK)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    pipe = write_pipeline((project / "training_example.py").read_text(), name="training_example").training_pipeline
    doc = definition(pipe)
    assert schema_errors(doc) == []
    train = next(s for s in doc["Steps"] if s["Name"] == "train_model")
    assert train["Type"] == "Training" and "PropertyFiles" not in train
    algo = train["Arguments"]["AlgorithmSpecification"]
    assert algo["TrainingImage"] == "img:1" and algo["ContainerEntrypoint"] == ["python", "-m", "stackhop.entrypoint"]
    assert "--property-dir" not in algo["ContainerArguments"]
    assert train["Arguments"]["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert train["Arguments"]["ResourceConfig"]["InstanceType"].startswith("ml.")
    evaluate = next(s for s in doc["Steps"] if s["Name"] == "evaluate_model")
    args = evaluate["Arguments"]["AppSpecification"]["ContainerArguments"]
    ups = [args[i + 1]["Std:Join"]["Values"] for i, a in enumerate(args) if a == "--upstream"]
    train_up = next(v for v in ups if v[0] == "train_model")
    assert train_up[1]["Std:Join"]["Values"][1] == {"Get": "Execution.PipelineExecutionId"}, "a computed path, not a property"


def test_training_steps_must_not_feed_conditions_and_must_exist(project, write_pipeline, write_config) -> None:
    write_config(TRAINING_STACK)
    shutil.copy(EXAMPLES / "training_pipeline.py", project / "training_example.py")
    pipe = write_pipeline((project / "training_example.py").read_text(), name="training_example").training_pipeline
    with pytest.raises(PipelineDefinitionError, match="step 'evaluate_model', which the stack runs as a Training job"):
        stackhop.compile(pipe, "wrong")
    with pytest.raises(PipelineDefinitionError, match="settings.training_steps names 'trian_model', which is not a step"):
        stackhop.compile(pipe, "typo")


def test_the_training_schema_patch_matches_botocores_create_training_job() -> None:
    botocore_session = pytest.importorskip("botocore.session", reason="botocore is not installed (pip install 'stackhop[aws]')")
    model = botocore_session.get_session().get_service_model("sagemaker")
    request = model.operation_model("CreateTrainingJob").input_shape.members
    assert "Environment" in request
    assert {"ContainerEntrypoint", "ContainerArguments"} <= set(request["AlgorithmSpecification"].members)


def test_a_fail_step_compiles_to_a_sagemaker_fail_step_inside_its_condition(project, write_pipeline, write_config) -> None:
    write_config(STACK)
    module = write_pipeline(GATED_FAIL)
    doc = definition(module.gated)
    assert schema_errors(doc) == []
    check = next(s for s in doc["Steps"] if s["Type"] == "Condition")
    assert check["Arguments"]["IfSteps"] == [
        {"Name": "fail", "Type": "Fail", "Arguments": {"ErrorMessage": "accuracy is below the threshold"}}]
