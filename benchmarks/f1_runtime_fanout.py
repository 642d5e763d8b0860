"""F1: what growing the graph at run time costs the scheduler, against a loop whose list is known up front.

    python benchmarks/f1_runtime_fanout.py [--sizes 100,1000,5000] [--workers 8]

The same sweep (make a list, train once per item, Collected into one step) runs on the core
scheduler with steps that finish at once (each writes its outputs.json and reports success), so
what is timed is scheduling, expansion and state writes, not processes. At most `--workers` run
at once, as on a laptop (`max_workers`), so the scheduler wakes once per few ends, as it does
with real processes. The anchor is the same body over a static list of the same length, in the
same run of this script.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stackhop import Collected, ParallelFor, pipeline, step  # noqa: E402
from stackhop.core.resolve import RunView  # noqa: E402
from stackhop.core.scheduler import Instance  # noqa: E402
from stackhop.testing.instant_scheduler import InstantScheduler  # noqa: E402


@step
def make(n: int) -> list[int]:
    return list(range(n))


@step
def train(x: int) -> float:
    return x / 2


@step
def best(scores: list[float]) -> float:
    return max(scores)


def dynamic(n: int) -> Any:
    @pipeline(name="dynamic")
    def p(n: int = n):
        with ParallelFor(make(n=n).output) as x:
            t = train(x=x)
        best(scores=Collected(t.output))
    return p


def static(n: int) -> Any:
    @pipeline(name="static")
    def p():
        with ParallelFor(list(range(n))) as x:
            t = train(x=x)
        best(scores=Collected(t.output))
    return p


def value(view: RunView, inst: Instance) -> Any:
    if inst.step == "make":
        return list(range(view.parameters["n"]))
    if inst.step == "train":
        return view.value({"kind": "loop_item", "loop": "for-1"}, "train", inst.index) / 2
    return max(view.value(view.steps["best"]["inputs"][0]["value"], "best", inst.index))


def timed(pdef: Any, n: int, workers: int) -> tuple[float, int]:
    ir = pdef.build()
    with tempfile.TemporaryDirectory() as root:
        spec = {"run_id": "bench", "pipeline": json.loads(ir.to_json()), "parameters": {"n": n},
                "artifact_root": f"file://{root}", "caching": False, "settings": {}}
        start = time.perf_counter()
        scheduler = InstantScheduler(spec, value, max_running=workers)
        status = scheduler.run()
        seconds = time.perf_counter() - start
        assert status == "SUCCEEDED", status
        return seconds, len(scheduler.instances)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    print(f"at most {args.workers} steps at once")
    print(f"{'items':>6} {'static list s':>14} {'step output s':>14} {'ratio':>6} {'instances':>10}")
    for n in (int(x) for x in args.sizes.split(",")):
        fixed, count = timed(static(n), n, args.workers)
        grown, grown_count = timed(dynamic(n), n, args.workers)
        assert grown_count == count + 1, (grown_count, count)
        print(f"{n:>6} {fixed:>14.3f} {grown:>14.3f} {grown / fixed:>6.2f} {grown_count:>10}")


if __name__ == "__main__":
    main()
