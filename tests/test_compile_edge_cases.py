"""Compile edge cases from issue 12: pipelines a user writes that once crashed a compiler or blamed the wrong step.

Each pipeline is written as a user would write it; each compile must succeed with a valid,
deterministic document, or refuse with one sentence naming the pipeline, the step and the fix.
"""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.adapters.sagemaker.definition import instance_names
from stackhop.core.ir import Pipeline
from stackhop.errors import CapabilityError, PipelineDefinitionError, ValidationError

from conftest import k8s_stack
from sagemaker_schema import load_patched

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"

STACKS = f"""
stacks:
  sm:
    adapter: sagemaker
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {{image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1.0"}}
    settings: {{region: us-east-1, role_arn: "{ROLE}"}}
  k8s:
    adapter: kubernetes
    artifact_root: s3://ml-artifacts/stackhop
    defaults: {{image: "registry.example.com/ml/train:1.0"}}
    settings: {{namespace: ml}}
  vertex:
    adapter: vertex
    artifact_root: gs://ml-artifacts/stackhop
    defaults: {{image: "us-docker.pkg.dev/p/ml/train:1.0"}}
    settings: {{project: my-project, location: europe-west4}}
  kfp:
    adapter: kfp
    artifact_root: gs://ml-artifacts/stackhop
    defaults: {{image: "registry.example.com/ml/train:1.0"}}
    settings: {{host: "http://localhost:8080"}}
  dev:
    adapter: local
"""


@pytest.fixture
def stacks(project, write_config):
    write_config(STACKS)


def sagemaker_definition(pipe) -> dict:
    doc = json.loads(stackhop.compile(pipe, "sm").files["sagemaker-pipeline.json"])
    schema = load_patched()
    if schema is None:
        pytest.skip("../shared/reference/ is not beside this checkout, so the published schema cannot be read")
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    assert errors == []
    return doc


def steps_by_name(doc: dict) -> dict[str, dict]:
    out = {}
    for s in doc["Steps"]:
        out[s["Name"]] = s
        for inner in s.get("Arguments", {}).get("IfSteps", []) if s["Type"] == "Condition" else []:
            out[inner["Name"]] = inner
    return out


def step_argument(doc: dict, name: str, flag: str) -> object:
    args = steps_by_name(doc)[name]["Arguments"]["AppSpecification"]["ContainerArguments"]
    return args[args.index(flag) + 1] if flag in args else None


# ----------------------------------------------------------------------------- (a) exit handlers


def test_an_exit_handler_sagemaker_cannot_run_is_refused_naming_the_handler_not_the_body(stacks, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline, ExitHandler

        @step
        def train() -> None: ...

        @step
        def evaluate() -> None: ...

        @step
        def cleanup() -> None: ...

        @pipeline
        def guarded():
            done = cleanup()
            with ExitHandler(done):
                train()
                evaluate()
    """)
    with pytest.raises(CapabilityError) as caught:
        stackhop.compile(module.guarded, "sm")
    message = str(caught.value)
    assert message.startswith("pipeline 'guarded', step 'cleanup' (the exit handler) needs exit_handler, "
                              "which stack 'sm' (adapter 'sagemaker') does not support; adapters that do: ")
    assert "'train'" not in message and "'evaluate'" not in message
    assert message.endswith(".") and "\n" not in message
    assert "kubernetes" in message and "vertex" in message


# ----------------------------------------------------------------------------- (b) unrolled loop names

UNROLLED = """
    from stackhop import step, pipeline, ParallelFor

    @step
    def p(x: int) -> int:
        return x * 2

    @pipeline
    def unrolled():
        with ParallelFor([1, 2, 3]) as item:
            p(x=item)
        p(x=4)
        p(x=5)
"""


def test_the_dsl_auto_names_the_calls_after_the_loop_like_the_unrolled_instances(stacks, write_pipeline) -> None:
    ir = write_pipeline(UNROLLED).unrolled.build()
    assert [(s.name, s.group) for s in ir.steps] == [("p", "for-1"), ("p-2", None), ("p-3", None)]


def test_an_unrolled_loop_and_auto_named_calls_compile_for_sagemaker_with_unique_names(stacks, write_pipeline) -> None:
    module = write_pipeline(UNROLLED)
    doc = sagemaker_definition(module.unrolled)
    names = [s["Name"] for s in doc["Steps"]]
    assert len(names) == len(set(names)) == 5
    assert names == ["p_0", "p_1", "p_2", "p-2", "p-3"]
    for name, step, index in (("p_0", "p", "0"), ("p_1", "p", "1"), ("p_2", "p", "2"), ("p-2", "p-2", None),
                              ("p-3", "p-3", None)):
        assert step_argument(doc, name, "--step") == step
        assert step_argument(doc, name, "--index") == index


def test_the_unrolled_definition_is_byte_identical_on_every_compile(stacks, write_pipeline) -> None:
    module = write_pipeline(UNROLLED)
    first = stackhop.compile(module.unrolled, "sm")
    again = stackhop.compile(module.unrolled, "sm")
    assert first.files == again.files
    assert first.files["sagemaker-pipeline.json"] == again.files["sagemaker-pipeline.json"]


def test_status_names_map_each_sagemaker_step_back_to_its_instance(stacks, write_pipeline) -> None:
    ir = write_pipeline(UNROLLED).unrolled.build()
    mapping = instance_names(json.loads(ir.to_json()))
    assert mapping == {"p_0": "p[0]", "p_1": "p[1]", "p_2": "p[2]", "p-2": "p-2", "p-3": "p-3"}


def test_a_run_of_the_unrolled_pipeline_reports_each_instance_under_its_own_name(stacks, write_pipeline, aws) -> None:
    handle = stackhop.run(write_pipeline(UNROLLED).unrolled, "sm", wait=False)
    arn = handle.ref.data["execution_arn"]
    aws.set_steps(arn, [
        {"StepName": "p_0", "StepStatus": "Succeeded"},
        {"StepName": "p_1", "StepStatus": "Failed", "FailureReason": "iteration 1 broke"},
        {"StepName": "p-2", "StepStatus": "Executing"},
    ])
    steps = handle.steps()
    assert {k: v.status for k, v in steps.items()} == {
        "p[0]": StepStatus.SUCCEEDED, "p[1]": StepStatus.FAILED, "p[2]": StepStatus.PENDING,
        "p-2": StepStatus.RUNNING, "p-3": StepStatus.PENDING}
    assert steps["p[1]"].message == "iteration 1 broke"


# ----------------------------------------------------------------------------- (c) .after() and loops


def test_a_step_after_a_task_in_a_loop_waits_for_every_iteration(stacks, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline, ParallelFor

        @step
        def prep(i: int) -> int:
            return i

        @step
        def train(i: int) -> None: ...

        @step
        def report() -> None: ...

        @pipeline
        def after_loop():
            with ParallelFor([0, 1, 2]) as i:
                prepared = prep(i=i)
                train(i=i).after(prepared)
            report().after(prepared)
    """)
    doc = sagemaker_definition(module.after_loop)
    steps = steps_by_name(doc)
    assert steps["report"]["DependsOn"] == ["prep-0", "prep-1", "prep-2"]
    for k in range(3):
        assert steps[f"train-{k}"]["DependsOn"] == [f"prep-{k}"]
        assert "DependsOn" not in steps[f"prep-{k}"]


def test_after_across_nested_loops_keeps_the_shared_iteration_and_waits_for_the_inner_ones(stacks, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline, ParallelFor

        @step
        def shard(region: str, part: int) -> None: ...

        @step
        def merge(region: str) -> None: ...

        @pipeline
        def nested():
            with ParallelFor(["eu", "us"]) as region:
                with ParallelFor([1, 2]) as part:
                    piece = shard(region=region, part=part)
                merge(region=region).after(piece)
    """)
    steps = steps_by_name(sagemaker_definition(module.nested))
    assert steps["merge-0"]["DependsOn"] == ["shard-0-0", "shard-0-1"]
    assert steps["merge-1"]["DependsOn"] == ["shard-1-0", "shard-1-1"]


# ----------------------------------------------------------------------------- (d) parameters in resource ops

RESOURCE_PARAMS = """
    from stackhop import pipeline, resource_op

    SCALER_CRD = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "scalers.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "scalers", "singular": "scaler", "kind": "Scaler"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": {"type": "object", "properties": {
                         "replicas": {"type": "integer"}, "ratio": {"type": "number"},
                         "enabled": {"type": "boolean"}, "zones": {"type": "array", "items": {"type": "string"}}}}}}}}]},
    }

    @pipeline
    def configured(lr: str = "0.1", replicas: int = 2, ratio: float = 0.5, enabled: bool = True,
                   zones: list = ["a"], name: str = "settings"):
        resource_op("make-config", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                    "data": {"lr": lr, "fixed": "yes"}}, "apply",
                    outputs={"lr": "data.lr"})
        resource_op("scale", {"apiVersion": "example.com/v1", "kind": "Scaler", "metadata": {"name": "s1"},
                              "spec": {"replicas": replicas, "ratio": ratio, "enabled": enabled, "zones": zones}})

    @pipeline
    def deployment(replicas: int = 2):
        resource_op("deploy", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                                        "template": {"metadata": {"labels": {"app": "web"}},
                                                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}},
                    "apply")

    @pipeline
    def mistyped(replicas: str = "two"):
        resource_op("deploy", {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                                        "template": {"metadata": {"labels": {"app": "web"}},
                                                     "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}},
                    "apply")
"""


def k8s_docs(pipe) -> list[dict]:
    return [d for d in yaml.safe_load_all(stackhop.compile(pipe, "k8s").files["kubernetes.yaml"]) if d]


def test_a_parameter_in_a_manifest_is_recorded_in_the_ir_not_traced_into_the_manifest(stacks, write_pipeline) -> None:
    ir = write_pipeline(RESOURCE_PARAMS).configured.build()
    op = ir.step("make-config").resource
    assert op.manifest["data"] == {"lr": None, "fixed": "yes"} and op.manifest["metadata"] == {"name": None}
    assert [(mp.path, mp.parameter) for mp in op.parameters] == [(("metadata", "name"), "name"), (("data", "lr"), "lr")]
    assert Pipeline.from_json(ir.to_json()) == ir


def test_a_parametrised_manifest_compiles_with_its_defaults_and_says_where_each_run_puts_its_values(stacks, write_pipeline) -> None:
    module = write_pipeline(RESOURCE_PARAMS)
    first = stackhop.compile(module.deployment, "k8s")
    assert first.files == stackhop.compile(module.deployment, "k8s").files
    (deploy,) = k8s_docs(module.deployment)
    assert deploy["spec"]["replicas"] == 2
    assert json.loads(deploy["metadata"]["annotations"]["stackhop.dev/parameters"]) == [[["spec", "replicas"], "replicas"]]
    (cm, scaler) = k8s_docs(module.configured)
    assert cm["data"] == {"lr": "0.1", "fixed": "yes"} and cm["metadata"]["name"] == "settings"
    assert scaler["spec"] == {"replicas": 2, "ratio": 0.5, "enabled": True, "zones": ["a"]}


def test_a_parameter_of_the_wrong_type_for_its_field_is_refused_naming_parameter_and_field(stacks, write_pipeline) -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        stackhop.compile(write_pipeline(RESOURCE_PARAMS).mistyped, "k8s")
    assert str(caught.value) == (
        "pipeline 'mistyped', step 'deploy': the Deployment manifest's field spec.replicas takes int on "
        "Kubernetes 1.30, but pipeline parameter 'replicas' is str; declare the parameter as int.")


def test_a_step_output_in_a_manifest_is_refused_when_traced(stacks, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import step, pipeline, resource_op

        @step
        def pick() -> str:
            return "x"

        @pipeline
        def from_output():
            resource_op("cfg", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                                "data": {"v": pick().output}})
    """)
    with pytest.raises(PipelineDefinitionError, match=(
            r"^pipeline 'from-output', step 'cfg': the manifest's field data\.v is output 'output' of step 'pick', "
            r"but a manifest can take only constants and pipeline parameters; pass a pipeline parameter or a constant there\.$")):
        module.from_output.build()


def test_a_parameter_cannot_stand_for_a_manifest_part_stackhop_must_know_at_compile(stacks, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import pipeline, resource_op

        @pipeline
        def typed(kind: str = "ConfigMap"):
            resource_op("cfg", {"apiVersion": "v1", "kind": kind, "metadata": {"name": "c"}})

        @pipeline
        def labelled(labels: dict = {"team": "ml"}):
            resource_op("cfg", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": labels}})

        @pipeline
        def one_label(team: str = "ml"):
            resource_op("cfg", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"team": team}}})
    """)
    with pytest.raises(PipelineDefinitionError, match=(
            r"^pipeline 'typed', step 'cfg': the manifest's kind cannot be a pipeline parameter, because the object's "
            r"type must be known when the pipeline compiles; write it as a constant\.$")):
        module.typed.build()
    with pytest.raises(PipelineDefinitionError, match=(
            r"^pipeline 'labelled', step 'cfg': the manifest's metadata\.labels cannot be a pipeline parameter, because "
            r"stackhop adds its labels there; write it out, with parameters as values inside it\.$")):
        module.labelled.build()
    (cm,) = k8s_docs(module.one_label)
    assert cm["metadata"]["labels"]["team"] == "ml" and cm["metadata"]["labels"]["stackhop.dev/step"] == "cfg"


def test_the_run_applies_the_manifest_with_the_runs_parameter_values_in_their_types(project, write_pipeline, write_config) -> None:
    from kubernetes import client

    from stackhop.testing.kubernetes import FakeKubernetes

    module = write_pipeline(RESOURCE_PARAMS)
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        client.ApiextensionsV1Api(kube.api_client()).create_custom_resource_definition(module.SCALER_CRD)
        handle = stackhop.run(module.configured, parameters={
            "lr": "0.25", "replicas": 3, "ratio": 0.75, "enabled": False, "zones": ["x", "y"], "name": "tuned"})
        assert handle.status == RunStatus.SUCCEEDED, handle.state().message
        (cm,) = [c for c in kube.objects("ConfigMap", "ml") if c["metadata"]["name"] == "tuned"]
        assert cm["data"] == {"lr": "0.25", "fixed": "yes"}
        assert handle.artifact("make-config", "lr").load() == "0.25"
        (scaler,) = kube.objects("Scaler", "ml")
        assert scaler["spec"] == {"replicas": 3, "ratio": 0.75, "enabled": False, "zones": ["x", "y"]}
        assert type(scaler["spec"]["replicas"]) is int and type(scaler["spec"]["enabled"]) is bool


# ----------------------------------------------------------------------------- (e) artifacts fed plain values

ARTIFACT_INPUTS = """
    from stackhop import step, pipeline, ParallelFor, Input, Output, Dataset

    @step
    def make(data: Output[Dataset]) -> None: ...

    @step
    def train(data: Input[Dataset]) -> None: ...

    @pipeline
    def fed_none():
        train(data=None)

    @pipeline
    def fed_item():
        with ParallelFor(["a.csv", "b.csv"]) as item:
            train(data=item)

    @pipeline
    def fed_output():
        train(data=make().outputs["data"])
"""


def test_an_artifact_input_fed_none_is_refused_when_traced(stacks, write_pipeline) -> None:
    with pytest.raises(ValidationError) as caught:
        write_pipeline(ARTIFACT_INPUTS).fed_none.build()
    assert str(caught.value) == ("pipeline 'fed-none', step 'train', input 'data' is an artifact (Input[Dataset]) "
                                 "but gets None; pass another step's output.")


def test_an_artifact_input_fed_a_loop_item_is_refused_when_traced(stacks, write_pipeline) -> None:
    with pytest.raises(ValidationError) as caught:
        write_pipeline(ARTIFACT_INPUTS).fed_item.build()
    assert str(caught.value) == ("pipeline 'fed-item', step 'train', input 'data' is an artifact (Input[Dataset]) "
                                 "but gets the item of for-1, a plain value; pass another step's output.")


@pytest.mark.parametrize("stack", ["vertex", "kfp", "sm", "k8s", "dev"])
def test_an_ir_with_an_artifact_fed_none_is_refused_before_any_adapter_sees_it(stacks, write_pipeline, stack) -> None:
    good = json.loads(write_pipeline(ARTIFACT_INPUTS).fed_output.build().to_json())
    train = next(s for s in good["steps"] if s["name"] == "train")
    train["inputs"][0]["value"] = {"kind": "const", "value": None}
    ir = Pipeline.from_json(json.dumps(good))
    with pytest.raises(ValidationError, match=r"step 'train', input 'data' is an artifact \(Input\[Dataset\]\) but gets None"):
        stackhop.compile(ir, stack)
    loop = json.loads(write_pipeline(ARTIFACT_INPUTS).fed_output.build().to_json())
    loop["groups"] = [{"id": "for-1", "kind": "parallel_for", "items": {"static": ["a", "b"]}}]
    for s in loop["steps"]:
        s["group"] = "for-1"
    next(s for s in loop["steps"] if s["name"] == "train")["inputs"][0]["value"] = {"kind": "loop_item", "loop": "for-1"}
    with pytest.raises(ValidationError, match=r"input 'data' is an artifact \(Input\[Dataset\]\) but gets the item of for-1"):
        stackhop.compile(Pipeline.from_json(json.dumps(loop)), stack)


def test_an_artifact_from_another_step_still_compiles_everywhere(stacks, write_pipeline) -> None:
    pipe = write_pipeline(ARTIFACT_INPUTS).fed_output
    for stack in ("vertex", "kfp", "sm", "k8s", "dev"):
        assert stackhop.compile(pipe, stack).files
