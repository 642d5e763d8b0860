"""Steps written the way a careless or hostile user writes them.

A step that returns what JSON cannot hold fails as the step's own failure: `stackhop run` exits 1,
and the step's log and its status message carry one sentence naming the step, the output and the
fix, never a stackhop traceback. Step functions stackhop cannot run (async ones, generators,
outputs sharing a name) and two functions given one explicit name are refused while the pipeline
is defined, with one PipelineDefinitionError sentence.
"""

from __future__ import annotations

import itertools
import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stackhop.cli.main import main
from stackhop.core.api import get_run
from stackhop.core.source import import_file
from stackhop.errors import PipelineDefinitionError

_n = itertools.count()


def pipeline_file(project: Path, source: str) -> Path:
    path = project / f"hostile_steps_{next(_n)}.py"
    path.write_text(textwrap.dedent(source))
    return path


def run_cli(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str, dict[str, Any]]:
    """`stackhop run <file> -s local`, then `stackhop runs show <id> --json`: (exit code, run id, the run)."""
    code = main(["run", str(path), "-s", "local"])
    out = capsys.readouterr()
    found = re.search(r"\brun (\d{8}-\d{6}-[0-9a-f]+)", out.out + out.err)
    assert found, out.out + out.err
    run_id = found.group(1)
    assert main(["runs", "show", run_id, "--json"]) == 0
    return code, run_id, json.loads(capsys.readouterr().out)


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


# ----------------------------------------------------------------------------- values JSON cannot hold

UNHOLDABLE = {
    "a dict with a tuple key": (
        "dict", "return {(1, 2): 3}",
        "step 'bad' returned a dict with a non-string key (1, 2) for output 'output'; JSON object keys are strings, "
        "so convert the keys with str() or return a list of [key, value] pairs."),
    "a dict with an int key, which JSON would turn into a string": (
        "dict", "return {1: 'a'}",
        "step 'bad' returned a dict with a non-string key 1 for output 'output'; JSON object keys are strings, "
        "so convert the keys with str() or return a list of [key, value] pairs."),
    "a list that contains itself": (
        "list", "a = [1]\na.append(a)\nreturn a",
        "step 'bad' returned a list that contains itself (at [1]) for output 'output'; JSON cannot hold a reference "
        "cycle, so return a copy without one."),
    "nan as a float output": (
        "float", "return float('nan')",
        "step 'bad' returned nan for output 'output'; JSON has no NaN or infinity, so return a finite number or None."),
    "infinity as a float output": (
        "float", "return float('inf')",
        "step 'bad' returned inf for output 'output'; JSON has no NaN or infinity, so return a finite number or None."),
    "minus infinity deep inside a dict": (
        "dict", "return {'scores': [0.5, float('-inf')]}",
        "step 'bad' returned a dict holding -inf at ['scores'][1] for output 'output'; JSON has no NaN or infinity, "
        "so return a finite number or None."),
    "a set inside a list": (
        "list", "return [{3, 4}]",
        "step 'bad' returned a list holding a set {3, 4} at [0] for output 'output'; JSON holds only strings, "
        "numbers, booleans, None, lists and dicts, so convert it (a set with sorted(...), an array with .tolist()) "
        "or annotate the return with a type a materializer stores."),
    "a list nested deeper than JSON readers go": (
        "list", "a = []\nfor _ in range(5000):\n    a = [a]\nreturn a",
        "step 'bad' returned a list with values nested more than 400 levels deep for output 'output'; JSON readers "
        "stop at about that depth, so flatten the value."),
}


@pytest.mark.parametrize("case", list(UNHOLDABLE), ids=list(UNHOLDABLE))
def test_a_step_returning_what_json_cannot_hold_fails_the_run_with_one_sentence(
        case: str, project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    annotation, body, sentence = UNHOLDABLE[case]
    path = pipeline_file(project, """
        from stackhop import step, pipeline

        @step
        def bad() -> ANNOTATION:
            BODY

        @step
        def fine() -> int:
            return 1

        @pipeline
        def hostile():
            bad()
            fine()
    """)
    source = path.read_text().replace("ANNOTATION", annotation)
    path.write_text(source.replace("    BODY", textwrap.indent(body, "    ")))

    code, run_id, run = run_cli(capsys, path)

    assert code == 1
    assert run["state"]["status"] == "FAILED"
    bad = run["state"]["steps"]["bad"]
    assert bad["status"] == "FAILED"
    assert bad["message"] == sentence
    assert sentence in run["message"]
    log = get_run(run_id).logs("bad")
    assert sentence in log
    assert "Traceback" not in log, log
    assert not list(project.rglob("bad/_stackhop/outputs.json")), "a value JSON cannot hold is never committed"
    assert run["state"]["steps"]["fine"]["status"] == "SUCCEEDED"


def test_log_metric_with_nan_fails_the_step_at_the_line_that_logged_it(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = pipeline_file(project, """
        from stackhop import step, pipeline, Output, Metrics

        @step
        def evaluate(metrics: Output[Metrics]):
            metrics.log_metric("loss", 0.25)
            metrics.log_metric("acc", float("nan"))

        @pipeline
        def hostile():
            evaluate()
    """)

    code, run_id, run = run_cli(capsys, path)

    sentence = ("step 'evaluate' logged nan as metric 'acc' of output 'metrics'; JSON has no NaN or infinity, "
                "so log a finite number or leave the metric out.")
    assert code == 1
    step = run["state"]["steps"]["evaluate"]
    assert step["status"] == "FAILED"
    assert sentence in step["message"]
    log = get_run(run_id).logs("evaluate")
    assert sentence in log
    assert 'metrics.log_metric("acc", float("nan"))' in log, "the traceback points at the user's line"
    assert "_write_meta" not in log


def test_infinity_written_straight_into_artifact_metadata_fails_the_step(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = pipeline_file(project, """
        from stackhop import step, pipeline, Output, Metrics

        @step
        def evaluate(metrics: Output[Metrics]):
            metrics.metadata["curve"] = {"auc": float("inf")}

        @pipeline
        def hostile():
            evaluate()
    """)

    code, run_id, run = run_cli(capsys, path)

    sentence = ("step 'evaluate' put inf at ['curve']['auc'] in the metadata of output 'metrics'; JSON has no NaN "
                "or infinity, so record a finite number or None.")
    assert code == 1
    assert run["state"]["steps"]["evaluate"]["message"] == sentence
    assert sentence in get_run(run_id).logs("evaluate")
    assert "Traceback" not in get_run(run_id).logs("evaluate")


def test_a_container_step_writing_nan_to_a_float_output_fails_the_step(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = pipeline_file(project, """
        import sys
        from stackhop import pipeline, container_step, OutputPath

        @pipeline
        def hostile():
            container_step("score", image="python:3.11", outputs={"value": float},
                           command=[sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write('NaN')",
                                    OutputPath("value")])
    """)

    code, run_id, run = run_cli(capsys, path)

    assert code == 1
    step = run["state"]["steps"]["score"]
    assert step["status"] == "FAILED"
    assert step["message"] == "step 'score' wrote 'NaN' to output 'value', which is not a valid float."
    assert not list(project.rglob("score/_stackhop/outputs.json"))


def test_values_json_can_hold_still_pass_and_outputs_json_stays_strict_json(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = pipeline_file(project, """
        from stackhop import step, pipeline, Output, Metrics

        SHARED = [1, 2]

        @step
        def make(metrics: Output[Metrics]) -> dict:
            metrics.log_metric("acc", 0.5)
            return {"pairs": [(1, "a"), (2, "b")], "shared": [SHARED, SHARED], "none": None, "big": 10 ** 30,
                    "tiny": -1e-300}

        @step
        def read(d: dict) -> str:
            assert d["pairs"] == [[1, "a"], [2, "b"]], d
            assert d["shared"] == [[1, 2], [1, 2]], d
            assert d["big"] == 10 ** 30 and d["none"] is None, d
            return "ok"

        @pipeline
        def hostile():
            read(d=make().outputs["output"])
    """)

    code, run_id, run = run_cli(capsys, path)

    assert code == 0, run["message"]
    assert {s["status"] for s in run["state"]["steps"].values()} == {"SUCCEEDED"}
    for marker in project.rglob("_stackhop/outputs.json"):
        strict_json(marker.read_text())
    assert get_run(run_id).artifact("read", "output").load() == "ok"


# ----------------------------------------------------------------------------- functions stackhop cannot run


def define(project: Path, source: str) -> Any:
    return import_file(pipeline_file(project, "from stackhop import step, pipeline, Output, Dataset, Model\n"
                                     "from typing import NamedTuple\n" + textwrap.dedent(source)))


def test_an_async_step_is_refused_where_it_is_decorated(project: Path) -> None:
    with pytest.raises(PipelineDefinitionError) as err:
        define(project, """
            @step
            async def fetch() -> int:
                return 1
        """)

    assert str(err.value) == ("step 'fetch' is an async function; stackhop runs steps as plain functions, so write "
                              "`def` and call asyncio.run(...) inside.")


def test_an_async_step_with_an_explicit_name_is_refused_under_that_name(project: Path) -> None:
    with pytest.raises(PipelineDefinitionError, match=r"^step 'download' is an async function; .*asyncio\.run"):
        define(project, """
            @step(name="download", retries=2)
            async def fetch() -> int:
                return 1
        """)


def test_an_async_generator_step_is_refused(project: Path) -> None:
    with pytest.raises(PipelineDefinitionError, match=r"^step 'stream' is an async generator; stackhop runs steps as "
                                                      r"plain functions .*asyncio\.run"):
        define(project, """
            @step
            async def stream():
                yield 1
        """)


def test_a_generator_step_is_refused_because_its_body_would_never_run(project: Path) -> None:
    with pytest.raises(PipelineDefinitionError, match=r"^step 'batches' is a generator function \(it uses `yield`\); "
                                                      r"a step runs once and returns its outputs"):
        define(project, """
            @step
            def batches() -> list:
                yield [1]
        """)


def test_a_namedtuple_field_named_like_an_output_parameter_is_refused_when_traced(project: Path) -> None:
    module = define(project, """
        class Result(NamedTuple):
            d: int
            score: float

        @step
        def split(d: Output[Dataset]) -> Result:
            return Result(1, 0.5)

        @pipeline
        def clash():
            split()
    """)

    with pytest.raises(PipelineDefinitionError) as err:
        module.clash.build()

    assert str(err.value) == ("step 'split' has a parameter 'd': Output[Dataset], and its return type Result has a "
                              "field 'd' too; every output needs its own name, so rename the parameter or the field.")


def test_an_output_parameter_named_output_beside_a_return_value_is_refused(project: Path) -> None:
    module = define(project, """
        @step
        def train(output: Output[Model]) -> float:
            return 0.5

        @pipeline
        def clash():
            train()
    """)

    with pytest.raises(PipelineDefinitionError, match=r"^step 'train' has a parameter 'output': Output\[Model\], and "
                                                      r"its return value is the output named 'output'; .*rename the "
                                                      r"parameter\.$"):
        module.clash.build()


def test_a_namedtuple_output_clash_fails_compile_from_the_cli_in_one_sentence(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = pipeline_file(project, """
        from typing import NamedTuple
        from stackhop import step, pipeline, Output, Dataset

        class Result(NamedTuple):
            d: int

        @step
        def split(d: Output[Dataset]) -> Result:
            return Result(1)

        @pipeline
        def clash():
            split()
    """)

    assert main(["run", str(path), "-s", "local"]) == 2
    err = capsys.readouterr().err
    assert "step 'split' has a parameter 'd': Output[Dataset]" in err
    assert "Traceback" not in err
    assert not list(project.rglob("run.json")), "nothing ran"


# ----------------------------------------------------------------------------- step names


def test_two_functions_given_the_same_explicit_name_are_refused_naming_both(project: Path) -> None:
    module = define(project, """
        @step(name="train")
        def train_small() -> int:
            return 1

        @step(name="train")
        def train_large() -> int:
            return 2

        @pipeline
        def twins():
            train_small()
            train_large()
    """)

    with pytest.raises(PipelineDefinitionError) as err:
        module.twins.build()

    message = str(err.value)
    assert re.fullmatch(r"pipeline 'twins': hostile_steps_\d+\.train_small \(hostile_steps_\d+\.py:\d+\) and "
                        r"hostile_steps_\d+\.train_large \(hostile_steps_\d+\.py:\d+\) are both steps named 'train'; "
                        r"give one of them another name with @step\(name=\.\.\.\)\.", message), message


def test_an_explicit_name_taken_by_another_functions_own_name_is_refused(project: Path) -> None:
    module = define(project, """
        @step
        def train() -> int:
            return 1

        @step(name="train")
        def retrain() -> int:
            return 2

        @pipeline
        def twins():
            train()
            retrain()
    """)

    with pytest.raises(PipelineDefinitionError, match=r"\.train \(.*\) and .*\.retrain \(.*\) are both steps named "
                                                      r"'train'"):
        module.twins.build()


def test_calling_one_named_step_twice_still_numbers_the_calls(project: Path) -> None:
    module = define(project, """
        @step(name="train")
        def train_small(seed: int) -> int:
            return seed

        @step
        def evaluate(x: int) -> int:
            return x

        @pipeline
        def repeated():
            evaluate(x=train_small(seed=1).output)
            evaluate(x=train_small(seed=2).output)
    """)

    assert [s.name for s in module.repeated.build().steps] == ["train", "evaluate", "train-2", "evaluate-2"]


def test_steps_a_factory_makes_under_one_name_are_numbered_not_refused(project: Path) -> None:
    module = define(project, """
        def make(k):
            @step(name="made")
            def made() -> int:
                return k
            return made

        @pipeline
        def factory():
            for k in range(3):
                make(k)()
    """)

    assert [s.name for s in module.factory.build().steps] == ["made", "made-2", "made-3"]


def test_renaming_a_second_call_with_set_name_to_an_existing_name_is_still_the_validation_error(project: Path) -> None:
    module = define(project, """
        @step
        def train() -> int:
            return 1

        @step
        def evaluate() -> int:
            return 1

        @pipeline
        def p():
            train()
            evaluate().set_name("train")
    """)

    with pytest.raises(Exception, match=r"two steps are named 'train'"):
        module.p.build()
