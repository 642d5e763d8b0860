"""`stackhop logs` for the steps whose logs are not simply there: a step served from the cache, and a loop step.

A cached step ran in an earlier run, so its log is that run's, with a line saying so; a loop
step named without an index gives every iteration, each line prefixed with the iteration's name.
"""

from __future__ import annotations

import stackhop
from stackhop.cli.main import main
from stackhop.core.runs import RunStatus, StepStatus

SOURCE = """
from stackhop import ParallelFor, pipeline, step


@step
def prepare(rows: int) -> int:
    print(f"prepared {rows} rows")
    return rows


@step
def train(lr: float, rows: int) -> float:
    print(f"training on {rows} rows")
    print(f"lr={lr}")
    return lr * rows


@pipeline
def sweep(rows: int = 100):
    data = prepare(rows=rows)
    with ParallelFor([0.1, 0.2]) as lr:
        train(lr=lr, rows=data.output)
"""


def test_a_cached_step_shows_the_log_of_the_run_that_made_its_outputs(project, write_pipeline) -> None:
    sweep = write_pipeline(SOURCE).sweep
    first = stackhop.run(sweep, progress=False)
    second = stackhop.run(sweep, progress=False)
    assert second.steps()["prepare"].status is StepStatus.CACHED

    text = second.logs("prepare")

    assert text.splitlines()[0] == (f"stackhop: prepare was served from the cache; its log from run {first.run_id}, "
                                    "which made its outputs:")
    assert "prepared 100 rows" in text
    assert first.logs("prepare") == text.split("\n", 1)[1], "the first run's log, whole"


def test_a_cached_step_whose_run_is_gone_says_so(project, write_pipeline) -> None:
    sweep = write_pipeline(SOURCE).sweep
    first = stackhop.run(sweep, progress=False)
    second = stackhop.run(sweep, progress=False)
    with first.store._connect() as db:
        db.execute("DELETE FROM runs WHERE run_id = ?", (first.run_id,))

    assert second.logs("prepare") == (f"stackhop: prepare was served from the cache; run {first.run_id}, which made "
                                      "its outputs, is no longer recorded.\n")


def test_a_loop_step_named_without_an_index_gives_every_iteration_prefixed(project, write_pipeline) -> None:
    handle = stackhop.run(write_pipeline(SOURCE).sweep, cache=False, progress=False)
    assert handle.status is RunStatus.SUCCEEDED

    lines = handle.logs("train").splitlines()

    assert lines == ["train[item=0.1] | training on 100 rows", "train[item=0.1] | lr=0.1",
                     "train[item=0.2] | training on 100 rows", "train[item=0.2] | lr=0.2"]


def test_the_cli_prints_them_the_same_way(project, write_pipeline, capsys) -> None:
    handle = stackhop.run(write_pipeline(SOURCE).sweep, cache=False, progress=False)
    capsys.readouterr()

    assert main(["logs", handle.run_id, "train"]) == 0
    assert "train[item=0.2] | lr=0.2" in capsys.readouterr().out
    assert main(["logs", handle.run_id, "evaluate"]) == 2
    assert capsys.readouterr().err == (f"error: run {handle.run_id} has no step 'evaluate'; its steps are prepare, "
                                       "train[0], train[1].\n")
