"""Importing a user's module never starts a run, and never sees stackhop's own command line.

A module that calls `run()` at import time would start another run each time a step process,
the fork server or `stackhop run` imports it, and each of those runs would import it again.
Every place stackhop imports user code does it inside `importing(...)`, and `run()` refuses
there, naming the module and the fix.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from stackhop.errors import RecursiveRunError

_active: list[tuple[str, str]] = []


@contextmanager
def importing(module: str, by: str) -> Iterator[None]:
    """`by` says who imports: "a step process", "the fork server", "`stackhop run`".

    The module sees a command line of its own name only, so one that parses its arguments when
    imported (argparse at module level) gets its defaults instead of stackhop's arguments."""
    import sys

    _active.append((module, by))
    argv, sys.argv = sys.argv, [module]
    try:
        yield
    finally:
        sys.argv = argv
        _active.pop()


def refuse_run() -> None:
    if _active:
        module, by = _active[-1]
        raise RecursiveRunError(
            f"stackhop.run() was called while {by} imported module {module!r}; call run() under "
            "`if __name__ == \"__main__\":` so that importing the module does not start another run."
        )
