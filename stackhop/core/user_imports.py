"""Import a user's pipeline file, and say in one sentence, pointing at their code, why it would not import.

Shared by the CLI (`stackhop run FILE`) and by `runs resume`, which loads a run's file again as it is now.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from stackhop.errors import StackhopError, UserCodeError

_RESOURCE_KEYS = {"cpu", "memory", "gpu", "accelerator", "accelerator_count", "disk", "cpu_limit", "memory_limit"}


def import_user_file(path: Path) -> Any:
    """Import the user's file; a SyntaxError or an exception while importing is a user error showing their code."""
    from stackhop.core.import_guard import importing
    from stackhop.core.source import import_file

    try:
        with importing(path.stem, "`stackhop` (loading the pipeline file)"):
            return import_file(path)
    except StackhopError:
        raise
    except SyntaxError as exc:
        where = f"{exc.filename or path}:{exc.lineno or '?'}:{exc.offset or '?'}"
        caret = ""
        if exc.text:
            line = exc.text.rstrip("\n")
            caret = f"    {line.strip()}\n    {' ' * max(0, (exc.offset or 1) - 1 - (len(line) - len(line.lstrip())))}^"
        raise UserCodeError(f"{where}: {exc.msg}; fix the syntax there.", caret) from None
    except (Exception, SystemExit) as exc:
        from stackhop.core.user_frames import located

        at, details = located(exc)
        what = f"{type(exc).__name__}: {exc}" if not isinstance(exc, SystemExit) else f"SystemExit({exc.code!r})"
        raise UserCodeError(f"importing {path} raised {what}{at}{_hint(exc)}", details) from None


def _hint(exc: BaseException) -> str:
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        import difflib
        import pkgutil
        import sys

        top = exc.name.split(".")[0]
        names = {m.name for m in pkgutil.iter_modules()} | set(sys.builtin_module_names)
        near = difflib.get_close_matches(top, sorted(names), n=1)
        if near:
            return f"; did you mean {near[0]!r}?"
        return f"; install the package that provides {top!r}, or fix the import."
    misuse = re.match(r"(step|pipeline)\(\) got an unexpected keyword argument '(\w+)'", str(exc))
    if isinstance(exc, TypeError) and misuse:
        import difflib
        import inspect

        from stackhop.core import dsl

        accepted = [p for p in inspect.signature(getattr(dsl, misuse.group(1))).parameters if p != "fn"]
        near = difflib.get_close_matches(misuse.group(2), accepted, n=1)
        where = f"; write resources={{{misuse.group(2)!r}: ...}}" if misuse.group(2) in _RESOURCE_KEYS else ""
        return (f"; @{misuse.group(1)} takes {', '.join(accepted)}" + (f" (did you mean {near[0]!r}?)" if near else "")
                + where + ".")
    if isinstance(exc, SystemExit):
        return "; the module exits while being imported (argparse errors do), so guard that code with `if __name__ == \"__main__\":`."
    return "; fix the module so it imports cleanly."
