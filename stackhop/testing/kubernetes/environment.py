"""What a container process sees: its env (Kubernetes order and expansion) and its argv.

Kubernetes builds a container's environment from `envFrom` then `env`, resolves Secret and
ConfigMap references at start time (a missing one is CreateContainerConfigError, retried until
it appears), fills field and resource references from the pod, and expands `$(VAR)` in env
values, command and args. Steps depend on every one of these, so the fake applies them exactly.
"""

from __future__ import annotations

import base64
import math
import re
from decimal import Decimal
from typing import Any, Mapping

from .quantity import parse_quantity
from .resources import CONFIG_MAP, SECRET
from .store import Store

__all__ = ["ConfigError", "CreateError", "ContainerEnvironment", "expand", "NODE_NAME", "HOST_IP"]

NODE_NAME = "fake-node"
HOST_IP = "127.0.0.1"
# The fake node's allocatable resources: what a resourceFieldRef to an unset limit reports.
_NODE_ALLOCATABLE = {"cpu": Decimal(4), "memory": Decimal(16 * 2**30), "ephemeral-storage": Decimal(100 * 2**30)}
_EXPANSION = re.compile(r"\$\$|\$\(([^)]*)\)")


class ConfigError(Exception):
    """A referenced Secret/ConfigMap (or key) is missing: CreateContainerConfigError."""


class CreateError(Exception):
    """The container cannot be created at all: CreateContainerError."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: known vars are replaced, `$$` escapes, unknown refs stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _EXPANSION.sub(replace, text)


class ContainerEnvironment:
    """Resolves env and argv for the containers of one pod, reading the store at start time."""

    def __init__(self, store: Store, pod: dict[str, Any]) -> None:
        self._store = store
        self._pod = pod
        self._namespace: str = pod["metadata"]["namespace"]

    def resolve(self, container: dict[str, Any]) -> dict[str, str]:
        """The container's own environment, in Kubernetes order (envFrom, then env)."""
        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            kind = "Secret" if source.get("secretRef") is not None else "ConfigMap"
            ref = source.get("secretRef") or source.get("configMapRef") or {}
            obj = self._lookup(kind, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{ref.get("name", "")}" not found')
            for key, data in self._data(kind, obj).items():
                env[source.get("prefix", "") + key] = data
        for var in container.get("env") or []:
            source = var.get("valueFrom")
            if source is None:
                env[var["name"]] = expand(var.get("value", ""), env)
                continue
            value: str | None
            if source.get("secretKeyRef") is not None:
                value = self._key_ref("Secret", source["secretKeyRef"])
            elif source.get("configMapKeyRef") is not None:
                value = self._key_ref("ConfigMap", source["configMapKeyRef"])
            elif source.get("fieldRef") is not None:
                value = self._field_ref(source["fieldRef"]["fieldPath"])
            elif source.get("resourceFieldRef") is not None:
                value = self._resource_ref(source["resourceFieldRef"], container)
            else:
                raise CreateError(f"env var {var['name']}: unsupported valueFrom source")
            if value is not None:
                env[var["name"]] = value
        return env

    @staticmethod
    def argv(container: dict[str, Any], env: Mapping[str, str]) -> list[str]:
        """`command` + `args` after expansion; without a command the image entrypoint would run."""
        command = [expand(part, env) for part in container.get("command") or []]
        args = [expand(part, env) for part in container.get("args") or []]
        if not command:
            raise CreateError(
                "FakeKubernetes runs containers as local processes and cannot run an image's entrypoint: "
                "the container needs a `command`"
            )
        return command + args

    def _lookup(self, kind: str, name: str) -> dict[str, Any] | None:
        rtype = SECRET if kind == "Secret" else CONFIG_MAP
        return self._store.get(rtype.key, self._namespace, name)

    @staticmethod
    def _data(kind: str, obj: dict[str, Any]) -> dict[str, str]:
        if kind == "Secret":
            return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        data = dict(obj.get("data") or {})
        for key, value in (obj.get("binaryData") or {}).items():
            data[key] = base64.b64decode(value).decode(errors="replace")
        return data

    def _key_ref(self, kind: str, ref: dict[str, Any]) -> str | None:
        name, key, optional = ref.get("name", ""), ref["key"], bool(ref.get("optional"))
        obj = self._lookup(kind, name)
        if obj is None:
            if optional:
                return None
            raise ConfigError(f'{kind.lower()} "{name}" not found')
        data = self._data(kind, obj)
        if key not in data:
            if optional:
                return None
            raise ConfigError(f"couldn't find key {key} in {kind} {self._namespace}/{name}")
        return data[key]

    def _field_ref(self, path: str) -> str:
        meta = self._pod["metadata"]
        subscript = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
        if subscript:
            return str((meta.get(subscript[1]) or {}).get(subscript[2], ""))
        if path in ("metadata.labels", "metadata.annotations"):
            items = meta.get(path.split(".")[1]) or {}
            return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
        values = {
            "metadata.name": meta["name"],
            "metadata.namespace": meta["namespace"],
            "metadata.uid": meta["uid"],
            "spec.nodeName": NODE_NAME,
            "spec.serviceAccountName": self._pod["spec"].get("serviceAccountName", ""),
            "status.hostIP": HOST_IP,
            "status.hostIPs": HOST_IP,
            "status.podIP": HOST_IP,
            "status.podIPs": HOST_IP,
        }
        return str(values.get(path, ""))

    def _resource_ref(self, ref: dict[str, Any], container: dict[str, Any]) -> str:
        target = container
        if ref.get("containerName"):
            containers = self._pod["spec"].get("containers") or []
            target = next((c for c in containers if c.get("name") == ref["containerName"]), container)
        kind, resource = ref["resource"].split(".", 1)
        raw = ((target.get("resources") or {}).get(kind) or {}).get(resource)
        if raw is None:
            value = _NODE_ALLOCATABLE.get(resource, Decimal(0)) if kind == "limits" else Decimal(0)
        else:
            value = parse_quantity(raw)
        divisor = parse_quantity(ref.get("divisor") or "1") or Decimal(1)
        return str(math.ceil(value / divisor))
