"""Figures on the shape of the code: what a new backend costs, and how the layers hold.

    python benchmarks/a1_architecture.py [--rev REV]   # this tree, and REV (a commit) beside it

Prints, per tree: function-level imports under stackhop/ (outside testing/), lines in stackhop/testing against
stackhop/core plus stackhop/adapters, the five longest functions outside testing/, the names of built-in backends
that appear in stackhop/core and stackhop/entrypoint.py outside the plugin registry, and the
imports in core that point to images/, promotion/, adapters/ or cli/.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import tempfile
from pathlib import Path

BACKENDS = ("sagemaker", "vertex", "kfp", "kubeflow", "kubernetes", "pipelinespec", "argo")
UPWARD = ("stackhop.images", "stackhop.promotion", "stackhop.adapters", "stackhop.cli")


def _files(root: Path, sub: str) -> list[Path]:
    return sorted((root / sub).rglob("*.py")) if (root / sub).exists() else []


def _lines(paths: list[Path]) -> int:
    return sum(len(p.read_text().splitlines()) for p in paths)


def figures(root: Path) -> dict[str, object]:
    package = [p for p in _files(root, "stackhop") if "/testing/" not in str(p)]
    local_imports = 0
    local_stackhop_imports = 0
    longest: list[tuple[int, str]] = []
    upward: list[str] = []
    for path in package:
        tree = ast.parse(path.read_text())
        rel = str(path.relative_to(root))
        parent: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parent[child] = node
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                up = parent.get(node)
                while up is not None and not isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    up = parent.get(up)
                if up is not None:
                    local_imports += 1
                    names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                    local_stackhop_imports += any(n.startswith("stackhop") for n in names)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                longest.append(((node.end_lineno or node.lineno) - node.lineno + 1, f"{rel}:{node.name}"))
            if rel.startswith("stackhop/core/") and isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                upward += [f"{rel}: {n}" for n in names if n.startswith(UPWARD)]
    mentions = []
    for path in [*_files(root, "stackhop/core"), root / "stackhop" / "entrypoint.py"]:
        if not path.exists() or path.name == "plugins.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            low = line.lower()
            mentions += [f"{path.relative_to(root)}:{i}: {b}" for b in BACKENDS if f'"{b}' in low or f"'{b}" in low
                         or f".{b}" in low]
    longest.sort(reverse=True)
    return {
        "function_level_imports": local_imports,
        "function_level_imports_of_stackhop": local_stackhop_imports,
        "lines_testing": _lines(_files(root, "stackhop/testing")),
        "lines_core_plus_adapters": _lines(_files(root, "stackhop/core") + _files(root, "stackhop/adapters")),
        "longest_functions": [f"{n} lines {name}" for n, name in longest[:5]],
        "backend_names_in_core_and_entrypoint": len(mentions),
        "backend_name_examples": mentions[:8],
        "core_imports_pointing_up": upward,
        "entrypoint_flags": (root / "stackhop" / "entrypoint.py").read_text().count("add_argument(")
        if (root / "stackhop" / "entrypoint.py").exists() else None,
        "emulated_checks_in_adapters": sum(p.read_text().count('get("emulated")') for p in _files(root, "stackhop/adapters")),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rev", help="also measure this commit (checked out into a temporary worktree)")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent.parent
    print(json.dumps({"tree": "working tree", **figures(here)}, indent=1))
    if args.rev:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["git", "-C", str(here), "archive", args.rev, "stackhop", "-o", f"{tmp}/t.tar"], check=True)
            subprocess.run(["tar", "-xf", f"{tmp}/t.tar", "-C", tmp], check=True)
            print(json.dumps({"tree": args.rev, **figures(Path(tmp))}, indent=1))


if __name__ == "__main__":
    main()
