"""Find the pipeline a CLI argument names: FILE or FILE:PIPELINE, and say clearly why a file will not load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackhop.core.user_imports import import_user_file
from stackhop.errors import StackhopError


def load_pipeline(target: str) -> Any:
    from stackhop.core.dsl import PipelineDef

    file, _, name = target.partition(":")
    path = Path(file)
    if not path.is_file():
        raise StackhopError(f"{file!r} is not a file; pass the Python file that defines the pipeline.")
    if path.suffix != ".py":
        raise StackhopError(f"{file!r} is not a Python file; pass FILE.py or FILE.py:PIPELINE.")
    module = import_user_file(path)
    found = {attr: obj for attr, obj in vars(module).items() if isinstance(obj, PipelineDef)}
    if name:
        for attr, obj in found.items():
            if name in (attr, obj.name):
                return obj
        raise StackhopError(
            f"{file} has no pipeline {name!r}; it defines {', '.join(sorted(found)) or 'none'}."
        )
    if not found:
        raise StackhopError(
            f"{file} defines no pipeline; decorate the function that calls your steps with @pipeline."
        )
    roots = _not_called_by_another(found)
    if len(roots) == 1:
        return found[roots[0]]
    if len(found) > 1:
        raise StackhopError(
            f"{file} defines {len(found)} pipelines ({', '.join(sorted(found))}); "
            f"name the one to use as {file}:{sorted(found)[0]}."
        )
    return next(iter(found.values()))


def _not_called_by_another(found: dict[str, Any]) -> list[str]:
    """The pipelines no other pipeline of the file calls: a file that nests `prepare` in `train` means `train`."""
    called: set[str] = set()
    for obj in found.values():
        code = getattr(obj.fn, "__code__", None)
        names = code.co_names if code is not None else ()
        called.update(n for n in names if n in found and found[n] is not obj)
    return [attr for attr in found if attr not in called]
