"""Fault injection: pod failures a local process cannot produce, and API errors.

Image pulls, OOM kills and evictions never happen when a "container" is a local process, and
a healthy fake API never throttles; yet adapters must handle all of these. Tests queue them
here from their own thread; the server's loop consumes them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .defaults import JOB_NAME_LABELS

__all__ = ["PodFailureInjector", "ApiErrorInjector", "POD_FAILURES", "IMAGE_FAILURES"]

IMAGE_FAILURES = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName")
POD_FAILURES = IMAGE_FAILURES + ("CreateContainerConfigError", "OOMKilled", "Evicted")
API_ERROR_CODES = (429, 500, 503, 504)


@dataclass
class _PodFailure:
    prefix: str
    reason: str
    remaining: int


class PodFailureInjector:
    """Pending pod failures, matched by the job-name label (or pod name) prefix, in FIFO order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_PodFailure] = []

    def add(self, prefix: str, reason: str, count: int = 1) -> None:
        if reason not in POD_FAILURES:
            raise ValueError(f"unknown pod failure {reason!r}; choose one of {', '.join(POD_FAILURES)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._queue.append(_PodFailure(prefix, reason, count))

    def take(self, pod: dict[str, Any]) -> str | None:
        """The failure to inflict on this new pod, if one is queued for it (consumes it)."""
        meta = pod["metadata"]
        labels = meta.get("labels") or {}
        job = next((labels[k] for k in JOB_NAME_LABELS if k in labels), None)
        subject = job if job is not None else meta["name"]
        with self._lock:
            for failure in self._queue:
                if subject.startswith(failure.prefix):
                    failure.remaining -= 1
                    if failure.remaining == 0:
                        self._queue.remove(failure)
                    return failure.reason
        return None


@dataclass
class _ApiFailure:
    status: int
    remaining: int
    method: str | None
    path_contains: str | None


class ApiErrorInjector:
    """Pending error answers for the next requests matching a method and/or path fragment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_ApiFailure] = []

    def add(self, status: int, count: int = 1, method: str | None = None, path_contains: str | None = None) -> None:
        if status not in API_ERROR_CODES:
            raise ValueError(f"cannot inject HTTP {status}; choose one of {API_ERROR_CODES}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._queue.append(_ApiFailure(status, count, method.upper() if method else None, path_contains))

    def take(self, method: str, path: str) -> int | None:
        with self._lock:
            for failure in self._queue:
                if failure.method and failure.method != method.upper():
                    continue
                if failure.path_contains and failure.path_contains not in path:
                    continue
                failure.remaining -= 1
                if failure.remaining == 0:
                    self._queue.remove(failure)
                return failure.status
        return None
