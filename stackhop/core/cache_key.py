"""What a step's cache key is made of, and what changed since the last entry for the same step.

The key covers the step's code (every part its code reaches, see `code_fingerprint`), its
inputs (values, or the content digests of artifacts), image, environment and declared
outputs. The parts are kept beside each entry, so a miss can say which part changed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from stackhop.core.canonical import canonical_json

SCALARS = ("str", "int", "float", "bool", "list", "dict")
VERSION = 2


def material(step: dict[str, Any], settings: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """The key's parts: plain JSON, compared part by part when explaining a miss."""
    python = step.get("python")
    if python:
        # The function by name, not by module: the same code run as a script (`__main__`) or
        # imported (`stackhop run`) is the same step, and shares cache entries.
        body: Any = {"call": python["qualname"], "code": dict(python.get("code_parts") or {})}
        if python.get("packages"):
            body["packages"] = sorted(python["packages"])
    else:
        body = step.get("container") or step.get("resource") or step.get("fail")
    return {
        "v": VERSION,
        "kind": step["kind"],
        "body": body,
        "image": settings.get("image"),
        "env": dict(settings.get("env") or {}),
        "inputs": inputs,
        "outputs": step["outputs"],
    }


def key_of(parts: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


def input_part(spec: dict[str, Any], value: Any) -> dict[str, Any]:
    if spec["type"] in SCALARS:
        return {"value": value}
    if spec.get("is_list"):
        return {"digests": [v.get("digest") for v in value]}
    return {"digest": value.get("digest")}


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Why the key differs from the last entry's, one short phrase per changed part."""
    if not old:
        return ["no earlier cache entry for this step"]
    out: list[str] = []
    if old.get("v") != new.get("v"):
        return ["the cache key format changed (stackhop was upgraded)"]
    ob, nb = old.get("body") or {}, new.get("body") or {}
    if new["kind"] == "python" and isinstance(ob, dict) and isinstance(nb, dict) and "code" in nb:
        if ob.get("call") != nb.get("call"):
            out.append(f"function: {ob.get('call')} -> {nb.get('call')}")
        before, after = ob.get("code") or {}, nb.get("code") or {}
        for label in sorted(set(before) | set(after)):
            if label not in before:
                out.append(f"code added: {label}")
            elif label not in after:
                out.append(f"code removed: {label}")
            elif before[label] != after[label]:
                out.append(f"code changed: {label}")
        if ob.get("packages") != nb.get("packages"):
            out.append(f"packages_to_install: {ob.get('packages') or []} -> {nb.get('packages') or []}")
    elif ob != nb:
        out.append(f"{new['kind']} definition changed")
    if old.get("image") != new.get("image"):
        out.append(f"image: {old.get('image')} -> {new.get('image')}")
    oe, ne = old.get("env") or {}, new.get("env") or {}
    for name in sorted(set(oe) | set(ne)):
        if oe.get(name) != ne.get(name):
            out.append(f"env {name} changed")
    oi, ni = old.get("inputs") or {}, new.get("inputs") or {}
    for name in sorted(set(oi) | set(ni)):
        a, b = oi.get(name), ni.get(name)
        if a == b:
            continue
        if a and b and "value" in a and "value" in b:
            out.append(f"input {name}: {_short(a['value'])} -> {_short(b['value'])}")
        elif a and b and "digest" in a and "digest" in b:
            out.append(f"input {name}: new content ({_short(a['digest'])} -> {_short(b['digest'])})")
        else:
            out.append(f"input {name} changed")
    if old.get("outputs") != new.get("outputs"):
        out.append("declared outputs changed")
    return out or ["the key differs"]


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) or not value.startswith("sha256:") else value[:19] + "…"
    return text if len(text) <= 40 else text[:39] + "…"


def explain_code(ir: Any) -> dict[str, str]:
    """Per Python step, one line naming what its cache key's code part covers."""
    out: dict[str, str] = {}
    for s in ir.steps:
        if s.python is None:
            continue
        labels = sorted(s.python.code_parts, key=lambda label: label.startswith(("import ", "from ")))  # code first
        how = "by value from __main__" if s.python.by_value else f"module {s.python.module}"
        shown = ", ".join(labels[:8]) + (f", and {len(labels) - 8} more" if len(labels) > 8 else "")
        out[s.name] = f"code ({how}); its cache key covers: {shown or 'the function alone'}"
    return out
