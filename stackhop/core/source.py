"""Where a step's code lives: the importable module name and the source root holding it.

The IR stores only the dotted module name (machine-independent); the source root is what the
code archive packs and what a step process puts on sys.path.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
import textwrap
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


def source_hash(fn: Callable[..., Any]) -> str:
    """Hash of the function's source text, so editing a step invalidates its cache entries."""
    try:
        text = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        code = fn.__code__
        text = repr((code.co_code, code.co_consts, code.co_names))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def import_file(path: str | os.PathLike[str]) -> Any:
    """Import a pipeline file under its proper module name, so steps re-import the same way."""
    import importlib

    module, root = _module_from_path(Path(path).resolve())
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(module)
