"""P5: re-running the 100-step chain when every step is cached (no step process starts).

    python benchmarks/p5_cached.py
"""

from __future__ import annotations

import json
import subprocess
import sys

from _common import HERE, emit, project, run_fresh


def main() -> None:
    root = project()
    runs = [run_fresh(root, "chain_100") for _ in range(2)]
    cli = subprocess.run(
        [sys.executable, "-m", "stackhop", "run", str(HERE / "chain_pipelines.py:chain_100"), "--json"],
        cwd=root, capture_output=True, text=True,
    )
    cached_steps = sum(1 for s in json.loads(cli.stdout)["steps"].values() if s["status"] == "CACHED")
    import time

    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stackhop", "run", str(HERE / "chain_pipelines.py:chain_100"), "--json"],
                   cwd=root, capture_output=True, check=True)
    emit({"benchmark": "P5 cached re-run of the 100-step chain", "target_s": 1.0,
          "first_run_s": round(runs[0][0], 2), "cached_run_api_s": round(runs[1][0], 2),
          "cached_run_cli_wall_s": round(time.perf_counter() - start, 2), "cached_steps": cached_steps})


if __name__ == "__main__":
    main()
