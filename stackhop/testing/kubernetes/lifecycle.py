"""Deletion: propagation policies, finalizers, graceful pod termination, garbage collection.

Deleting is where naive fakes differ most from clusters. Here, as upstream: objects with
finalizers linger with a deletionTimestamp; Foreground keeps the owner until its dependents are
gone, Orphan strips ownerReferences, Background removes the owner then collects dependents;
running pods terminate gracefully (SIGTERM, grace period, SIGKILL) before disappearing; a
dependent whose owners no longer exist is collected; batch/v1 Jobs orphan their pods unless a
propagationPolicy is given. Namespace deletion removes the namespace's contents first.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

from .clock import rfc3339
from .resources import NAMESPACE, POD, JOB, Registry, ResourceKey, ResourceType
from .store import Store, WatchEvent

__all__ = ["Lifecycle", "POLICIES"]

POLICIES = ("Orphan", "Background", "Foreground")
_FOREGROUND = "foregroundDeletion"
_ORPHAN = "orphan"


def _ident(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


class Lifecycle:
    """Implements DELETE and the garbage collector; listens to the store to make progress."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        loop: asyncio.AbstractEventLoop,
        pod_needs_grace: Callable[[dict[str, Any]], bool],
    ) -> None:
        self._store = store
        self._registry = registry
        self._loop = loop
        self._pod_needs_grace = pod_needs_grace
        store.subscribe(self._on_event)

    # -- DELETE -------------------------------------------------------------------------------

    @staticmethod
    def default_policy(rtype: ResourceType) -> str:
        """batch/v1 Jobs orphan their pods by default (kept upstream for compatibility)."""
        return "Orphan" if rtype == JOB else "Background"

    def delete(
        self,
        rtype: ResourceType,
        obj: dict[str, Any],
        policy: str | None = None,
        grace_seconds: int | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Start deleting `obj`; returns (object as of now, whether it is already gone)."""
        meta = obj["metadata"]
        namespace, name = _ident(obj)
        if meta.get("deletionTimestamp"):
            if rtype == POD and grace_seconds == 0 and not dry_run:
                return self._force_remove(rtype, obj), True
            return obj, False
        policy = policy or self.default_policy(rtype)
        has_dependents = bool(self._store.dependents_of(meta["uid"]))
        finalizers = list(meta.get("finalizers") or [])
        if has_dependents and policy == "Foreground" and _FOREGROUND not in finalizers:
            finalizers.append(_FOREGROUND)
        if has_dependents and policy == "Orphan" and _ORPHAN not in finalizers:
            finalizers.append(_ORPHAN)
        grace = 0
        if rtype == POD:
            default_grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            grace = default_grace if grace_seconds is None else grace_seconds
            if not self._pod_needs_grace(obj):
                grace = 0
        deferred = bool(finalizers) or grace > 0 or rtype == NAMESPACE
        if not deferred:
            if dry_run:
                return obj, True
            return self._store.remove(rtype.key, namespace, name) or obj, True
        pending = dict(obj, metadata=dict(meta))
        pending["metadata"]["deletionTimestamp"] = rfc3339(time.time() + grace)
        pending["metadata"]["deletionGracePeriodSeconds"] = grace
        if finalizers:
            pending["metadata"]["finalizers"] = finalizers
        if rtype == NAMESPACE:
            pending["status"] = dict(pending.get("status") or {}, phase="Terminating")
        if dry_run:
            return pending, False
        updated = self._store.update(rtype.key, pending)
        if rtype == NAMESPACE:
            self._loop.call_soon(self._drain_namespace, name)
        if _FOREGROUND in finalizers:
            self._loop.call_soon(self._delete_dependents, meta["uid"])
        if _ORPHAN in finalizers:
            self._loop.call_soon(self._orphan_dependents, rtype.key, namespace, name)
        return updated, False

    def pod_terminated(self, pod: dict[str, Any]) -> None:
        """The kubelet finished terminating a pod that is being deleted: complete the deletion."""
        current = self._store.get(POD.key, *_ident(pod))
        if current is None or not current["metadata"].get("deletionTimestamp"):
            return
        if current["metadata"].get("finalizers"):
            current["metadata"]["deletionGracePeriodSeconds"] = 0
            self._store.update(POD.key, current)
        else:
            self._store.remove(POD.key, *_ident(current))

    def _force_remove(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        return self._store.remove(rtype.key, *_ident(obj)) or obj

    # -- garbage collection ------------------------------------------------------------------

    def _on_event(self, event: WatchEvent) -> None:
        meta = event.object["metadata"]
        if event.type == "DELETED":
            self._loop.call_soon(self._collect_dependents, meta.get("uid", ""))
            for ref in meta.get("ownerReferences") or []:
                self._loop.call_soon(self._finish_foreground, ref.get("uid", ""))
            if meta.get("namespace"):
                self._loop.call_soon(self._finish_namespace, meta["namespace"])
        elif event.type == "MODIFIED" and meta.get("deletionTimestamp"):
            self._loop.call_soon(self._remove_if_finalized, event.resource, *_ident(event.object))
        elif event.type == "ADDED" and meta.get("ownerReferences"):
            self._loop.call_soon(self._collect_if_dangling, event.resource, *_ident(event.object))

    def _owner_exists(self, ref: dict[str, Any], namespace: str) -> bool:
        found = self._store.find_uid(ref.get("uid", ""))
        if found is None:
            return False
        owner_namespace = found[1]["metadata"].get("namespace") or ""
        return owner_namespace in ("", namespace)

    def _collect_if_dangling(self, resource: ResourceKey, namespace: str, name: str) -> None:
        obj = self._store.get(resource, namespace, name)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        refs = obj["metadata"].get("ownerReferences") or []
        if refs and not any(self._owner_exists(ref, namespace) for ref in refs):
            self._delete_key(resource, obj, "Background")

    def _collect_dependents(self, owner_uid: str) -> None:
        for resource, dependent in self._store.dependents_of(owner_uid):
            namespace = dependent["metadata"].get("namespace") or ""
            refs = dependent["metadata"].get("ownerReferences") or []
            remaining = [r for r in refs if r.get("uid") != owner_uid]
            if any(self._owner_exists(r, namespace) for r in remaining):
                dependent["metadata"]["ownerReferences"] = remaining
                self._store.update(resource, dependent)
            else:
                self._delete_key(resource, dependent, "Background")

    def _delete_dependents(self, owner_uid: str) -> None:
        for resource, dependent in self._store.dependents_of(owner_uid):
            self._delete_key(resource, dependent, "Foreground")
        self._finish_foreground(owner_uid)

    def _finish_foreground(self, owner_uid: str) -> None:
        found = self._store.find_uid(owner_uid)
        if found is None:
            return
        resource, owner = found
        finalizers = owner["metadata"].get("finalizers") or []
        if _FOREGROUND not in finalizers or self._store.dependents_of(owner_uid):
            return
        owner["metadata"]["finalizers"] = [f for f in finalizers if f != _FOREGROUND]
        self._store.update(resource, owner)

    def _orphan_dependents(self, resource: ResourceKey, namespace: str, name: str) -> None:
        owner = self._store.get(resource, namespace, name)
        if owner is None:
            return
        uid = owner["metadata"]["uid"]
        for dep_resource, dependent in self._store.dependents_of(uid):
            refs = dependent["metadata"].get("ownerReferences") or []
            dependent["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
            if not dependent["metadata"]["ownerReferences"]:
                del dependent["metadata"]["ownerReferences"]
            self._store.update(dep_resource, dependent)
        owner["metadata"]["finalizers"] = [f for f in owner["metadata"].get("finalizers") or [] if f != _ORPHAN]
        self._store.update(resource, owner)

    def _remove_if_finalized(self, resource: ResourceKey, namespace: str, name: str) -> None:
        obj = self._store.get(resource, namespace, name)
        if obj is None or not obj["metadata"].get("deletionTimestamp") or obj["metadata"].get("finalizers"):
            return
        if resource == POD.key and obj["metadata"].get("deletionGracePeriodSeconds"):
            return  # the kubelet is still terminating it; pod_terminated() completes the deletion
        if resource == NAMESPACE.key:
            return  # removed by _finish_namespace once empty
        self._store.remove(resource, namespace, name)

    def _delete_key(self, resource: ResourceKey, obj: dict[str, Any], policy: str) -> None:
        rtype = self._registry.storage_type(resource)
        if rtype is not None:
            self.delete(rtype, obj, policy)
        else:
            self._store.remove(resource, *_ident(obj))

    # -- namespaces --------------------------------------------------------------------------

    def _drain_namespace(self, namespace: str) -> None:
        for resource in self._store.resources():
            for obj in self._store.objects(resource, namespace):
                if not obj["metadata"].get("deletionTimestamp"):
                    self._delete_key(resource, obj, "Background")
        self._finish_namespace(namespace)

    def _finish_namespace(self, namespace: str) -> None:
        ns = self._store.get(NAMESPACE.key, "", namespace)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if any(
            self._store.objects(resource, namespace)
            for resource in self._store.resources()
            if resource != NAMESPACE.key
        ):
            return
        self._store.remove(NAMESPACE.key, "", namespace)
