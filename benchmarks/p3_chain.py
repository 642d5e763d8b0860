"""P3: a 100-step chain of trivial steps on the local stack, each step its own process.

Measured for both launchers (fork server and fresh interpreters), and beside ZenML's local
orchestrator on the same chain when a ZenML venv is given (ZenML is not a dependency):

    python benchmarks/p3_chain.py [--zenml-python /path/to/zenml-venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _common import HERE, emit, project, run_fresh


def _one(launcher: str) -> dict[str, float | str]:
    seconds, status = run_fresh(project({"launcher": launcher}), "chain_100")
    return {"seconds": round(seconds, 2), "per_step_ms": round(seconds * 10, 1), "status": status}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--zenml-python", default=os.environ.get("STACKHOP_BENCH_ZENML_PYTHON"))
    args = parser.parse_args()
    figures: dict[str, object] = {"benchmark": "P3 100-step chain", "target_s": 5.0}
    for launcher in ("fork", "spawn"):
        figures[f"stackhop_{launcher}"] = _one(launcher)
    if args.zenml_python:
        out = subprocess.run(
            [args.zenml_python, str(HERE / "zenml_chain.py"), "--steps", "100"], capture_output=True, text=True
        )
        lines = out.stdout.strip().splitlines()
        figures["zenml"] = json.loads(lines[-1]) if out.returncode == 0 and lines else {"error": out.stderr[-300:]}
    emit(figures)


if __name__ == "__main__":
    main()
