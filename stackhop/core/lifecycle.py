"""Deleting runs and reclaiming their space, without breaking what still needs them.

A run is kept, whatever is asked, while it is unfinished, while a release or promotion relies on
it (the run a promotion's gate read, the run it started, and the latest successful run of a
release's pipeline on each stack the release reached, which the next promotion's gate reads),
and while another kept run reuses its outputs (a resumed run, or a step served from its cache,
points at the origin's files). Deleting a run removes its row and the folders only it owns.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackhop.core.store import RunRecord, RunStore
from stackhop.errors import StackhopError


@dataclass(frozen=True)
class Removal:
    run_id: str
    pipeline: str
    created_at: float
    kept: str = ""
    """Why the run stays ("" when it is, or would be, deleted)."""
    freed_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def references(store: RunStore, releases_dir: Path | None) -> dict[str, str]:
    """Run id -> the release or promotion that relies on it."""
    found: dict[str, str] = {}
    reached: dict[str, set[str]] = {}
    for p in store.all_promotions():
        for gate in p.get("gates", []):
            if gate.get("gate") == "successful_run" and isinstance(gate.get("value"), str):
                found.setdefault(gate["value"], f"promotion of release {p['release_id']} to {p['to']} read it")
        if p.get("run_id"):
            found.setdefault(p["run_id"], f"promotion of release {p['release_id']} to {p['to']} started it")
        if p.get("result") == "promoted":
            reached.setdefault(p["release_id"], set()).add(p["to"])
    manifests = sorted(releases_dir.glob("*.json")) if releases_dir and releases_dir.is_dir() else []
    for path in manifests:
        try:
            manifest = json.loads(path.read_text())
            content = manifest["content"]
            release, digest = manifest["release_id"], content["ir_digest"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for stack in {content.get("source_stack", ""), *reached.get(release, set())}:
            latest = next((r for r in store.list(stack=stack, limit=1000)
                           if r.ir_digest == digest and r.status == "SUCCEEDED"), None)
            if latest is not None:
                found.setdefault(latest.run_id, f"it is release {release}'s latest successful run on stack {stack!r}, "
                                                "which its next promotion's gate reads")
    return found


def reusers(records: list[RunRecord]) -> dict[str, set[str]]:
    """Run id -> the runs that reuse its outputs (resumed from it, or with a step served from its cache)."""
    out: dict[str, set[str]] = {}
    for r in records:
        if r.origin_run_id:
            out.setdefault(r.origin_run_id, set()).add(r.run_id)
        for step in (r.steps or {}).values():
            origin = step.get("from_run") if isinstance(step, dict) else None
            if origin and origin != r.run_id:
                out.setdefault(origin, set()).add(r.run_id)
    return out


def plan(store: RunStore, chosen: list[RunRecord], releases_dir: Path | None) -> list[Removal]:
    """What deleting `chosen` would do: each run deleted, or kept with the reason."""
    from stackhop.core.runs import RunStatus

    refs = references(store, releases_dir)
    every = list(store)
    users = reusers(every)
    going = {r.run_id for r in chosen}
    changed = True
    while changed:  # a run reused by a kept run stays, which may keep the runs it reuses in turn
        changed = False
        for r in chosen:
            if r.run_id not in going:
                continue
            staying = sorted(users.get(r.run_id, set()) - going)
            if (not RunStatus.parse(r.status).terminal or r.run_id in refs or staying):
                going.discard(r.run_id)
                changed = True
    out = []
    for r in chosen:
        kept = ""
        if not RunStatus.parse(r.status).terminal:
            kept = f"it is {r.status.lower()}; cancel it (stackhop cancel {r.run_id}) or let it finish first"
        elif r.run_id in refs:
            kept = refs[r.run_id]
        elif r.run_id not in going:
            kept = f"run {', '.join(sorted(users.get(r.run_id, set()) - going))} reuses its outputs"
        out.append(Removal(r.run_id, r.pipeline, r.created_at, kept))
    return out


def remove(store: RunStore, removals: list[Removal], config: Any = None) -> list[Removal]:
    """Delete the runs `plan` let go: their folders, then their rows. Returns them with the bytes freed."""
    from dataclasses import replace

    from stackhop.core.api import get_run

    done = []
    for r in removals:
        if r.kept:
            done.append(r)
            continue
        handle = get_run(r.run_id, config=config)
        freed = 0
        for prefix in owned_prefixes(handle):
            freed += handle.stack_store.remove_tree(prefix)
        store.delete(r.run_id)
        done.append(replace(r, freed_bytes=freed))
    return done


def owned_prefixes(handle: Any) -> list[str]:
    """The folders only this run writes: its run layout, and its backend's own folders unless it retried another
    run in place (then they are that run's too)."""
    prefixes = [handle.stack_store.run_prefix(handle.pipeline, handle.run_id)]
    if handle.ref.data.get("mechanism") != "retry":
        prefixes += [p for p in handle.reader.run_prefixes(handle.ref) if p not in prefixes]
    return prefixes


def older_than(text: str) -> float:
    """`30d`, `12h`, `90m` or `45s` as seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise StackhopError(f"--older-than {text!r} is not an age; give a number and a unit, e.g. 30d, 12h or 90m.")
    return float(number) * units[unit]


def gc_candidates(store: RunStore, *, older_than_seconds: float, keep_last: int, pipeline: str | None = None
                  ) -> list[RunRecord]:
    """Runs created before the cut-off, except the newest `keep_last` of each pipeline on each stack."""
    cutoff = time.time() - older_than_seconds
    seen: dict[tuple[str, str], int] = {}
    out = []
    for r in store.list(pipeline=pipeline, limit=1_000_000):  # newest first
        key = (r.pipeline, r.stack)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > keep_last and r.created_at < cutoff:
            out.append(r)
    return out
