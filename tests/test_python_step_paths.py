"""InputPath / OutputPath on Python steps: code written for KFP components runs as a stackhop step unchanged.

The function is handed local path strings: where an input artifact (or a scalar's text) is, where to
write an output artifact, and a file whose text becomes a scalar output, parsed the way a container
step's OutputPath is. Downstream steps, Python or container, see the same values either way.
"""

from __future__ import annotations

import pytest

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.errors import PipelineDefinitionError

TRAINING = """
import json

from stackhop import (Dataset, Input, InputPath, InputValue, Model, Output, OutputPath, container_step, pipeline,
                      step)


@step
def make_rows(rows: Output[Dataset]) -> None:
    with open(rows.path, "w") as f:
        f.write("1\\n2\\n3\\n")


@step
def train(data: InputPath("Dataset"), label: InputPath(str), model: OutputPath("Model"), n: OutputPath(int),
          good: OutputPath(bool), summary: OutputPath(dict)) -> float:
    assert isinstance(data, str) and isinstance(model, str)
    values = [int(line) for line in open(data)]
    with open(model, "w") as f:
        f.write(open(label).read() + ":" + ",".join(map(str, values)))
    with open(n, "w") as f:
        f.write(f"{len(values)}\\n")
    with open(good, "w") as f:
        f.write("true")
    with open(summary, "w") as f:
        json.dump({"sum": sum(values)}, f)
    return sum(values) / len(values)


@step
def evaluate(model: Input[Model], n: int, good: bool, summary: dict, mean: float) -> str:
    return f"{open(model.path).read()}|n={n}|good={good}|sum={summary['sum']}|mean={mean}"


@pipeline
def training(label: str = "v1"):
    t = train(data=make_rows().outputs["rows"], label=label)
    evaluate(model=t.outputs["model"], n=t.outputs["n"], good=t.outputs["good"], summary=t.outputs["summary"],
             mean=t.outputs["output"])
    container_step("echo-n", image="busybox", command=["sh", "-c", 'echo "n is $0" > "$1"'],
                   args=[InputValue("n"), OutputPath("said")], inputs={"n": t.outputs["n"]}, outputs={"said": str})
"""


@pytest.fixture
def training(write_pipeline):
    return write_pipeline(TRAINING)


def test_path_parameters_become_the_steps_typed_inputs_and_outputs(training) -> None:
    train = training.training.build().step("train")

    assert [(i.name, i.type) for i in train.inputs] == [("data", "Dataset"), ("label", "str")]
    assert [(o.name, o.type, o.from_return) for o in train.outputs] == [
        ("model", "Model", False), ("n", "int", False), ("good", "bool", False), ("summary", "dict", False),
        ("output", "float", False)]


def test_the_function_gets_paths_and_downstream_steps_get_the_values(training) -> None:
    handle = stackhop.run(training.training, parameters={"label": "v2"})

    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("evaluate", "output").load() == "v2:1,2,3|n=3|good=True|sum=6|mean=2.0"
    assert handle.artifact("train", "n").value == 3
    assert handle.artifact("train", "good").value is True
    assert handle.artifact("train", "model").type == "Model"
    assert handle.artifact("echo-n", "said").value == "n is 3"


def test_a_scalar_output_path_left_unwritten_fails_the_step_naming_it(write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import OutputPath, pipeline, step

        @step
        def count(n: OutputPath(int)) -> None:
            pass

        @pipeline
        def p():
            count()
    """)
    handle = stackhop.run(module.p)

    assert handle.status == RunStatus.FAILED
    step = handle.steps()["count"]
    assert step.status == StepStatus.FAILED
    assert "step 'count' did not write scalar output 'n'; write its value as text to the path" in step.message


def test_text_that_is_not_the_declared_type_fails_the_step(write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import OutputPath, pipeline, step

        @step
        def count(n: OutputPath(int)) -> None:
            open(n, "w").write("lots")

        @pipeline
        def p():
            count()
    """)
    handle = stackhop.run(module.p)

    assert handle.status == RunStatus.FAILED
    assert "step 'count' wrote 'lots' to output 'n', which is not a valid int" in handle.steps()["count"].message


@pytest.mark.parametrize("signature, message", [
    ("n: OutputPath(int) = 3", r"step 'f': parameter 'n' is an OutputPath, which the step writes; remove its default\."),
    ("data: InputPath(3)", r"step 'f': parameter 'data' is InputPath\(3\); name what the path holds, e\.g\. "
                           r"InputPath\(Dataset\), InputPath\(\"Model\"\) or InputPath\(int\)\."),
    ("model: OutputPath(\"Model\"), output: OutputPath(int)",
     r"step 'f' has a parameter 'output'.*every output needs its own name"),
], ids=["output with a default", "no type", "clashes with the return value"])
def test_a_path_annotation_that_cannot_work_is_one_sentence_at_build(write_pipeline, signature, message) -> None:
    module = write_pipeline(f"""
        from stackhop import InputPath, OutputPath, pipeline, step

        @step
        def f({signature}) -> int:
            return 1

        @pipeline
        def p():
            f()
    """)
    with pytest.raises(PipelineDefinitionError, match=message):
        module.p.build()


def test_an_unknown_type_name_is_a_plain_artifact_as_kfp_reads_it(write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import OutputPath, pipeline, step

        @step
        def export(table: OutputPath("CSV")) -> None:
            open(table, "w").write("a,b\\n")

        @pipeline
        def p():
            export()
    """)
    assert [(o.name, o.type) for o in module.p.build().step("export").outputs] == [("table", "Artifact")]
    handle = stackhop.run(module.p)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    with open(handle.artifact("export", "table").uri.removeprefix("file://")) as f:
        assert f.read() == "a,b\n"
