"""Kubernetes Events emitted by the fake controllers, stored like any other object.

Users and adapters diagnose failures from Events (`FailedCreate`, `BackOff`,
`BackoffLimitExceeded`, ...), so the fake writes the same reasons, messages and involvedObject
references, and aggregates repeats into `count` as the real event recorder does.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from .clock import rfc3339
from .resources import EVENT
from .store import Store

__all__ = ["EventRecorder"]

_NODE = "fake-node"


class EventRecorder:
    """Creates (or bumps the count of) core/v1 Events for an involved object."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._sequence = itertools.count(1)
        self._index: dict[tuple[str, str, str, str], tuple[str, str]] = {}

    def record(
        self,
        involved: dict[str, Any],
        api_version: str,
        kind: str,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        component: str = "kubelet",
        field_path: str | None = None,
    ) -> None:
        meta = involved.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        now = rfc3339()
        key = (meta.get("uid", ""), reason, message, component)
        existing = self._index.get(key)
        if existing is not None:
            event = self._store.get(EVENT.key, *existing)
            if event is not None:
                event["count"] = int(event.get("count") or 1) + 1
                event["lastTimestamp"] = now
                self._store.update(EVENT.key, event)
                return
        reference: dict[str, Any] = {
            "apiVersion": api_version,
            "kind": kind,
            "name": meta.get("name", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if meta.get("namespace"):
            reference["namespace"] = meta["namespace"]
        if field_path:
            reference["fieldPath"] = field_path
        name = f"{meta.get('name', 'unknown')}.{time.time_ns() + next(self._sequence):x}"
        source: dict[str, Any] = {"component": component}
        if component == "kubelet":
            source["host"] = _NODE
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": self._store.new_uid(),
                "creationTimestamp": now,
            },
            "involvedObject": reference,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": "Warning" if warning else "Normal",
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": _NODE if component == "kubelet" else "",
        }
        self._store.create(EVENT.key, event)
        self._index[key] = (namespace, name)
