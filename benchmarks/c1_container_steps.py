"""C1: container steps. Compile time per backend for chains of 50 and 200 container steps (linear in steps),
kfp's own compiler on the same chain as the anchor, and the plain-image example run through the fake
Kubernetes API server.

    python benchmarks/c1_container_steps.py

No `from __future__ import annotations`: kfp reads the anchor components' annotations as objects.
"""


import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import yaml

from _common import emit

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
STACKS = {
    "kubernetes": {"adapter": "kubernetes", "settings": {"namespace": "bench"}},
    "sagemaker": {"adapter": "sagemaker", "artifact_root": "s3://bench/stackhop",
                  "settings": {"region": "us-east-1", "role_arn": ROLE}},
    "vertex": {"adapter": "vertex", "artifact_root": "gs://bench/stackhop",
               "settings": {"project": "bench", "location": "us-central1"}},
    "kfp": {"adapter": "kfp", "artifact_root": "s3://bench/stackhop", "settings": {"host": "http://127.0.0.1:1"}},
}


def chain_source(n: int) -> str:
    return textwrap.dedent(f'''
        from stackhop import Dataset, InputPath, OutputPath, container_step, pipeline

        @pipeline
        def chain_{n}():
            previous = container_step("copy-0", image="busybox:1.36", command=["sh", "-c", 'echo 0 > "$0"'],
                                      args=[OutputPath("data")], outputs={{"data": Dataset}})
            for i in range(1, {n}):
                previous = container_step(f"copy-{{i}}", image="busybox:1.36",
                                          command=["sh", "-c", 'cat "$0" > "$1"; echo {{i}} >> "$1"'],
                                          args=[InputPath("src"), OutputPath("data")],
                                          inputs={{"src": previous.outputs["data"]}}, outputs={{"data": Dataset}})
    ''')


def kfp_chain_seconds(n: int) -> float:
    from kfp import compiler, dsl

    @dsl.container_component
    def first(data: dsl.Output[dsl.Dataset]):
        return dsl.ContainerSpec(image="busybox:1.36", command=["sh", "-c", 'echo 0 > "$0"'], args=[data.path])

    @dsl.container_component
    def copy(src: dsl.Input[dsl.Dataset], data: dsl.Output[dsl.Dataset]):
        return dsl.ContainerSpec(image="busybox:1.36", command=["sh", "-c", 'cat "$0" > "$1"'], args=[src.path, data.path])

    @dsl.pipeline(name=f"chain-{n}")
    def chain() -> None:
        previous = first()
        for _ in range(1, n):
            previous = copy(src=previous.outputs["data"])

    out = Path(tempfile.mkdtemp()) / "chain.yaml"
    start = time.perf_counter()
    compiler.Compiler().compile(chain, str(out))
    return time.perf_counter() - start


def compile_figures() -> list[dict]:
    import stackhop
    from stackhop.core.source import import_file

    root = Path(tempfile.mkdtemp(prefix="stackhop-c1-"))
    (root / "stackhop.yaml").write_text(yaml.safe_dump({"stacks": {
        name: {**stack, "defaults": {"image": "registry.example.com/stackhop:1.0"}} for name, stack in STACKS.items()}}))
    os.chdir(root)
    figures = []
    for n in (50, 200):
        (root / f"chain_{n}.py").write_text(chain_source(n))
        pipeline = getattr(import_file(root / f"chain_{n}.py"), f"chain_{n}")
        row: dict = {"steps": n}
        for name in STACKS:
            best = min(_timed(lambda: stackhop.compile(pipeline, name)) for _ in range(3))
            row[f"{name}_s"] = round(best, 3)
        row["kfp_compiler_anchor_s"] = round(min(kfp_chain_seconds(n) for _ in range(3)), 3)
        figures.append(row)
    return figures


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fake_kubernetes_run() -> dict:
    import shutil

    import stackhop
    from stackhop.core.source import import_file
    from stackhop.testing.kubernetes import FakeKubernetes

    root = Path(tempfile.mkdtemp(prefix="stackhop-c1-run-"))
    shutil.copy(Path(__file__).resolve().parents[1] / "examples" / "container_pipeline.py", root / "container_example.py")
    with FakeKubernetes() as kube:
        kube.write_kubeconfig(str(root / "kubeconfig"), namespace="bench")
        (root / "stackhop.yaml").write_text(yaml.safe_dump({"default_stack": "k8s", "stacks": {"k8s": {
            "adapter": "kubernetes", "defaults": {"image": "python:3.11-slim"},
            "settings": {"namespace": "bench", "kubeconfig": str(root / "kubeconfig"), "poll_seconds": 0.2}}}}))
        os.chdir(root)
        module = import_file(root / "container_example.py")
        start = time.perf_counter()
        handle = stackhop.run(module.container_pipeline, cache=False)
        seconds = time.perf_counter() - start
        pod = next(j for j in kube.objects("Job", "bench")
                   if j["metadata"]["annotations"]["stackhop.dev/step-name"] == "count-words")["spec"]["template"]["spec"]
        return {"status": handle.status.value, "run_s": round(seconds, 1),
                "count": handle.artifact("count-words", "count").load(),
                "main_image": pod["containers"][0]["image"], "main_command": pod["containers"][0]["command"][:2],
                "beside": [c["name"] for c in pod["initContainers"]]}


if __name__ == "__main__":
    for row in compile_figures():
        emit({"benchmark": "C1 container-step chain compile (best of 3)", **row})
    emit({"benchmark": "C1 plain-image example on the fake Kubernetes API server", **fake_kubernetes_run()})
    sys.exit(0)
