"""Scenarios every backend's integration suite shares."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def run_as_script() -> Callable[[Path], Any]:
    """`python training_pipeline.py` in the project: its steps live in `__main__`, so they travel by value."""

    def run(project: Path) -> Any:
        from stackhop.core.store import RunStore

        shutil.copy(EXAMPLES / "training_pipeline.py", project / "script.py")
        done = subprocess.run([sys.executable, "script.py"], cwd=project, capture_output=True, text=True, timeout=3600)
        assert done.returncode == 0, done.stderr[-2000:]
        (record,) = RunStore(project / ".stackhop" / "runs.db", create=False).list()
        return record

    return run
