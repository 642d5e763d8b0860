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
    """For `__main__`: a script run directly is its file's folder; a notebook, a REPL or `python -c`, the
    current directory (where `import helpers` finds the project's modules)."""
    module = fn.__module__
    if module == "__main__":
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        code = getattr(fn, "__code__", None)
        if main and code is not None and Path(code.co_filename).resolve() == Path(main).resolve():
            return _module_from_path(Path(main).resolve())
        return module, Path.cwd()
    try:
        file = inspect.getsourcefile(fn) or getattr(sys.modules.get(module), "__file__", None)
    except TypeError:
        file = None
    if file is None:
        return module, None
    path = Path(file).resolve()
    parts = module.split(".")
    root = path.parent if path.name != "__init__.py" else path.parent.parent
    for _ in parts[:-1]:
        root = root.parent
    return module, root


def module_of_file(path: Path) -> tuple[str, Path]:
    """The dotted name a file imports as, and the folder that goes on sys.path for it."""
    return _module_from_path(path)


def _module_from_path(path: Path) -> tuple[str, Path]:
    parts = [path.stem]
    d = path.parent
    while (d / "__init__.py").exists():
        parts.insert(0, d.name)
        d = d.parent
    return ".".join(parts), d


def step_code(fn: Callable[..., Any], *, where: str, bound_as: tuple[str, ...] = ()) -> dict[str, Any]:
    """The IR's `python` body for a step function: how to find it, and the identity of its code."""
    from stackhop.core.code_by_value import capture, defined_in_main
    from stackhop.core.code_fingerprint import fingerprint_step

    if defined_in_main(fn):
        module, root = module_and_root(fn)
        by_value = capture(fn, root=root or Path.cwd(), where=where, bound_as=bound_as)
        body: dict[str, Any] = {"module": "__main__", "qualname": fn.__qualname__, "code_digest": by_value.digest,
                                "code_parts": by_value.parts, "imports_project": by_value.imports_project}
        if by_value.source is not None:
            body["source"] = by_value.source
            if by_value.script:
                body["script"] = by_value.script
        else:
            body.update(pickled=by_value.pickled, python=by_value.python)
        return body
    module, root = module_and_root(fn)
    found = fingerprint_step(fn, module, root, bound_as)
    return {"module": module, "qualname": fn.__qualname__, "code_digest": found.digest, "code_parts": found.parts}


def import_file(path: str | os.PathLike[str]) -> Any:
    """Import a pipeline file under its proper module name, so steps re-import the same way."""
    import importlib

    module, root = _module_from_path(Path(path).resolve())
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(module)
