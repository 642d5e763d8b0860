"""Comparing runs, before and after `runs compare`: a hand-written script (`runs list --json`, then one
`runs show --json` per run) against `runs compare` and `runs metrics`, on 4 local runs of a small pipeline.

    python benchmarks/l1_lifecycle.py [--runs 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

from _common import median_wall, project

PIPELINE = textwrap.dedent("""
    from stackhop import Metrics, Output, pipeline, step

    @step
    def train(rows: int) -> float:
        return rows / 200

    @step
    def evaluate(score: float, metrics: Output[Metrics]) -> None:
        metrics.log_metric("accuracy", score)

    @pipeline
    def churn(rows: int = 100):
        evaluate(score=train(rows=rows).output)
""")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    args, _ = parser.parse_known_args()  # run_all passes its own flags on
    root = project()
    (root / "churn.py").write_text(PIPELINE)
    cli = [sys.executable, "-m", "stackhop"]
    for n in range(args.runs):
        subprocess.run([*cli, "run", "churn.py", "-p", f"rows={100 + n}"], cwd=root, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listed = json.loads(subprocess.run([*cli, "runs", "list", "--json"], cwd=root, check=True,
                                       capture_output=True, text=True).stdout)
    ids = [r["run_id"] for r in listed][: args.runs]
    script = [sys.executable, "-c", textwrap.dedent(f"""
        import json, subprocess, sys
        cli = [sys.executable, "-m", "stackhop"]
        ids = [r["run_id"] for r in json.loads(subprocess.run([*cli, "runs", "list", "--json"], capture_output=True,
                                                             text=True, check=True).stdout)][:{args.runs}]
        for i in ids:
            json.loads(subprocess.run([*cli, "runs", "show", i, "--json"], capture_output=True, text=True,
                                      check=True).stdout)
    """)]
    print(f"{args.runs} local runs, median of 5 wall times (s)")
    print(f"  script: runs list + {args.runs} x runs show --json   {median_wall(script, 5, cwd=str(root)):.2f}")
    print(f"  runs compare {args.runs} runs --json              {median_wall([*cli, 'runs', 'compare', *ids, '--json'], 5, cwd=str(root)):.2f}")
    print(f"  runs metrics --last {args.runs} --csv               {median_wall([*cli, 'runs', 'metrics', '--last', str(args.runs), '--csv'], 5, cwd=str(root)):.2f}")


if __name__ == "__main__":
    main()
