"""Draw a pipeline: Mermaid text always, SVG through graphviz's `dot` when it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from stackhop.core import ir
from stackhop.errors import StackhopError


def _node_id(name: str) -> str:
    return "s_" + "".join(c if c.isalnum() else "_" for c in name)


def _label(g: ir.Group) -> str:
    if g.kind == "condition":
        return f"If {ir.describe_expr(g.condition)}"
    if g.kind == "parallel_for":
        assert g.items is not None
        if g.items.output is not None:
            items = f"each item of {ir.describe_value(g.items.output)}"
        elif g.items.param:
            items = f"params.{g.items.param}"
        else:
            items = f"{len(g.items.static or ())} items"
        return f"ParallelFor {items}" + (f" (parallelism {g.parallelism})" if g.parallelism else "")
    if g.kind == "branches":
        return "If / Elif / Else"
    if g.kind == "pipeline":
        return f"pipeline {g.pipeline}"
    return f"ExitHandler -> {g.exit_step}"


def mermaid(p: ir.Pipeline) -> str:
    lines = ["flowchart TD"]
    children: dict[str | None, list[str]] = {}
    for g in p.groups:
        children.setdefault(g.parent, []).append(g.id)
    members: dict[str | None, list[ir.Step]] = {}
    for s in p.steps:
        members.setdefault(s.group, []).append(s)

    def emit(group: str | None, indent: str) -> None:
        for s in members.get(group, []):
            shape = {"container": ("[[", "]]"), "resource": ("{{", "}}"), "importer": ("[/", "/]")}.get(s.kind, ("[", "]"))
            lines.append(f'{indent}{_node_id(s.name)}{shape[0]}"{s.display_name or s.name}"{shape[1]}')
        for child in children.get(group, []):
            g = p.group(child)
            label = _label(g).replace('"', "'")
            lines.append(f'{indent}subgraph {_node_id(g.id)} ["{label}"]')
            emit(child, indent + "  ")
            lines.append(f"{indent}end")

    emit(None, "  ")
    for a, b in p.edges():
        lines.append(f"  {_node_id(a)} --> {_node_id(b)}")
    return "\n".join(lines)


def dot(p: ir.Pipeline) -> str:
    lines = ["digraph pipeline {", "  rankdir=TB; node [shape=box, fontname=Helvetica];"]
    for s in p.steps:
        lines.append(f'  {_node_id(s.name)} [label="{s.display_name or s.name}"];')
    for a, b in p.edges():
        lines.append(f"  {_node_id(a)} -> {_node_id(b)};")
    lines.append("}")
    return "\n".join(lines)


def render_svg(p: ir.Pipeline, out: Path) -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise StackhopError("--svg needs graphviz's `dot` on PATH; install graphviz (e.g. apt-get install graphviz).")
    result = subprocess.run([exe, "-Tsvg", "-o", str(out)], input=dot(p).encode(), capture_output=True)
    if result.returncode != 0:
        raise StackhopError(f"dot failed to render {out}: {result.stderr.decode().strip()}")
    return f"wrote {out}"
