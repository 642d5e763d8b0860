"""V1: PipelineSpec compile time for a 1,000-step chain, ours beside kfp's own DSL and compiler, in one run.

    python benchmarks/v1_pipelinespec.py [--steps 1000]

Both sides build the same chain (first() -> add_one(x) -> ... , one int passed along) from
Python and write a PipelineSpec; kfp's side is `@dsl.component` + `@dsl.pipeline` +
`compiler.Compiler().compile`, ours is `stackhop.compile` on a Vertex stack (trace, validate,
compile, serialise). kfp is needed (it is in stackhop[dev]).
"""

# No `from __future__ import annotations`: kfp reads the components' annotations as real types.

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

from _common import HERE, emit


def kfp_chain_seconds(n: int, out: Path) -> float:
    from kfp import compiler, dsl

    start = time.perf_counter()

    @dsl.component(base_image="python:3.11")
    def first() -> int:
        return 0

    @dsl.component(base_image="python:3.11")
    def add_one(x: int) -> int:
        return x + 1

    @dsl.pipeline(name="chain")
    def chain():
        task = first()
        for _ in range(n - 1):
            task = add_one(x=task.output)

    compiler.Compiler().compile(chain, str(out))
    return time.perf_counter() - start


def ours_seconds(n: int, root: Path) -> tuple[float, int]:
    sys.path.insert(0, str(HERE))
    import stackhop
    from chain_pipelines import make_chain

    start = time.perf_counter()
    compiled = stackhop.compile(make_chain(n), "vertex")
    seconds = time.perf_counter() - start
    return seconds, len(compiled.files["pipeline.json"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    n = parser.parse_known_args()[0].steps
    root = Path(tempfile.mkdtemp(prefix="stackhop-v1-"))
    (root / "stackhop.yaml").write_text(yaml.safe_dump({"stacks": {"vertex": {
        "adapter": "vertex", "artifact_root": "gs://bench/stackhop", "defaults": {"image": "python:3.11"},
        "settings": {"project": "bench"}}}}))
    os.chdir(root)
    ours, size = ours_seconds(n, root)
    theirs = kfp_chain_seconds(n, root / "kfp.yaml")
    emit({"benchmark": "V1 PipelineSpec compile", "steps": n, "stackhop_s": round(ours, 3), "kfp_s": round(theirs, 2),
          "speedup": round(theirs / ours, 1), "stackhop_bytes": size,
          "kfp_bytes": (root / "kfp.yaml").stat().st_size})


if __name__ == "__main__":
    main()
