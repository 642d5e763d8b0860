"""Crash consistency of the local runner: SIGKILL it at 20 random points, report what was left.

    python benchmarks/crash_runner.py [--kills 20] [--seed 12] [--launcher fork|spawn] [--start cli|api]

Each kill starts a 3-step run (about 4 s) detached, SIGKILLs its runner after a seeded random
delay of up to 3 s (so anywhere from start-up to the last step's commit), and
then checks that the next read (`runs list`, `runs show` or `RunHandle.status`, picked at
random) reports FAILED "the runner process (pid N) died" within 5 s, that the other two agree,
that no process of the run is left after 5 s, that every visible artifact is the one its step
committed, and that no temp file is left.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
from pathlib import Path

from stackhop.testing.crashes import figures, kill_once, make_project


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--launcher", choices=["fork", "spawn"], default="fork")
    parser.add_argument("--start", choices=["cli", "api"], default="cli")
    args = parser.parse_args()
    root = make_project(Path(tempfile.mkdtemp(prefix="stackhop-crash-")), args.launcher)
    os.chdir(root)
    rng = random.Random(args.seed)
    outcomes = []
    for i in range(args.kills):
        o = kill_once(root, rng, how=args.start, max_delay=3.0)
        outcomes.append(o)
        print(f"kill {i + 1:2}: after {o.delay:.3f}s, {o.reader} saw FAILED after {o.detected_s}s; "
              f"orphans {len(o.orphans)}, half artifacts {len(o.half_artifacts)}, temp files {len(o.temp_files)}"
              + ("" if o.ok else f"  NOT OK: {o}"))
    print(json.dumps({"benchmark": "crash_runner", "launcher": args.launcher, "start": args.start, "seed": args.seed,
                      **figures(outcomes)}))


if __name__ == "__main__":
    main()
