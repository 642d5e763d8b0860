"""P4: 64 independent trivial steps with one worker versus every core.

    python benchmarks/p4_fanout.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from _common import HERE, emit, project


def _one(workers: int) -> float:
    code = (
        "import sys, json; sys.path.insert(0, %r); from _common import run_in; from pathlib import Path; "
        "print(json.dumps(run_in(Path(%r), 'fan_64')))"
    ) % (str(HERE), str(project({"max_workers": workers})))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds, status = json.loads(out.strip().splitlines()[-1])
    assert status == "SUCCEEDED", status
    return round(seconds, 2)


def main() -> None:
    cores = os.cpu_count() or 1
    one, all_cores = _one(1), _one(cores)
    emit({"benchmark": "P4 64 independent steps", "cores": cores, "one_worker_s": one,
          "all_cores_s": all_cores, "speedup": round(one / all_cores, 2)})


if __name__ == "__main__":
    main()
