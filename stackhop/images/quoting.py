"""Writing values into a Dockerfile so each stays one word of the instruction it was put in.

Settings are validated when loaded (`stackhop.core.image_rules`); this is the second fence,
for values that reach the renderer some other way. A Dockerfile ends an instruction at a
newline, substitutes `$VAR` in ENV, ARG and COPY, and hands RUN lines to a shell. So: words
are single-quoted, which both BuildKit's lexer and dockerfile-parse read literally (no
escapes, no substitution); RUN is written in exec form, a JSON array whose escapes carry any
character, around a script whose every argument is shell-quoted.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence

from stackhop.images.errors import ImageError

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def word(value: str, what: str) -> str:
    """`value` as one literal Dockerfile word; control characters cannot be carried, so they are refused."""
    if _CONTROL.search(value):
        raise ImageError(f"{what} {value!r} contains a newline or another control character, which a Dockerfile "
                         "cannot carry; remove it.")
    return shlex.quote(value)


def run(*commands: Sequence[str] | str) -> str:
    """A RUN instruction in exec form chaining `commands` with `&&`; a string is a fixed shell fragment."""
    script = " && ".join(c if isinstance(c, str) else shlex.join(c) for c in commands)
    return "RUN " + json.dumps(["/bin/sh", "-c", script])


def copy(source: str, dest: str) -> str:
    """A COPY instruction in JSON form, so spaces and quotes in either path stay in that path."""
    return "COPY " + json.dumps([source, dest])
