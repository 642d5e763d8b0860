"""The user's part of a traceback: what to show when their code raised inside stackhop."""

from __future__ import annotations

import os
import traceback
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent.parent)


def own_frames(exc: BaseException) -> list[traceback.FrameSummary]:
    """The frames of the user's code: no stackhop, importlib or frozen-module frames."""
    return [f for f in traceback.extract_tb(exc.__traceback__)
            if not f.filename.startswith(("<frozen", _HERE)) and "importlib" not in f.filename]


def located(exc: BaseException) -> tuple[str, str]:
    """` (at file.py:12)` for the innermost user frame, and those frames formatted for display."""
    frames = own_frames(exc)
    at = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return at, "".join(traceback.format_list(frames)) if frames else ""
