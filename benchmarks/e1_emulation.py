"""Emulated runs on the core scheduler: parallelism, cancel latency and live progress, per backend.

    python benchmarks/e1_emulation.py [--width 4] [--sleep 2] [--backends sagemaker,vertex,kfp]

For each emulating backend (SageMaker against moto's S3, Vertex and Kubeflow against the Cloud
Storage emulator) it emulates a fan-out of `width` independent steps that each sleep `sleep`
seconds, then a run whose one step waits forever and is cancelled as soon as it runs. It prints
the fan-out's wall time beside the serial sum of its steps' runtimes, how many distinct step-state
snapshots a watcher saw before the end, and the time from `cancel()` to a CANCELLED status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"

PIPELINES = """
from stackhop import pipeline, step

@step
def nap(seconds: float, i: int) -> float:
    import time
    start = time.time()
    time.sleep(seconds)
    return time.time() - start

@step
def forever(folder: str) -> int:
    import os, time
    open(os.path.join(folder, "started"), "w").close()
    time.sleep(3600)
    return 0

@pipeline
def fan(seconds: float = 1.0, width: int = 4):
    for i in range(WIDTH):
        nap(seconds=seconds, i=i)

@pipeline
def stuck(folder: str):
    forever(folder=folder)
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=4)
    parser.add_argument("--sleep", type=float, default=2.0)
    parser.add_argument("--backends", default="sagemaker,vertex,kfp")
    parser.add_argument("--no-cancel", action="store_true",
                        help="skip the cancel run (for trees whose emulator blocks until the run ends)")
    args = parser.parse_args()
    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    from stackhop.testing.gcs import FakeGCS
    from stackhop.testing.sagemaker import FakeSageMaker

    root = Path(tempfile.mkdtemp(prefix="stackhop-e1-"))
    os.chdir(root)
    (root / "e1_pipes.py").write_text(PIPELINES.replace("WIDTH", str(args.width)))
    (root / "stackhop.yaml").write_text(textwrap.dedent(f"""
        stacks:
          sagemaker:
            adapter: sagemaker
            artifact_root: s3://ml-artifacts/e1
            defaults: {{image: "img:1"}}
            settings: {{role_arn: "{ROLE}"}}
          vertex:
            adapter: vertex
            artifact_root: gs://ml-artifacts/e1-vertex
            defaults: {{image: "python:3.11"}}
            settings: {{project: my-project}}
          kfp:
            adapter: kfp
            artifact_root: gs://ml-artifacts/e1-kfp
            defaults: {{image: "python:3.11"}}
            settings: {{host: "http://kfp.invalid"}}
    """))
    sys.path.insert(0, str(root))
    with FakeSageMaker(region="us-east-1") as aws, FakeGCS(buckets=("ml-artifacts",)) as _gcs:
        os.environ.update(aws.env())
        aws.create_bucket("ml-artifacts")
        import e1_pipes

        import stackhop

        for backend in args.backends.split(","):
            snapshots: set[tuple[tuple[str, str], ...]] = set()
            started = time.time()
            handle = stackhop.run(e1_pipes.fan, backend, {"seconds": args.sleep}, emulate=True, progress=False,
                                  on_update=lambda s: snapshots.add(tuple(sorted((k, v.status.value)
                                                                                 for k, v in s.steps.items()))))
            wall = time.time() - started
            steps = handle.steps()
            serial = sum(float(handle.artifact(k, "output").load()) for k in steps)
            figures = {"benchmark": "e1_emulation", "backend": backend, "status": handle.status.value,
                       "width": args.width, "step_sleep_s": args.sleep, "wall_s": round(wall, 2),
                       "serial_step_time_s": round(serial, 2), "max_workers": os.cpu_count(),
                       "distinct_snapshots_seen": len(snapshots)}
            if args.no_cancel:
                print(json.dumps(figures))
                continue
            folder = tempfile.mkdtemp(prefix="e1-stuck-", dir=root)
            stuck = stackhop.run(e1_pipes.stuck, backend, {"folder": folder}, emulate=True, wait=False, progress=False)
            while not os.path.exists(os.path.join(folder, "started")):
                time.sleep(0.01)
            asked = time.time()
            stuck.cancel()
            while not stuck.status.terminal:
                time.sleep(0.01)
            cancel_s = time.time() - asked
            print(json.dumps({**figures, "cancel_to_cancelled_s": round(cancel_s, 3),
                              "cancelled_status": stuck.status.value}))


if __name__ == "__main__":
    main()
