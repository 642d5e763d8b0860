"""Pipelines that call pipelines and return outputs, as kfp users write them.

A pipeline called inside another is a task with `.outputs`; its steps join the caller's under
scoped names (`prepare-clean`), so conditions, `.after()`, caching and status work per inner
step on every backend. What a pipeline returns (a step output, a dict or a NamedTuple) is
`RunHandle.outputs`, `runs show` lists it, and in a PipelineSpec it is the root DAG's outputs.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.errors import PipelineDefinitionError, ValidationError
from stackhop.testing.kubernetes import FakeKubernetes

from conftest import emulated_stacks, k8s_stack

TRAINING = """
from typing import NamedTuple

from stackhop import Dataset, If, Input, Model, Output, pipeline, step


@step
def make_rows(rows: Output[Dataset], n: int) -> int:
    with open(rows.path, "w") as f:
        f.write("".join(f"{i}, {i * i}\\n" for i in range(n)) + "\\n\\n")
    return n


@step
def clean(rows: Input[Dataset], cleaned: Output[Dataset]) -> int:
    lines = [line.replace(" ", "") for line in open(rows.path) if line.strip()]
    with open(cleaned.path, "w") as f:
        f.writelines(lines)
    cleaned.metadata["rows"] = len(lines)
    return len(lines)


@step
def fit(data: Input[Dataset], model: Output[Model]) -> float:
    pairs = [tuple(map(int, line.split(","))) for line in open(data.path)]
    slope = sum(y for _, y in pairs) / max(1, sum(x for x, _ in pairs))
    with open(model.path, "w") as f:
        f.write(str(slope))
    return round(slope, 3)


@step
def announce(score: float) -> str:
    return f"score {score}"


@pipeline
def prepare(n: int = 5):
    \"\"\"Reused by every training pipeline: raw rows in, clean rows out.\"\"\"
    raw = make_rows(n=n)
    return clean(rows=raw.outputs["rows"]).outputs["cleaned"]


class Trained(NamedTuple):
    model: Model
    score: float


@pipeline
def train_twice(n: int = 5, announce_above: float = 1.0):
    first = prepare(n=n)
    second = prepare(n=3).after(first)
    model = fit(data=first.output)
    with If(model.output > announce_above):
        announce(score=model.output)
    fit(data=second.output).set_name("fit-small")
    return Trained(model=model.outputs["model"], score=model.output)
"""

STACKS = emulated_stacks("nested")

INNER_STEPS = ["prepare-make_rows", "prepare-clean", "prepare-2-make_rows", "prepare-2-clean"]


@pytest.fixture
def training(write_pipeline, write_config):
    write_config(STACKS)
    return write_pipeline(TRAINING)


def outcome(handle) -> tuple[float, str]:
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    outputs = handle.outputs
    assert sorted(outputs) == ["model", "score"]
    return outputs["score"].load(), outputs["model"].load().decode()


def test_inner_steps_join_the_caller_under_the_name_of_the_pipeline_that_holds_them(training) -> None:
    ir = training.train_twice.build()
    assert [s.name for s in ir.steps] == [*INNER_STEPS, "fit", "announce", "fit-small"]
    assert set(ir.step("prepare-2-make_rows").after) == {"prepare-make_rows", "prepare-clean"}
    assert ir.step("fit").inputs[0].value.step == "prepare-clean"
    assert [(o.name, o.type, o.value.step) for o in ir.outputs] == [("model", "Model", "fit"), ("score", "float", "fit")]


def test_a_local_run_hands_back_what_the_pipeline_returned(training) -> None:
    handle = stackhop.run(training.train_twice, progress=False)
    assert outcome(handle) == (3.0, "3.0")
    steps = handle.steps()
    assert steps["announce"].status == StepStatus.SUCCEEDED
    assert steps["prepare-2-clean"].status == StepStatus.SUCCEEDED
    assert handle.artifact("prepare-clean", "cleaned").metadata["rows"] == 5
    again = stackhop.run(training.train_twice, progress=False)
    assert {s.status for s in again.steps().values()} == {StepStatus.CACHED}, "caching works per inner step"
    assert outcome(again) == (3.0, "3.0")


def test_runs_show_lists_the_pipeline_outputs_with_their_values(training) -> None:
    from stackhop.cli.main import app

    handle = stackhop.run(training.train_twice, parameters={"n": 4}, progress=False)
    result = CliRunner().invoke(app, ["runs", "show", handle.run_id, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["pipeline_outputs"]
    assert shown["score"] == {"step": "fit", "output": "output", "type": "float", "value": 2.333,
                              "uri": handle.outputs["score"].uri}
    assert shown["model"]["uri"] == handle.outputs["model"].uri and shown["model"]["type"] == "Model"
    table = CliRunner().invoke(app, ["runs", "show", handle.run_id], env={"COLUMNS": "200"})
    assert "pipeline outputs" in table.output and "fit.output" in table.output and "rows=4" in table.output


def test_the_nested_pipeline_runs_through_the_fake_kubernetes_server(training, project, write_config) -> None:
    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        handle = stackhop.run(training.train_twice, parameters={"announce_above": 5.0}, cache=False, progress=False)
        assert handle.wait(timeout=180) == RunStatus.SUCCEEDED, handle.state().message
        assert handle.steps()["announce"].status == StepStatus.SKIPPED
        assert outcome(handle) == (3.0, "3.0")


def test_the_nested_pipeline_runs_from_its_compiled_sagemaker_definition(training, aws) -> None:
    handle = stackhop.run(training.train_twice, "sm", emulate=True, cache=False, progress=False)
    assert outcome(handle) == (3.0, "3.0")
    assert {s for s in handle.steps()} >= set(INNER_STEPS)


@pytest.mark.parametrize("stack", ["vertex", "kfp"])
def test_the_nested_pipeline_runs_from_its_compiled_pipeline_spec(training, gcs, stack) -> None:
    handle = stackhop.run(training.train_twice, stack, emulate=True, cache=False, progress=False)
    assert outcome(handle) == (3.0, "3.0")


KFP_TRAINING = """
from typing import NamedTuple

from kfp import dsl


@dsl.component(base_image="python:3.11")
def fit(n: int, model: dsl.Output[dsl.Model]) -> float:
    return 1.0


@dsl.pipeline
def train_twice(n: int = 5) -> NamedTuple("Outputs", [("model", dsl.Model), ("score", float)]):
    task = fit(n=n)
    Outputs = NamedTuple("Outputs", [("model", dsl.Model), ("score", float)])
    return Outputs(model=task.outputs["model"], score=task.outputs["Output"])
"""


def test_the_pipeline_spec_returns_what_kfps_compiler_returns_for_the_same_pipeline(training, write_pipeline,
                                                                                     tmp_path) -> None:
    from kfp import compiler

    compiler.Compiler().compile(write_pipeline(KFP_TRAINING).train_twice, str(tmp_path / "kfp.yaml"))
    import yaml

    theirs = yaml.safe_load((tmp_path / "kfp.yaml").read_text())["root"]
    ours = _compiled_spec(training.train_twice, "vertex")["root"]
    assert ours["outputDefinitions"] == theirs["outputDefinitions"]
    for kind in ("parameters", "artifacts"):
        assert set(ours["dag"]["outputs"][kind]) == set(theirs["dag"]["outputs"][kind])
    assert ours["dag"]["outputs"]["artifacts"]["model"] == {
        "artifactSelectors": [{"outputArtifactKey": "model", "producerSubtask": "fit"}]}
    assert theirs["dag"]["outputs"]["artifacts"]["model"] == ours["dag"]["outputs"]["artifacts"]["model"]
    assert ours["dag"]["outputs"]["parameters"]["score"]["valueFromParameter"]["producerSubtask"] == "fit"

    from kfp.pipeline_spec import pipeline_spec_pb2
    from google.protobuf import json_format

    json_format.ParseDict(_compiled_spec(training.train_twice, "vertex"), pipeline_spec_pb2.PipelineSpec())


def _compiled_spec(pdef, stack: str) -> dict:
    compiled = stackhop.compile(pdef, stack)
    return json.loads(compiled.files["pipeline.json"])


def test_a_pipeline_that_returns_nothing_keeps_the_digest_it_always_had(write_pipeline) -> None:
    module = write_pipeline(
        "from stackhop import pipeline, step\n\n@step\ndef one() -> int:\n    return 1\n\n"
        "@pipeline\ndef plain():\n    one()\n")
    ir = module.plain.build()
    assert ir.outputs == () and "outputs" not in json.loads(ir.to_json())
    assert type(ir).from_json(ir.to_json()) == ir


BAD = [
    ("@pipeline\ndef p():\n    return 3\n", "returns 3 as it; a pipeline returns step outputs"),
    ("@pipeline\ndef p():\n    x = one()\n    with If(x.output > 0):\n        y = one()\n    return y.output\n",
     "which runs only when condition-1 holds"),
    ("@pipeline\ndef p():\n    with ParallelFor([1, 2]):\n        y = one()\n    return {'y': y.output}\n",
     "which runs once per item of for-1"),
    ("@pipeline\ndef p():\n    return {'not a name': one().output}\n", "name pipeline outputs with Python identifiers"),
    ("@pipeline\ndef p():\n    return p()\n", "pipeline 'p' calls itself (p -> p)"),
    ("@pipeline\ndef q(n: int):\n    return one().output\n\n@pipeline\ndef p():\n    return q().output\n",
     "pipeline 'q' called from pipeline 'p' needs parameter 'n'"),
    ("@pipeline\ndef q(n: int):\n    return one().output\n\n@pipeline\ndef p():\n    return q(n='many').output\n",
     "parameter 'n' is int but gets str 'many'"),
    ("@pipeline\ndef q(n: int):\n    return one().output\n\n@pipeline\ndef p():\n    return q(m=1).output\n",
     "its parameters are n"),
    ("@pipeline\ndef q():\n    one()\n\n@pipeline\ndef p():\n    return q().output\n",
     "returns 0 outputs (none) and no single one"),
]


@pytest.mark.parametrize("body,fragment", BAD)
def test_a_bad_return_or_call_is_refused_in_one_sentence(write_pipeline, body, fragment) -> None:
    module = write_pipeline("from stackhop import If, ParallelFor, pipeline, step\n\n@step\ndef one() -> int:\n"
                            "    return 1\n\n" + body)
    with pytest.raises((PipelineDefinitionError, ValidationError)) as caught:
        module.p.build()
    assert fragment in str(caught.value)
    assert str(caught.value).rstrip(".").count(". ") == 0, "one sentence"


def test_the_cli_exits_2_on_a_recursive_pipeline(write_pipeline, project) -> None:
    from test_cli import assert_user_error, stackhop as cli

    write_pipeline("from stackhop import pipeline, step\n\n@step\ndef one() -> int:\n    return 1\n\n"
                   "@pipeline\ndef loop():\n    one()\n    loop()\n", name="recursive")
    assert_user_error(cli(project, "compile", "recursive.py", "-o", str(project / "out")), "calls itself (loop -> loop)")


def test_the_cli_takes_the_pipeline_no_other_pipeline_of_the_file_calls(training, project) -> None:
    from test_cli import json_out, stackhop as cli

    (project / "training.py").write_text(TRAINING)
    json_out(cli(project, "compile", "training.py", "-s", "vertex", "-o", str(project / "out"), "--json"))
    assert json.loads((project / "out" / "pipeline.json").read_text())["pipelineInfo"]["name"] == "train-twice"
    two_roots = TRAINING + "\n\n@pipeline\ndef other():\n    make_rows(n=1)\n"
    (project / "two.py").write_text(two_roots)
    from test_cli import assert_user_error

    assert_user_error(cli(project, "compile", "two.py", "-o", str(project / "out2")), "defines 3 pipelines")


KFP_NESTED = """
from kfp import dsl


@dsl.component(base_image="python:3.11")
def make_rows(rows: dsl.Output[dsl.Dataset], n: int) -> int:
    return n


@dsl.component(base_image="python:3.11")
def clean(rows: dsl.Input[dsl.Dataset], cleaned: dsl.Output[dsl.Dataset]) -> int:
    return 1


@dsl.component(base_image="python:3.11")
def fit(data: dsl.Input[dsl.Dataset], model: dsl.Output[dsl.Model]) -> float:
    return 1.0


@dsl.component(base_image="python:3.11")
def announce(score: float) -> str:
    return ""


@dsl.pipeline
def prepare(n: int = 5) -> dsl.Dataset:
    raw = make_rows(n=n)
    return clean(rows=raw.outputs["rows"]).outputs["cleaned"]


@dsl.pipeline
def train_twice(n: int = 5, announce_above: float = 1.0):
    first = prepare(n=n)
    second = prepare(n=3).after(first)
    model = fit(data=first.output)
    with dsl.If(model.outputs["Output"] > announce_above):
        announce(score=model.outputs["Output"])
    fit(data=second.output)
"""


def test_each_call_of_a_nested_pipeline_is_a_dag_task_as_kfp_compiles_it(training, write_pipeline, tmp_path) -> None:
    """The same tasks and dependencies at the root, each call a DAG component that takes the inner pipeline's
    parameters and returns its outputs by name. The tasks inside keep stackhop's scoped names (`prepare-clean`):
    a backend's task details name a task, and two calls' `clean` tasks must not read as one step."""
    from kfp import compiler
    import yaml

    compiler.Compiler().compile(write_pipeline(KFP_NESTED).train_twice, str(tmp_path / "kfp.yaml"))
    theirs = yaml.safe_load((tmp_path / "kfp.yaml").read_text())
    ours = _compiled_spec(training.train_twice, "vertex")
    root_t, root_o = theirs["root"]["dag"]["tasks"], ours["root"]["dag"]["tasks"]
    for name in ("prepare", "prepare-2", "fit"):
        assert root_o[name].get("dependentTasks") == root_t[name].get("dependentTasks"), name
        assert root_o[name]["cachingOptions"] == root_t[name]["cachingOptions"]
    assert root_o["fit"]["inputs"]["artifacts"]["data"]["taskOutputArtifact"]["producerTask"] == "prepare"
    assert root_o["fit"]["inputs"]["artifacts"]["data"] == _stackhop_spelling(root_t["fit"]["inputs"]["artifacts"]["data"])
    for call in ("prepare", "prepare-2"):
        comp_t, comp_o = _stackhop_spelling(theirs["components"][f"comp-{call}"]), ours["components"][f"comp-{call}"]
        inner_t, inner_o = comp_t["dag"]["tasks"], comp_o["dag"]["tasks"]
        assert sorted(inner_o) == sorted(f"{call}-{t}" for t in inner_t)
        assert inner_o[f"{call}-clean"]["dependentTasks"] == [f"{call}-make-rows"]
        assert inner_o[f"{call}-make-rows"]["inputs"]["parameters"]["n"] == inner_t["make-rows"]["inputs"]["parameters"]["n"]
        for part in ("inputDefinitions", "outputDefinitions"):
            assert _without_stackhop(comp_o[part]) == comp_t[part], (call, part)
        assert _without_stackhop(comp_o["dag"]["outputs"])["artifacts"]["output"]["artifactSelectors"][0][
            "outputArtifactKey"] == "cleaned"
        assert _without_stackhop(root_o[call]["inputs"]) == root_t[call]["inputs"], call
    from kfp.components import load_component_from_text

    assert load_component_from_text(json.dumps(ours)).name == "train-twice"


PER_ITEM = """
from stackhop import Collected, ParallelFor, pipeline, step


@step
def double(x: int) -> int:
    return 2 * x


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@pipeline
def score_one(x: int):
    return double(x=double(x=x).output).output


@pipeline
def score_all():
    with ParallelFor([1, 2, 3]) as item:
        scored = score_one(x=item)
    total(xs=Collected(scored.output))
"""


@pytest.mark.parametrize("stack,emulate", [("laptop", False), ("vertex", True), ("sm", True)])
def test_a_nested_pipeline_runs_once_per_item_of_a_loop_around_it(write_pipeline, write_config, gcs, aws, stack,
                                                                   emulate) -> None:
    write_config(STACKS)
    module = write_pipeline(PER_ITEM)
    handle = stackhop.run(module.score_all, stack, emulate=emulate, cache=False, progress=False)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("total", "output").value == 24
    assert sorted(k for k in handle.steps() if k.startswith("score-one-double-2")) == [
        "score-one-double-2[0]", "score-one-double-2[1]", "score-one-double-2[2]"]


def _stackhop_spelling(spec: dict) -> dict:
    """kfp's document with its `Output` spelled as stackhop names a return value."""
    return json.loads(json.dumps(spec).replace('"Output"', '"output"'))


def _without_stackhop(spec: dict) -> dict:
    """Without stackhop's own code-archive and record channels, which kfp's components have no need of."""
    def drop(node):
        if isinstance(node, dict):
            return {k: drop(v) for k, v in node.items() if "stackhop_" not in k}
        return node
    return drop(spec)
