"""Which GPUs local steps may use: the machine's NVIDIA GPUs, or those the stack names.

On a laptop without one a GPU step still runs, on the CPU, with a note (as Metaflow and KFP's
local runner do); with GPUs, each step gets as many as it asks for (at most all of them) through
CUDA_VISIBLE_DEVICES, and steps wait for free ones rather than share.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from typing import Any


def available(setting: Any) -> list[str]:
    """GPU ids: a list from the stack, none for "none", else what CUDA_VISIBLE_DEVICES or nvidia-smi says."""
    if isinstance(setting, list):
        return [str(g) for g in setting]
    if setting == "none":
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return []
    try:
        out = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


class GpuPool:
    """GPUs held by running attempts; attempts end on other threads, hence the lock."""

    def __init__(self, ids: list[str]):
        self.ids = ids
        self.free = list(ids)
        self.held: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def wanted(self, count: int) -> int:
        return min(count, len(self.ids))

    def can_take(self, count: int) -> bool:
        with self._lock:
            return len(self.free) >= self.wanted(count)

    def take(self, key: str, count: int) -> list[str]:
        with self._lock:
            n = self.wanted(count)
            got, self.free = self.free[:n], self.free[n:]
            self.held[key] = got
            return got

    def give_back(self, key: str) -> None:
        with self._lock:
            self.free = sorted(self.free + self.held.pop(key, []), key=self.ids.index)
