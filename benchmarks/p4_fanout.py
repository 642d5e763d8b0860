"""P4: 64 independent trivial steps with one worker versus every core.

    python benchmarks/p4_fanout.py
"""

from __future__ import annotations

import os

from _common import emit, project, run_fresh


def _one(workers: int) -> float:
    seconds, status = run_fresh(project({"max_workers": workers}), "fan_64")
    assert status == "SUCCEEDED", status
    return round(seconds, 2)


def main() -> None:
    cores = os.cpu_count() or 1
    one, all_cores = _one(1), _one(cores)
    emit({"benchmark": "P4 64 independent steps", "cores": cores, "one_worker_s": one,
          "all_cores_s": all_cores, "speedup": round(one / all_cores, 2)})


if __name__ == "__main__":
    main()
