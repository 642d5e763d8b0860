"""Deterministic DNS-1123 names for the objects a run creates.

A Job's name is also the value of its pods' `job-name` label, so it must stay within 63
characters after the run token and loop index are appended. Names that had to be shortened
or cleaned carry a short hash of the original, so two steps never share one.
"""

from __future__ import annotations

import hashlib
import re

MAX = 63
RUN_TOKEN = 8
BASE_MAX = 40


def _short_hash(text: str, n: int = 6) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def dns_label(text: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return re.sub(r"-{2,}", "-", cleaned) or "x"


def job_bases(pipeline: str, steps: list[str]) -> dict[str, str]:
    """step -> base name (≤ 40 chars); the run token and loop index are appended at submit."""
    out: dict[str, str] = {}
    for step in steps:
        raw = f"{pipeline}-{step}"
        base = dns_label(raw)
        if base != raw or len(base) > BASE_MAX:
            base = base[: BASE_MAX - 7].rstrip("-") + "-" + _short_hash(raw)
        out[step] = base
    seen: dict[str, list[str]] = {}
    for step, base in out.items():
        seen.setdefault(base, []).append(step)
    for base, owners in seen.items():
        if len(owners) > 1:
            for step in owners:
                out[step] = base[: BASE_MAX - 7].rstrip("-") + "-" + _short_hash(f"{pipeline}-{step}")
    return out


def run_token(run_id: str) -> str:
    return _short_hash(run_id, RUN_TOKEN)


def bound_name(base: str, run_id: str, index: tuple[int, ...] = ()) -> str:
    name = f"{base}-{run_token(run_id)}" + "".join(f"-{i}" for i in index)
    if len(name) > MAX:
        raise ValueError(f"{name!r} is longer than {MAX} characters; use fewer nested loop levels")
    return name


def label_value(text: str) -> str:
    """A valid label value (≤ 63, alphanumerics at both ends) that stays recognisable."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    if cleaned == text and len(text) <= MAX:
        return text
    return cleaned[: MAX - 7].rstrip("-_.") + "-" + _short_hash(text)
