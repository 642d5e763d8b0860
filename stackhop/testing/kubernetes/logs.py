"""Container output kept for `pods/{name}/log`, per container instance, followable.

Adapters stream step logs with `follow=true` while a pod runs and fetch `previous=true` after a
restart, so output is stored line by line with timestamps, one buffer per container start.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

__all__ = ["ContainerLog", "LogStore"]


def _stamp(timestamp: float) -> bytes:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f").encode() + b"000Z"


class ContainerLog:
    """The output of one run of one container."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, bytes]] = []
        self.finished = False
        self._partial = b""
        self._changed = asyncio.Event()

    def feed(self, data: bytes) -> None:
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        now = time.time()
        self.lines.extend((now, line + b"\n") for line in complete)
        if complete:
            self._notify()

    def close(self) -> None:
        if self._partial:
            self.lines.append((time.time(), self._partial))
            self._partial = b""
        self.finished = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def changed(self) -> asyncio.Event:
        """An event set at the next new line or at close (take it before checking for lines)."""
        return self._changed

    def text(self) -> bytes:
        return b"".join(line for _, line in self.lines)

    def render(
        self,
        start: int = 0,
        *,
        tail_lines: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> bytes:
        lines = self.lines[start:]
        if since is not None:
            lines = [entry for entry in lines if entry[0] >= since]
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        if timestamps:
            return b"".join(_stamp(ts) + b" " + line for ts, line in lines)
        return b"".join(line for _, line in lines)


class LogStore:
    """Container logs by (pod uid, container name); the last two runs are kept, like the kubelet."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], list[ContainerLog]] = {}

    def start(self, pod_uid: str, container: str) -> ContainerLog:
        runs = self._runs.setdefault((pod_uid, container), [])
        runs.append(ContainerLog())
        del runs[:-2]
        return runs[-1]

    def current(self, pod_uid: str, container: str) -> ContainerLog | None:
        runs = self._runs.get((pod_uid, container))
        return runs[-1] if runs else None

    def previous(self, pod_uid: str, container: str) -> ContainerLog | None:
        runs = self._runs.get((pod_uid, container)) or []
        return runs[-2] if len(runs) > 1 else None

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self._runs if k[0] == pod_uid]:
            for run in self._runs.pop(key):
                if not run.finished:
                    run.close()
