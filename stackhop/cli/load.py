"""Find the pipeline a CLI argument names: FILE or FILE:PIPELINE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackhop.errors import StackhopError


def load_pipeline(target: str) -> Any:
    from stackhop.core.dsl import PipelineDef
    from stackhop.core.source import import_file

    file, _, name = target.partition(":")
    path = Path(file)
    if not path.is_file():
        raise StackhopError(f"{file!r} is not a file; pass the Python file that defines the pipeline.")
    if path.suffix != ".py":
        raise StackhopError(f"{file!r} is not a Python file; pass FILE.py or FILE.py:PIPELINE.")
    from stackhop.core.import_guard import importing

    with importing(path.stem, "`stackhop` (loading the pipeline file)"):
        module = import_file(path)
    found = {attr: obj for attr, obj in vars(module).items() if isinstance(obj, PipelineDef)}
    if name:
        for attr, obj in found.items():
            if name in (attr, obj.name):
                return obj
        raise StackhopError(
            f"{file} has no pipeline {name!r}; it defines {', '.join(sorted(found)) or 'none'}."
        )
    if len(found) != 1:
        raise StackhopError(
            f"{file} defines {len(found)} pipelines ({', '.join(sorted(found)) or 'none'}); "
            f"name one as {file}:<pipeline>."
        )
    return next(iter(found.values()))
