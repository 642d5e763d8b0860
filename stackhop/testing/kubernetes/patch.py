"""The four PATCH dialects (merge, strategic merge, JSON patch, server-side apply) and managedFields.

Which dialect a client sends changes the result: a JSON merge patch replaces a whole
`containers` list while a strategic merge patch merges it by container name, and server-side
apply also removes fields its manager stopped applying. Getting these right means a patch that
works here works against a cluster.
"""

from __future__ import annotations

import copy
import json
from typing import Any

__all__ = [
    "PatchError",
    "merge_patch",
    "strategic_merge_patch",
    "json_patch",
    "apply_configuration",
    "record_managed_fields",
]

# patchMergeKey of the list fields the built-in kinds served here declare (field name -> key).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "secrets": "name",
    "resourceClaims": "name",
}
# Lists of scalars with patchStrategy "merge": patched as sets.
_MERGE_SETS = {"finalizers"}


class PatchError(ValueError):
    """The patch cannot be applied; `code` is the HTTP status the server answers with."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


# -- JSON merge patch (RFC 7386) -----------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# -- strategic merge patch -----------------------------------------------------------------


def _merge_keyed_list(target: list[Any], patch: list[Any], key: str, directives: bool) -> list[Any]:
    result = copy.deepcopy(target)
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {key}", 422)
        position = next(
            (i for i, cur in enumerate(result) if isinstance(cur, dict) and cur.get(key) == item[key]), None
        )
        if directives and item.get("$patch") == "delete":
            if position is not None:
                del result[position]
            continue
        if position is None:
            result.append(_strategic(None, item, directives))
        else:
            result[position] = _strategic(result[position], item, directives)
    return result


def _strategic(target: Any, patch: Any, directives: bool = True) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if directives and patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys") if directives else None
    for key, value in patch.items():
        if directives and key.startswith("$"):
            if key.startswith("$deleteFromPrimitiveList/"):
                field = key.split("/", 1)[1]
                result[field] = [v for v in result.get(field) or [] if v not in value]
            elif key not in ("$patch", "$retainKeys") and not key.startswith("$setElementOrder/"):
                raise PatchError(f"unknown patch directive {key!r}", 400)
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _merge_keyed_list(result[key], value, _MERGE_KEYS[key], directives)
        elif isinstance(value, list) and key in _MERGE_SETS and isinstance(result.get(key), list):
            result[key] = result[key] + [v for v in value if v not in result[key]]
        elif isinstance(value, list):
            result[key] = [_strategic(None, item, directives) if isinstance(item, dict) else item for item in value]
        else:
            result[key] = _strategic(result.get(key), value, directives)
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def strategic_merge_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object", 400)
    result: dict[str, Any] = _strategic(target, patch)
    return result


# -- JSON patch (RFC 6902) -----------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"array index {index} out of bounds")
    return index


def _walk(doc: Any, tokens: list[str], path: str) -> Any:
    current = doc
    for token in tokens:
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list):
            current = current[_index(current, token, False)]
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return current


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    return _walk(doc, parts[:-1], path)


def _get(doc: Any, path: str) -> Any:
    return _walk(doc, _pointer(path), path)


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return copy.deepcopy(value)
    parent = _parent(doc, parts, path)
    if isinstance(parent, dict):
        parent[parts[-1]] = copy.deepcopy(value)
    elif isinstance(parent, list):
        parent.insert(_index(parent, parts[-1], True), copy.deepcopy(value))
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, parts, path)
    if isinstance(parent, dict) and parts[-1] in parent:
        del parent[parts[-1]]
    elif isinstance(parent, list):
        del parent[_index(parent, parts[-1], False)]
    else:
        raise PatchError(f"unable to remove nonexistent key: {parts[-1]}: missing value")
    return doc


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations", 400)
    doc = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"invalid JSON patch operation {operation!r}", 400)
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"{op} operation does not have a value", 400)
        if op == "add":
            doc = _add(doc, path, operation["value"])
        elif op == "remove":
            doc = _remove(doc, path)
        elif op == "replace":
            _get(doc, path)
            doc = (
                _add(_remove(doc, path), path, operation["value"])
                if _pointer(path)
                else copy.deepcopy(operation["value"])
            )
        elif op in ("move", "copy"):
            if "from" not in operation:
                raise PatchError(f"{op} operation does not have a from", 400)
            value = copy.deepcopy(_get(doc, operation["from"]))
            if op == "move":
                doc = _remove(doc, operation["from"])
            doc = _add(doc, path, value)
        elif op == "test":
            if _get(doc, path) != operation["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"unexpected kind of JSON patch operation: {op!r}", 400)
    if not isinstance(doc, dict):
        raise PatchError("the patched document must remain a JSON object")
    return doc


# -- server-side apply ---------------------------------------------------------------------


def _drop_unapplied(live: Any, previous: Any, current: Any) -> None:
    """Remove from `live` what the manager applied last time but no longer applies."""
    if not (isinstance(live, dict) and isinstance(previous, dict)):
        return
    current = current if isinstance(current, dict) else {}
    for key, before in previous.items():
        if key not in current:
            live.pop(key, None)
            continue
        now = current[key]
        if (
            key in _MERGE_KEYS
            and isinstance(before, list)
            and isinstance(now, list)
            and isinstance(live.get(key), list)
        ):
            merge_key = _MERGE_KEYS[key]
            kept = {item.get(merge_key) for item in now if isinstance(item, dict)}
            dropped = {item.get(merge_key) for item in before if isinstance(item, dict)} - kept
            live[key] = [item for item in live[key] if not (isinstance(item, dict) and item.get(merge_key) in dropped)]
            for item in live[key]:
                if not isinstance(item, dict):
                    continue
                old = next((b for b in before if isinstance(b, dict) and b.get(merge_key) == item.get(merge_key)), None)
                new = next((n for n in now if isinstance(n, dict) and n.get(merge_key) == item.get(merge_key)), None)
                _drop_unapplied(item, old, new)
        elif isinstance(before, dict):
            _drop_unapplied(live.get(key), before, now)


def apply_configuration(
    live: dict[str, Any] | None, applied: dict[str, Any], previous: dict[str, Any] | None
) -> dict[str, Any]:
    """Server-side apply without conflict detection: drop fields the manager no longer applies,
    then merge the applied configuration (lists with merge keys are merged, others replaced)."""
    base = copy.deepcopy(live) if live else {}
    if previous:
        protected = {k: base.get("metadata", {}).get(k) for k in ("name", "namespace", "uid")}
        _drop_unapplied(base, previous, applied)
        base.setdefault("metadata", {}).update({k: v for k, v in protected.items() if v is not None})
    result: dict[str, Any] = _strategic(base, applied, directives=False)
    return result


# -- managedFields -------------------------------------------------------------------------

_SERVER_METADATA = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "generateName",
}


def _fields(value: Any, field: str | None = None) -> dict[str, Any]:
    if isinstance(value, dict):
        return {f"f:{k}": _fields(v, k) for k, v in value.items()}
    if isinstance(value, list) and field in _MERGE_KEYS:
        key = _MERGE_KEYS[field]
        out: dict[str, Any] = {}
        for item in value:
            if isinstance(item, dict) and key in item:
                out[f"k:{json.dumps({key: item[key]}, separators=(',', ':'))}"] = {".": {}, **_fields(item)}
        return out
    if isinstance(value, list) and field in _MERGE_SETS:
        return {f"v:{json.dumps(v)}": {} for v in value}
    return {}


def _fieldset(source: dict[str, Any], subresource: str | None) -> dict[str, Any]:
    if subresource == "status":
        return {"f:status": _fields(source.get("status"))} if "status" in source else {}
    body = {k: v for k, v in source.items() if k not in ("apiVersion", "kind", "status")}
    meta = {k: v for k, v in (body.pop("metadata", None) or {}).items() if k not in _SERVER_METADATA}
    fields = _fields(body)
    if meta:
        fields["f:metadata"] = _fields(meta)
    return fields


def _union(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for key, value in b.items():
        out[key] = _union(out.get(key) or {}, value)
    return out


def record_managed_fields(
    obj: dict[str, Any],
    manager: str,
    operation: str,
    source: dict[str, Any],
    timestamp: str,
    subresource: str | None = None,
) -> None:
    """Add or update the managedFields entry of (manager, operation, subresource).

    Field sets are approximate (what the request set; no ownership transfer between managers).
    """
    fields = _fieldset(source, subresource)
    if not fields:
        return
    meta = obj.setdefault("metadata", {})
    entries = meta.setdefault("managedFields", [])
    for entry in entries:
        if (
            entry.get("manager") == manager
            and entry.get("operation") == operation
            and entry.get("subresource") == subresource
        ):
            entry["fieldsV1"] = fields if operation == "Apply" else _union(entry.get("fieldsV1") or {}, fields)
            entry["time"] = timestamp
            entry["apiVersion"] = obj.get("apiVersion", "")
            return
    entry = {
        "manager": manager,
        "operation": operation,
        "apiVersion": obj.get("apiVersion", ""),
        "time": timestamp,
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    if subresource:
        entry["subresource"] = subresource
    entries.append(entry)
