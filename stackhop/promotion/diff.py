"""What differs between two stacks' versions of one pipeline, for review in a pull request.

Compared per step on the effective settings (image, resources, retries, timeout, caching,
env, node selector) and on what each backend chose (`--explain` lines such as instance types),
plus each compiled document's digest. Environment values are shown by name only.
"""

from __future__ import annotations

from typing import Any

from stackhop.core.quantities import format_bytes, format_cpu
from stackhop.core.stack import LoadedConfig


def _resources(r: Any) -> str | None:
    if r is None:
        return None
    parts = []
    if r.cpu_millicores:
        parts.append(f"cpu {format_cpu(r.cpu_millicores)}")
    if r.cpu_limit_millicores and r.cpu_limit_millicores != r.cpu_millicores:
        parts.append(f"cpu limit {format_cpu(r.cpu_limit_millicores)}")
    if r.memory_bytes:
        parts.append(f"memory {format_bytes(r.memory_bytes)}")
    if r.memory_limit_bytes and r.memory_limit_bytes != r.memory_bytes:
        parts.append(f"memory limit {format_bytes(r.memory_limit_bytes)}")
    if r.accelerator:
        parts.append(f"{r.accelerator.count}x {r.accelerator.type}")
    return ", ".join(parts) or None


def _fields(step: Any) -> dict[str, Any]:
    st = step.settings
    return {
        "image": st.image,
        "resources": _resources(st.resources),
        "retries": st.retry.max_retries if st.retry else None,
        "timeout_seconds": st.timeout_seconds,
        "caching": st.caching,
        "env": ", ".join(sorted(st.env)) or None,
        "node_selector": ", ".join(f"{k}={v}" for k, v in sorted(st.node_selector.items())) or None,
    }


def diff(pipeline: Any, a: str, b: str, config: LoadedConfig | None = None) -> dict[str, Any]:
    from stackhop.core.api import _prepare, explain, to_ir

    raw, root = to_ir(pipeline)
    sides = []
    for name in (a, b):
        ir, stack, adapter, _ = _prepare(raw, root, name, config)
        sides.append({"stack": stack.name, "adapter": adapter.name, "digest": adapter.compile(ir).digest(),
                      "steps": {s.name: _fields(s) for s in ir.steps}, "explain": explain(pipeline, name, config=config)})
    left, right = sides
    steps: dict[str, dict[str, list[Any]]] = {}
    for step in left["steps"]:
        changed = {k: [v, right["steps"][step][k]] for k, v in left["steps"][step].items() if v != right["steps"][step][k]}
        ex_a, ex_b = left["explain"].get(step, []), right["explain"].get(step, [])
        if ex_a != ex_b:
            changed["backend"] = ["; ".join(ex_a) or None, "; ".join(ex_b) or None]
        if changed:
            steps[step] = changed
    return {"stacks": [a, b], "adapters": [left["adapter"], right["adapter"]],
            "digests": [left["digest"], right["digest"]], "steps": steps}


def markdown(result: dict[str, Any]) -> str:
    a, b = result["stacks"]
    lines = [f"### stackhop diff: `{a}` ({result['adapters'][0]}) vs `{b}` ({result['adapters'][1]})", "",
             f"| step | setting | {a} | {b} |", "|---|---|---|---|"]
    for step, changed in sorted(result["steps"].items()):
        for key, (va, vb) in changed.items():
            lines.append(f"| {step} | {key} | {_cell(va)} | {_cell(vb)} |")
    if not result["steps"]:
        lines.append("| (none) | | | |")
    return "\n".join(lines) + "\n"


def _cell(v: Any) -> str:
    return "—" if v is None else str(v).replace("|", "\\|")
