"""Which kinds the fake serves, and how each is addressed (group, version, plural, scope).

Everything that routes a URL, words an error or answers discovery reads this one table, so a
kind is served completely or not at all. CustomResourceDefinitions add entries at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

__all__ = ["ResourceType", "Registry", "ResourceKey"]

ResourceKey = tuple[str, str]  # (group, plural): objects are stored per key, whatever the served version

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served resource, e.g. jobs in batch/v1."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    log_subresource: bool = False
    tracks_generation: bool = False
    verbs: tuple[str, ...] = _ALL_VERBS
    builtin: bool = True
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> ResourceKey:
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def discovery_entries(self) -> list[dict[str, Any]]:
        """APIResource entries for `/api/v1` or `/apis/{group}/{version}`, subresources included."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.status_subresource:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if self.log_subresource:
            entries.append(
                {
                    "name": f"{self.plural}/log",
                    "singularName": "",
                    "namespaced": True,
                    "kind": self.kind,
                    "verbs": ["get"],
                }
            )
        return entries


POD = ResourceType(
    "",
    "v1",
    "Pod",
    "pods",
    "pod",
    True,
    ("po",),
    ("all",),
    status_subresource=True,
    log_subresource=True,
    tracks_generation=True,
)
CONFIG_MAP = ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",))
SECRET = ResourceType("", "v1", "Secret", "secrets", "secret", True)
SERVICE_ACCOUNT = ResourceType("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, ("sa",))
EVENT = ResourceType("", "v1", "Event", "events", "event", True, ("ev",))
NAMESPACE = ResourceType(
    "",
    "v1",
    "Namespace",
    "namespaces",
    "namespace",
    False,
    ("ns",),
    status_subresource=True,
    verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
)
JOB = ResourceType(
    "batch", "v1", "Job", "jobs", "job", True, (), ("all",), status_subresource=True, tracks_generation=True
)
ROLE = ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", "role", True)
ROLE_BINDING = ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", "rolebinding", True)
CRD = ResourceType(
    "apiextensions.k8s.io",
    "v1",
    "CustomResourceDefinition",
    "customresourcedefinitions",
    "customresourcedefinition",
    False,
    ("crd", "crds"),
    ("api-extensions",),
    status_subresource=True,
    tracks_generation=True,
)

BUILTIN_TYPES: tuple[ResourceType, ...] = (
    POD,
    CONFIG_MAP,
    SECRET,
    SERVICE_ACCOUNT,
    EVENT,
    NAMESPACE,
    JOB,
    ROLE,
    ROLE_BINDING,
    CRD,
)


class Registry:
    """All served resource types; CRDs register and unregister theirs."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN_TYPES) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._group_order: list[str] = []
        for rtype in types:
            self.add(rtype)

    def add(self, rtype: ResourceType) -> None:
        self._types[(rtype.group, rtype.version, rtype.plural)] = rtype
        if rtype.group and rtype.group not in self._group_order:
            self._group_order.append(rtype.group)

    def remove_key(self, key: ResourceKey) -> None:
        for triple in [t for t, r in self._types.items() if r.key == key]:
            del self._types[triple]
        live_groups = {r.group for r in self._types.values()}
        self._group_order = [g for g in self._group_order if g in live_groups]

    def resolve(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def for_api_version(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for rtype in self._types.values():
            if rtype.group == group and rtype.version == version and rtype.kind == kind:
                return rtype
        return None

    def with_kind(self, kind: str) -> list[ResourceType]:
        """Types whose kind is `kind` (or `Kind.group`), one per stored resource."""
        name, _, group = kind.partition(".")
        seen: dict[ResourceKey, ResourceType] = {}
        for rtype in self._types.values():
            if rtype.kind == name and (not group or rtype.group == group):
                seen.setdefault(rtype.key, rtype)
        return list(seen.values())

    def storage_type(self, key: ResourceKey) -> ResourceType | None:
        """Any served version of the resource `key` (they share storage and differ only in apiVersion)."""
        for rtype in self._types.values():
            if rtype.key == key:
                return rtype
        return None

    def versions_of(self, group: str) -> list[str]:
        return sorted({r.version for r in self._types.values() if r.group == group}, key=_version_priority)

    def groups(self) -> list[str]:
        return list(self._group_order)

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [r for r in self._types.values() if r.group == group and r.version == version]

    def namespaced_plurals(self, group: str, version: str) -> set[str]:
        return {r.plural for r in self.in_group_version(group, version) if r.namespaced}


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes version priority: GA before beta before alpha, higher numbers first."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    stage = {None: 0, "beta": 1, "alpha": 2}[match[2]]
    return (stage, -int(match[1]), -int(match[3] or 0))


def crd_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves, one per served version."""
    spec = crd["spec"]
    names = spec["names"]
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        subresources = version.get("subresources") or {}
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                status_subresource="status" in subresources,
                tracks_generation=True,
                builtin=False,
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            )
        )
    return types
