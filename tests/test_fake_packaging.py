"""The boundary docs/testing.md draws: stackhop.testing ships in the wheel, its dependencies do not.

`import stackhop` and the adapters must never need the stand-ins' dependencies, and
`pip install 'stackhop[testing]'` must bring every one of them; both drift silently otherwise
(a dev install has everything, so no other test would notice).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "stackhop"
# Imported only under TYPE_CHECKING, or with a fallback when absent.
OPTIONAL = {"pytest", "gcsfs"}


def _third_party_imports(files: list[Path]) -> set[str]:
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("stackhop", "__future__")}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _closure(requirements: list[str], extras_table: dict[str, list[str]]) -> set[str]:
    """Every distribution these requirements install, as far as this environment's metadata tells."""
    seen: set[tuple[str, str | None]] = set()
    todo: list[tuple[Requirement, str | None]] = [(Requirement(r), None) for r in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra or ""}):
            continue
        name = _canonical(requirement.name)
        if name == "stackhop":  # a self-reference: read from pyproject.toml, not the installed metadata
            todo += [(Requirement(r), None) for e in requirement.extras for r in extras_table[e]]
            continue
        for wanted in [None, *sorted(requirement.extras)]:
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            try:
                todo += [(Requirement(r), wanted) for r in importlib.metadata.requires(requirement.name) or []]
            except importlib.metadata.PackageNotFoundError:
                pass
    return {name for name, _ in seen}


def test_every_import_of_the_stand_ins_comes_with_the_testing_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    installed = _closure(project["dependencies"] + extras["testing"], extras)
    providers = importlib.metadata.packages_distributions()
    missing = {
        name: providers.get(name)
        for name in _third_party_imports(sorted((PACKAGE / "testing").rglob("*.py"))) - OPTIONAL
        if not {_canonical(d) for d in providers.get(name, [])} & installed
    }
    assert not missing, f"stackhop.testing imports these, which the testing extra does not bring: {missing}"


def test_nothing_outside_stackhop_testing_imports_it() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "testing") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            offenders += [f"{path.relative_to(ROOT)}: {m}" for m in modules if m.startswith("stackhop.testing")]
    assert not offenders


def test_import_stackhop_loads_none_of_the_stand_ins_dependencies() -> None:
    testing_only = {"aiohttp", "moto", "werkzeug", "flask", "gcp_storage_emulator", "bcrypt", "jsonschema"}
    probe = (
        "import json, sys, stackhop; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('stackhop.testing') "
        f"or m.split('.')[0] in {sorted(testing_only)!r})))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                                       cwd=ROOT).stdout)
    assert loaded == []
