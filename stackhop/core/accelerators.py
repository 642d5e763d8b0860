"""Canonical accelerator names, read from a data file so adding a GPU is a data change."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources

from stackhop.errors import QuantityError


@cache
def catalog() -> dict[str, dict]:
    text = resources.files("stackhop.core").joinpath("data/accelerators.json").read_text()
    return json.loads(text)["accelerators"]


@cache
def _aliases() -> dict[str, str]:
    table: dict[str, str] = {}
    for name, info in catalog().items():
        table[name.lower()] = name
        for alias in info["aliases"]:
            table[alias.lower()] = name
    return table


def canonical_accelerator(name: str, *, where: str) -> str:
    """Map any accepted spelling ("t4", "NVIDIA_TESLA_T4") to the canonical name."""
    if not isinstance(name, str):
        raise QuantityError(f"{where}: accelerator must be a name like 'nvidia-tesla-t4', got {type(name).__name__} {name!r}.")
    found = _aliases().get(name.strip().lower())
    if found is None:
        near = difflib.get_close_matches(name.lower(), list(_aliases()), n=3)
        hint = f" Did you mean {', '.join(repr(_aliases()[n]) for n in near)}?" if near else ""
        raise QuantityError(
            f"{where}: unknown accelerator {name!r}; use one of {', '.join(sorted(catalog()))}.{hint}"
        )
    return found
