"""The object store: every object, one global resourceVersion counter and the watch history.

Like etcd behind a real API server, every write gets the next resourceVersion and produces a
watch event, and only a bounded window of past events is kept; a watch from before that window
must fail with 410 Expired so that clients are forced to handle re-listing. The store is only
touched from the server's event loop, so it needs no locks; it hands out copies so no caller
can change stored state behind its back.
"""

from __future__ import annotations

import copy
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .resources import ResourceKey

__all__ = ["Store", "WatchEvent", "ExpiredError"]

ObjectKey = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped objects


@dataclass(frozen=True)
class WatchEvent:
    """A stored change. `object` and `previous` are shared snapshots: never mutate them."""

    type: str  # ADDED, MODIFIED or DELETED
    resource: ResourceKey
    object: dict[str, Any]
    previous: dict[str, Any] | None
    resource_version: int


class ExpiredError(Exception):
    """The requested resourceVersion is older than the kept watch history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


Listener = Callable[[WatchEvent], None]


def _key_of(obj: dict[str, Any]) -> ObjectKey:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


class Store:
    """Objects by resource and (namespace, name), with a resourceVersion-ordered event history."""

    def __init__(self, history_size: int = 1000, report_error: Callable[[BaseException], None] | None = None) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self._objects: dict[ResourceKey, dict[ObjectKey, dict[str, Any]]] = {}
        self._by_uid: dict[str, tuple[ResourceKey, ObjectKey]] = {}
        self._resource_version = 0
        self._uid_counter = 0
        self._history: deque[WatchEvent] = deque(maxlen=history_size)
        self._compacted = 0  # resourceVersion of the newest event dropped from the history
        self._listeners: list[Listener] = []
        self._pending: deque[WatchEvent] = deque()
        self._dispatching = False
        self._report_error = report_error

    # -- identity -------------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._resource_version

    def new_uid(self) -> str:
        """A deterministic, well-formed UUID (counter based, so test runs are reproducible)."""
        self._uid_counter += 1
        return str(uuid.UUID(int=self._uid_counter, version=4))

    # -- reads ----------------------------------------------------------------------------

    def get(self, resource: ResourceKey, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self._objects.get(resource, {}).get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def objects(self, resource: ResourceKey, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects of a resource sorted by (namespace, name); `namespace=None` means all."""
        bucket = self._objects.get(resource, {})
        return [copy.deepcopy(bucket[key]) for key in sorted(bucket) if namespace is None or key[0] == namespace]

    def resources(self) -> list[ResourceKey]:
        return [key for key, bucket in self._objects.items() if bucket]

    def find_uid(self, uid: str) -> tuple[ResourceKey, dict[str, Any]] | None:
        where = self._by_uid.get(uid)
        if where is None:
            return None
        return where[0], copy.deepcopy(self._objects[where[0]][where[1]])

    def dependents_of(self, owner_uid: str) -> list[tuple[ResourceKey, dict[str, Any]]]:
        """Objects with an ownerReference to `owner_uid` (copies)."""
        found = []
        for resource, bucket in self._objects.items():
            for obj in bucket.values():
                refs = obj["metadata"].get("ownerReferences") or []
                if any(ref.get("uid") == owner_uid for ref in refs):
                    found.append((resource, copy.deepcopy(obj)))
        return found

    def iter_all(self) -> Iterator[tuple[ResourceKey, dict[str, Any]]]:
        """Every stored object (copies), for scans such as finding dependents of an owner."""
        for resource, bucket in list(self._objects.items()):
            for obj in list(bucket.values()):
                yield resource, copy.deepcopy(obj)

    # -- writes ---------------------------------------------------------------------------

    def create(self, resource: ResourceKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Store a new object (the caller has checked it does not exist) and emit ADDED."""
        key = _key_of(obj)
        bucket = self._objects.setdefault(resource, {})
        if key in bucket:
            raise KeyError(key)
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self._bump())
        bucket[key] = stored
        self._by_uid[stored["metadata"]["uid"]] = (resource, key)
        self._emit("ADDED", resource, stored, None)
        return copy.deepcopy(stored)

    def update(self, resource: ResourceKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Replace an existing object, give it a new resourceVersion and emit MODIFIED."""
        key = _key_of(obj)
        bucket = self._objects.get(resource, {})
        previous = bucket[key]
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self._bump())
        bucket[key] = stored
        self._emit("MODIFIED", resource, stored, previous)
        return copy.deepcopy(stored)

    def remove(self, resource: ResourceKey, namespace: str, name: str) -> dict[str, Any] | None:
        """Remove an object; the DELETED event carries it with a fresh resourceVersion."""
        bucket = self._objects.get(resource, {})
        previous = bucket.pop((namespace, name), None)
        if previous is None:
            return None
        self._by_uid.pop(previous["metadata"].get("uid", ""), None)
        final = copy.deepcopy(previous)
        final["metadata"]["resourceVersion"] = str(self._bump())
        self._emit("DELETED", resource, final, previous)
        return copy.deepcopy(final)

    def _bump(self) -> int:
        self._resource_version += 1
        return self._resource_version

    # -- watching -------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` for every future event, in order, right after the write (it must not block)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def events_after(self, resource_version: int) -> list[WatchEvent]:
        """Events newer than `resource_version`, or ExpiredError if some were already dropped."""
        if resource_version < self._compacted:
            oldest = self._history[0].resource_version if self._history else self._resource_version
            raise ExpiredError(resource_version, oldest)
        return [e for e in self._history if e.resource_version > resource_version]

    def is_compacted(self, resource_version: int) -> bool:
        return resource_version < self._compacted

    def _emit(self, kind: str, resource: ResourceKey, obj: dict[str, Any], previous: dict[str, Any] | None) -> None:
        event = WatchEvent(
            kind,
            resource,
            copy.deepcopy(obj),
            copy.deepcopy(previous) if previous is not None else None,
            int(obj["metadata"]["resourceVersion"]),
        )
        if len(self._history) == self._history.maxlen:
            self._compacted = self._history[0].resource_version
        self._history.append(event)
        # A listener that writes would otherwise deliver its event to later listeners before the
        # one being dispatched; queueing keeps every listener seeing events in resourceVersion order.
        self._pending.append(event)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending:
                pending = self._pending.popleft()
                for listener in list(self._listeners):
                    try:
                        listener(pending)
                    except Exception as exc:  # a broken listener must not fail the write itself
                        if self._report_error is None:
                            raise
                        self._report_error(exc)
        finally:
            self._dispatching = False
