"""Deleting runs and reclaiming their space, without breaking what still needs them.

A run is kept, whatever is asked, while it is unfinished, while something outside the run store's
runs relies on it (the caller says what: releases and promotions, see `promotion.release.relied_on`),
and while another kept run reuses its outputs (a resumed run, or a step served from its cache,
points at the origin's files). Deleting a run removes its row and the folders only it owns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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


def plan(store: RunStore, chosen: list[RunRecord], relied_on: dict[str, str]) -> list[Removal]:
    """What deleting `chosen` would do: each run deleted, or kept with the reason. `relied_on`: run id -> what
    still needs it (`stackhop.promotion.release.relied_on`: releases and promotions)."""
    from stackhop.core.runs import RunStatus

    refs = relied_on
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
            try:
                freed += handle.stack_store.remove_tree(prefix)
            except Exception as exc:  # a permission or network error of the store: the record stays
                raise StackhopError(f"run {r.run_id}: deleting its files under {prefix} failed ({type(exc).__name__}: "
                                    f"{exc}); its record is kept, so fix access to the store and delete it again.") from None
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
