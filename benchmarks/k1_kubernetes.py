"""K1: Kubernetes compile time for a 1,000-step chain, and API calls per status poll for a 100-step run.

    python benchmarks/k1_kubernetes.py

The second figure runs a 100-step chain through the project's fake API server
(stackhop.testing.kubernetes) and counts HTTP requests by kind while the driver polls.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from _common import HERE, emit


def _stack(root: Path, extra: dict) -> None:
    config = {"default_stack": "k8s", "stacks": {"k8s": {
        "adapter": "kubernetes", "defaults": {"image": "python:3.11-slim"},
        "settings": {"namespace": "bench", **extra}}}}
    (root / "stackhop.yaml").write_text(yaml.safe_dump(config))


def compile_1000() -> dict:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="stackhop-k1-"))
    _stack(root, {})
    os.chdir(root)
    sys.path.insert(0, str(HERE))
    import chain_pipelines
    import stackhop

    start = time.perf_counter()
    ir = chain_pipelines.chain_1000.build()
    traced = time.perf_counter() - start
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        compiled = stackhop.compile(chain_pipelines.chain_1000, "k8s")
        timings.append(time.perf_counter() - start)
    return {"steps": len(ir.steps), "trace_s": round(traced, 2), "compile_s": round(min(timings), 2),
            "document_bytes": len(compiled.files["kubernetes.yaml"])}


def polls_100() -> dict:
    import tempfile

    import stackhop
    from stackhop.testing.kubernetes import FakeKubernetes

    root = Path(tempfile.mkdtemp(prefix="stackhop-k1-run-"))
    with FakeKubernetes() as kube:
        kube.write_kubeconfig(str(root / "kubeconfig"), namespace="bench")
        _stack(root, {"kubeconfig": str(root / "kubeconfig"), "poll_seconds": 0.2})
        os.chdir(root)
        import chain_pipelines

        start = time.perf_counter()
        handle = stackhop.run(chain_pipelines.chain_100, cache=False)
        seconds = time.perf_counter() - start
        kinds = Counter()
        for method, path, query in kube.requests:
            watch = "watch=" in query.lower()
            kinds[f"{method} {path.rsplit('/', 1)[-1] if not watch else 'jobs?watch'}"] += 1
        lists = sum(n for k, n in kinds.items() if k.startswith("GET") and k.endswith(("jobs", "pods")))
        ticks = max(1, int(seconds / 0.2))
        return {"status": handle.status.value, "run_s": round(seconds, 1), "requests": sum(kinds.values()),
                "list_calls": lists, "approx_polls": ticks, "list_calls_per_poll": round(lists / ticks, 2),
                "creates": kinds.get("POST jobs", 0), "by_kind_top": dict(kinds.most_common(6))}


if __name__ == "__main__":
    emit({"benchmark": "K1 kubernetes compile", **compile_1000()})
    emit({"benchmark": "K1 kubernetes status polling, 100-step chain", **polls_100()})
