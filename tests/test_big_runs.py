"""Runs past a thousand steps: the scheduler's state is written in batches, and nothing is lost by it.

Steps here finish the moment they start (`InstantScheduler`, as in benchmarks/f1_runtime_fanout.py),
eight at a time, so the scheduler wakes once per eight ends, as it does with real processes.
"""

from __future__ import annotations

import json
from typing import Any

from stackhop import Collected, ParallelFor, pipeline, step
from stackhop.core.resolve import RunView
from stackhop.core.scheduler import BATCHED_STATE_ABOVE, Instance
from stackhop.testing.instant_scheduler import InstantScheduler


@step
def make(n: int) -> list[int]:
    return list(range(n))


@step
def double(x: int) -> int:
    return 2 * x


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@pipeline
def wide(n: int = 1200):
    with ParallelFor(make(n=n).output) as x:
        d = double(x=x)
    total(xs=Collected(d.output))


def value(view: RunView, inst: Instance) -> Any:
    if inst.step == "make":
        return list(range(view.parameters["n"]))
    if inst.step == "double":
        return 2 * view.value({"kind": "loop_item", "loop": "for-1"}, "double", inst.index)
    return sum(view.value(view.steps["total"]["inputs"][0]["value"], "total", inst.index))


def run(n: int, tmp_path) -> tuple[InstantScheduler, dict[str, Any]]:
    spec = {"run_id": "wide", "pipeline": json.loads(wide.build().to_json()), "parameters": {"n": n},
            "artifact_root": f"file://{tmp_path}", "caching": False, "settings": {}}
    scheduler = InstantScheduler(spec, value, max_running=8)
    assert scheduler.run() == "SUCCEEDED"
    state = json.loads((tmp_path / "wide" / "wide" / "_stackhop" / "state.json").read_text())
    return scheduler, state


def test_a_run_past_a_thousand_steps_ends_with_every_step_in_its_state(tmp_path) -> None:
    n = BATCHED_STATE_ABOVE + 200
    scheduler, state = run(n, tmp_path)

    assert state["status"] == "SUCCEEDED"
    assert len(state["steps"]) == n + 2
    assert all(s["status"] == "SUCCEEDED" for s in state["steps"].values())
    record = json.loads((tmp_path / "wide" / "wide" / "total" / "_stackhop" / "outputs.json").read_text())
    assert record["scalars"]["output"] == n * (n - 1)
    wakes = n // 8
    assert scheduler.writes < wakes / 2, "written in batches, not after each of the scheduler's wakes"


def test_a_small_run_writes_its_state_after_every_change(tmp_path) -> None:
    scheduler, state = run(80, tmp_path)

    assert state["status"] == "SUCCEEDED" and len(state["steps"]) == 82
    assert scheduler.writes >= 80 // 8, "once per wake at least: a runner killed at any moment leaves its steps known"
