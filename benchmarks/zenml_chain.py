"""Anchor benchmark: a linear chain of N trivial steps on ZenML's local orchestrator.

Exists only to give a reference figure to compare stackhop's local runner
against. zenml is NOT a stackhop dependency; run this with a separate venv::

    /work/zenml-venv/bin/python benchmarks/zenml_chain.py --steps 100

(the venv needs ``pip install 'zenml[local]'``). Everything ZenML writes lives in
a throwaway temp dir (config, SQLite store, artifacts), so the user's ZenML
config is never touched. ZenML's chatter goes to stderr; stdout gets exactly
one JSON line.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse
import json
import os
import shutil
import sys
import tempfile

# Must happen before `import zenml`: ZenML reads these at import time, and its
# steps must be module-level (it re-imports them by source path), hence here.
_TMP = tempfile.mkdtemp(prefix="zenml-chain-")
os.environ.update(
    ZENML_CONFIG_PATH=os.path.join(_TMP, "config"),
    ZENML_REPOSITORY_PATH=_TMP,  # no .zen here: ignore any surrounding repo
    ZENML_ANALYTICS_OPT_IN="false",
    ZENML_LOGGING_VERBOSITY="ERROR",
    ZENML_LOGGING_COLORS_DISABLED="true",
    ZENML_ENABLE_RICH_TRACEBACK="false",
)
# Keep the real stdout for the JSON line; send everything else on fd 1 to stderr.
sys.stdout.flush()
_OUT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

import zenml  # noqa: E402
from zenml import pipeline, step  # noqa: E402
from zenml.client import Client  # noqa: E402


@step(enable_cache=False)
def first() -> int:
    return 0


@step(enable_cache=False)
def add_one(x: int) -> int:
    return x + 1


@pipeline(enable_cache=False)
def chain(n: int) -> None:
    x = first(id="s0")
    for i in range(1, n):
        x = add_one(x, id=f"s{i}")  # a distinct step invocation each time


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="chain length (>= 1)")
    n: int = parser.parse_args().steps
    if n < 1:
        parser.error("--steps must be >= 1")
    try:
        Client().active_stack  # init store/stack now, so run_seconds excludes it
        t_run = time.perf_counter()
        chain(n)
        run_seconds = time.perf_counter() - t_run
    finally:
        shutil.rmtree(_TMP, ignore_errors=True)
    result = {
        "tool": "zenml",
        "zenml_version": zenml.__version__,
        "steps": n,
        "run_seconds": round(run_seconds, 3),
        "total_seconds": round(time.perf_counter() - _T0, 3),
    }
    _OUT.write(json.dumps(result) + "\n")
    _OUT.flush()


if __name__ == "__main__":
    main()
