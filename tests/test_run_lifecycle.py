"""The run lifecycle: deleting runs and reclaiming their space without breaking what relies on them, comparing
runs, their metrics as a table, following a running step's log, and the releases made here.

Every spec runs real local runs of a pipeline a user would write (a step that returns a number, one that logs a
Metrics artifact); promotions go dev -> staging, two local stacks with their own artifact roots.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import yaml

import stackhop
from stackhop.cli.main import main
from stackhop.core.runs import RunStatus
from stackhop.promotion.promote import promote
from stackhop.promotion.release import create_release

from conftest import emulated_stacks

SOURCE = """
import os
import time

from stackhop import Metrics, Output, pipeline, step

HOLD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hold")


@step
def train(rows: int) -> float:
    print("training on", rows, "rows", flush=True)
    while os.path.exists(HOLD):
        time.sleep(0.05)
    print("trained", flush=True)
    return rows / 200


@step
def evaluate(score: float, metrics: Output[Metrics]) -> None:
    metrics.log_metric("accuracy", score)
    metrics.log_metric("loss", 1 - score)


@pipeline
def churn(rows: int = 100):
    evaluate(score=train(rows=rows).output)
"""


@pytest.fixture
def churn(project, write_pipeline):
    (project / "stackhop.yaml").write_text(yaml.safe_dump({
        "promotion": ["dev", "staging"],
        "stacks": {"dev": {"adapter": "local", "artifact_root": str(project / "dev-artifacts")},
                   "staging": {"adapter": "local", "artifact_root": str(project / "staging-artifacts")}},
        "default_stack": "dev",
    }))
    return write_pipeline(SOURCE, name="churn_pipeline").churn


def run_folder(handle) -> Path:
    return Path(handle.stack.artifact_root.removeprefix("file://")) / handle.pipeline / handle.run_id


def test_delete_removes_the_record_and_the_runs_own_files(churn, capsys) -> None:
    run = stackhop.run(churn, progress=False)
    assert run_folder(run).is_dir()

    assert main(["runs", "delete", run.run_id]) == 0

    assert f"deleted {run.run_id} (churn)" in capsys.readouterr().out
    assert not run_folder(run).exists()
    assert stackhop.runs(churn) == []
    assert main(["runs", "delete", run.run_id]) == 2
    assert f"no run {run.run_id!r}" in capsys.readouterr().err


def test_a_run_a_promotion_relies_on_is_kept_and_the_command_says_why(churn, capsys) -> None:
    release = create_release(churn, "dev")["release_id"]
    evidence = stackhop.run(churn, "dev", progress=False)
    promote(release, "staging")
    capsys.readouterr()

    assert main(["runs", "delete", evidence.run_id]) == 2

    err = capsys.readouterr().err
    assert (f"error: run {evidence.run_id} was not deleted: promotion of release {release} to staging read it."
            in err)
    assert run_folder(evidence).is_dir() and stackhop.get_run(evidence.run_id).status is RunStatus.SUCCEEDED


def test_a_releases_latest_successful_run_is_kept_before_any_promotion(churn, capsys) -> None:
    release = create_release(churn, "dev")["release_id"]
    older = stackhop.run(churn, "dev", {"rows": 10}, progress=False)
    latest = stackhop.run(churn, "dev", {"rows": 20}, progress=False)

    assert main(["runs", "gc", "--older-than", "0s", "--json"]) == 0

    result = json.loads(capsys.readouterr().out)
    kept = {r["run_id"]: r["kept"] for r in result["runs"]}
    assert kept[older.run_id] == ""
    assert kept[latest.run_id] == (f"it is release {release}'s latest successful run on stack 'dev', which its next "
                                   "promotion's gate reads")
    assert [h.run_id for h in stackhop.runs(churn)] == [latest.run_id]
    assert result["freed_bytes"] > 0


def test_a_run_whose_outputs_another_run_reuses_is_kept_until_both_go(churn, capsys) -> None:
    first = stackhop.run(churn, progress=False)
    second = stackhop.run(churn, progress=False)
    assert second.steps()["train"].cache["from_run"] == first.run_id

    assert main(["runs", "delete", first.run_id]) == 2
    assert f"run {first.run_id} was not deleted: run {second.run_id} reuses its outputs." in capsys.readouterr().err
    assert second.artifact("evaluate", "metrics").load() == {"accuracy": 0.5, "loss": 0.5}

    assert main(["runs", "delete", first.run_id, second.run_id]) == 0
    assert stackhop.runs(churn) == []


def test_an_unfinished_run_is_never_deleted(churn, project, capsys) -> None:
    (project / "hold").touch()
    running = stackhop.run(churn, wait=False, progress=False)
    try:
        assert main(["runs", "delete", running.run_id]) == 2
        assert (f"run {running.run_id} was not deleted: it is {running.status.value.lower()}; cancel it "
                f"(stackhop cancel {running.run_id}) or let it finish first." in capsys.readouterr().err)
    finally:
        (project / "hold").unlink()
    assert running.wait(timeout=60) is RunStatus.SUCCEEDED


def test_gc_keeps_the_newest_runs_of_each_pipeline_and_a_dry_run_deletes_nothing(churn, capsys) -> None:
    made = [stackhop.run(churn, parameters={"rows": n}, progress=False) for n in (10, 20, 30)]
    capsys.readouterr()

    assert main(["runs", "gc", "--older-than", "0s", "--keep-last", "1", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert f"would delete {made[0].run_id} (churn)" in out.out and f"would delete {made[1].run_id}" in out.out
    assert "would delete 2 run(s)" in out.err
    assert len(stackhop.runs(churn)) == 3 and run_folder(made[0]).is_dir()

    assert main(["runs", "gc", "--older-than", "0s", "--keep-last", "1"]) == 0
    assert [h.run_id for h in stackhop.runs(churn)] == [made[2].run_id]
    assert not run_folder(made[0]).exists() and run_folder(made[2]).is_dir()
    assert main(["runs", "gc", "--older-than", "a month"]) == 2
    assert ("error: --older-than 'a month' is not an age; give a number and a unit, e.g. 30d, 12h or 90m."
            in capsys.readouterr().err)


def test_gc_leaves_runs_younger_than_the_cut_off(churn, capsys) -> None:
    run = stackhop.run(churn, progress=False)

    assert main(["runs", "gc", "--older-than", "30d"]) == 0

    assert "deleted 0 run(s)" in capsys.readouterr().err
    assert stackhop.runs(churn)[0].run_id == run.run_id


def test_compare_shows_the_parameters_that_differ_metrics_side_by_side_and_steps_that_differ(churn, capsys,
                                                                                             monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    a = stackhop.run(churn, parameters={"rows": 100}, progress=False)
    b = stackhop.run(churn, parameters={"rows": 150}, progress=False)
    capsys.readouterr()

    assert main(["runs", "compare", a.run_id, b.run_id, "--json"]) == 0

    result = json.loads(capsys.readouterr().out)
    assert result["parameters"] == {"rows": [100, 150]}
    assert result["metrics"] == {"evaluate.metrics.accuracy": [0.5, 0.75], "evaluate.metrics.loss": [0.5, 0.25],
                                 "train.output": [0.5, 0.75]}
    assert set(result["steps"]) == {"train", "evaluate"}, "their inputs differ, so their cache keys do"
    assert result["steps"]["train"][0]["cache_key"] != result["steps"]["train"][1]["cache_key"]
    assert main(["runs", "compare", a.run_id, b.run_id]) == 0
    table = capsys.readouterr().out
    assert "evaluate.metrics.accuracy" in table and "0.75" in table and "rows" in table
    assert main(["runs", "compare", a.run_id]) == 2


def test_metrics_are_a_table_json_csv_and_a_dataframe(churn, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    runs = [stackhop.run(churn, parameters={"rows": n}, progress=False) for n in (50, 150)]
    capsys.readouterr()

    assert main(["runs", "metrics", "--pipeline", "churn", "--csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["run_id"], r["evaluate.metrics.accuracy"]) for r in table] == [(runs[0].run_id, "0.25"),
                                                                            (runs[1].run_id, "0.75")], "oldest first"
    assert main(["runs", "metrics", "--last", "1", "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [runs[1].run_id]
    assert main(["runs", "metrics"]) == 0
    assert "evaluate.metrics.loss" in capsys.readouterr().out

    frame = stackhop.metrics(churn)
    assert list(frame["evaluate.metrics.accuracy"]) == [0.25, 0.75]
    assert runs[1].metrics() == {"evaluate.metrics.accuracy": 0.75, "evaluate.metrics.loss": 0.25,
                                 "train.output": 0.75}


def test_metrics_without_pandas_are_plain_rows(churn, monkeypatch) -> None:
    import builtins

    stackhop.run(churn, progress=False)
    real = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError("no pandas here")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)

    rows = stackhop.metrics("churn")

    assert isinstance(rows, list) and rows[0]["evaluate.metrics.accuracy"] == 0.5


def test_logs_follow_prints_a_running_steps_lines_until_it_ends(churn, project) -> None:
    (project / "hold").touch()
    run = stackhop.run(churn, wait=False, progress=False)
    chunks: list[str] = []
    follower = threading.Thread(target=lambda: chunks.extend(run.follow_logs("train", poll=0.05)))
    follower.start()
    deadline = time.time() + 60
    while "training on 100 rows" not in "".join(chunks):
        assert time.time() < deadline, "the first line never came"
        time.sleep(0.05)
    assert "trained" not in "".join(chunks), "the step is still held"

    (project / "hold").unlink()
    follower.join(60)

    assert not follower.is_alive()
    assert "".join(chunks).endswith("trained\n")
    assert main(["logs", run.run_id, "--follow"]) == 2


def test_runs_list_asks_the_backend_about_unfinished_runs_and_says_when_one_was_last_seen(churn, project,
                                                                                          write_config, vertex,
                                                                                          capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    write_config(emulated_stacks("lifecycle", vertex=vertex))
    run = stackhop.run(churn, "vertex", wait=False, progress=False)
    db = sqlite3.connect(project / ".stackhop" / "runs.db")
    with db:
        db.execute("UPDATE runs SET seen_at = ? WHERE run_id = ?", (time.time() - 125, run.run_id))
    db.close()

    assert main(["runs", "list", "--refresh-seconds", "0"]) == 0
    assert "PENDING (seen 2m ago)" in capsys.readouterr().out

    (job, _), = vertex.jobs.items()
    vertex.set_state(job, "PIPELINE_STATE_SUCCEEDED")
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert "SUCCEEDED" in out and "PENDING" not in out


def test_releases_list_and_release_show_say_where_a_release_went(churn, capsys) -> None:
    release = create_release(churn, "dev")["release_id"]
    stackhop.run(churn, "dev", progress=False)
    promote(release, "staging")
    capsys.readouterr()

    assert main(["releases", "list"]) == 0
    listed = capsys.readouterr().out
    assert release in listed and "from dev" in listed and "promoted to staging" in listed
    assert main(["release", "show", release]) == 0
    assert "dev -> staging  promoted" in capsys.readouterr().err
    assert main(["releases", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["promoted_to"] == ["staging"]


def test_deleting_a_run_on_cloud_storage_removes_its_objects(churn, write_config, gcs, aws, capsys) -> None:
    from stackhop.core.artifacts import ArtifactStore

    write_config(emulated_stacks("lifecycle"))
    run = stackhop.run(churn, "vertex", emulate=True, progress=False)
    store = ArtifactStore(run.stack.artifact_root)
    prefix = store.run_prefix(run.pipeline, run.run_id)
    assert store.exists(prefix + "/_stackhop/state.json")

    assert main(["runs", "delete", run.run_id, "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["freed_bytes"] > 0
    assert not store.exists(prefix + "/_stackhop/state.json")
