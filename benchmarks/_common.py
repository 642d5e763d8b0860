"""Helpers shared by the benchmark scripts: throwaway projects and timing."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent


def project(settings: dict[str, Any] | None = None) -> Path:
    """A temp project dir with a stackhop.yaml whose local stack has these settings."""
    import yaml

    root = Path(tempfile.mkdtemp(prefix="stackhop-bench-"))
    config = {"default_stack": "bench", "stacks": {"bench": {"adapter": "local", "settings": settings or {}}}}
    (root / "stackhop.yaml").write_text(yaml.safe_dump(config))
    return root


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_wall(cmd: list[str], runs: int = 7, cwd: str | None = None, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_in(root: Path, pipeline_attr: str) -> tuple[float, str]:
    """Run one benchmark pipeline in `root`; return (seconds for run(), final status)."""
    os.chdir(root)
    sys.path.insert(0, str(HERE))
    import chain_pipelines
    import stackhop

    seconds, handle = timed(lambda: stackhop.run(getattr(chain_pipelines, pipeline_attr)))
    return seconds, handle.status.value


def run_fresh(root: Path, pipeline_attr: str) -> tuple[float, str]:
    """`run_in` in a new interpreter, so every figure includes no state from an earlier one."""
    code = (
        "import sys, json; sys.path.insert(0, %r); from _common import run_in; from pathlib import Path; "
        "print(json.dumps(run_in(Path(%r), %r)))"
    ) % (str(HERE), str(root), pipeline_attr)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds, status = json.loads(out.strip().splitlines()[-1])
    return seconds, status


def emit(figures: dict[str, Any]) -> None:
    print(json.dumps(figures, sort_keys=True))
