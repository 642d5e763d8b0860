"""Where a step's code lives: the importable module name and the source root holding it.

The IR stores only the dotted module name (machine-independent); the source root is what the
code archive packs and what a step process puts on sys.path.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable


def module_and_root(fn: Callable[..., Any]) -> tuple[str, Path | None]:
    module = fn.__module__
    file = inspect.getsourcefile(fn) or getattr(sys.modules.get(module), "__file__", None)
    if file is None:
        return module, None
    path = Path(file).resolve()
    if module == "__main__":
        return _module_from_path(path)
    parts = module.split(".")
    root = path.parent if path.name != "__init__.py" else path.parent.parent
    for _ in parts[:-1]:
        root = root.parent
    return module, root


def _module_from_path(path: Path) -> tuple[str, Path]:
    parts = [path.stem]
    d = path.parent
    while (d / "__init__.py").exists():
        parts.insert(0, d.name)
        d = d.parent
    return ".".join(parts), d


def step_code(fn: Callable[..., Any], *, where: str) -> dict[str, Any]:
    """The IR's `python` body for a step function: how to find it, and the identity of its code."""
    from stackhop.core.code_by_value import capture, defined_in_main
    from stackhop.core.code_fingerprint import fingerprint_step

    if defined_in_main(fn):
        module, root = module_and_root(fn)
        by_value = capture(fn, root=root or Path.cwd(), where=where)
        body: dict[str, Any] = {"module": "__main__", "qualname": fn.__qualname__, "code_digest": by_value.digest,
                                "code_parts": by_value.parts, "imports_project": by_value.imports_project}
        if by_value.source is not None:
            body["source"] = by_value.source
        else:
            body.update(pickled=by_value.pickled, python=by_value.python)
        return body
    module, root = module_and_root(fn)
    found = fingerprint_step(fn, module, root)
    return {"module": module, "qualname": fn.__qualname__, "code_digest": found.digest, "code_parts": found.parts}


def import_file(path: str | os.PathLike[str]) -> Any:
    """Import a pipeline file under its proper module name, so steps re-import the same way."""
    import importlib

    module, root = _module_from_path(Path(path).resolve())
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(module)
