"""A local run whose runner died: found by the next read, reported as FAILED everywhere, cleaned up.

Every reader (`RunHandle.status`, `stackhop runs show`, `stackhop runs list`) passes the run's
state.json through `settle`. The runner writes its final state before it exits, so a state
that is still not final while the runner (pid and start time, on this host) is gone means it
died. The first reader to see that marks the run FAILED with "the runner process (pid N)
died", marks the steps it was running FAILED and the rest SKIPPED, cleans up
(below) and writes the result to state.json, so every later read, from any process, agrees.

What a killed run leaves, the one rule for late commits: a step's outputs belong to the run
only once the runner has recorded the step SUCCEEDED or CACHED. A step commits each artifact
by an atomic rename of a `*.tmp-PID-*` file and writes outputs.json last, and its process dies
with the runner (see `lifeline`), so normally nothing commits after the runner is gone. A step
that still committed in the instant between the two deaths is rolled back: its outputs.json and
the artifacts it names in the run's prefix are removed, and listings show only outputs of
steps the run records as SUCCEEDED or CACHED. Cleaning up also kills any process left with the
run's id in its environment and removes the temp files of killed writes, which readers never
list in the first place.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from typing import Any

from stackhop.adapters.local import lifeline
from stackhop.core.artifacts import META, ArtifactStore
from stackhop.core.run_files import read_state, run_prefix_of
from stackhop.errors import StackhopError

FINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
OK = ("SUCCEEDED", "CACHED")
DONE = ("SUCCEEDED", "CACHED", "FAILED", "SKIPPED", "CANCELLED")
_TEMP = re.compile(r"\.(tmp-\d+(-[0-9a-f]+)?|old-[0-9a-f]{8})$")


def runner(state: dict[str, Any] | None, ref: dict[str, Any]) -> tuple[int, bool] | None:
    """(pid, alive) of the run's runner; None when this host cannot tell (no pid yet, another host)."""
    source = state if state and state.get("pid") else ref
    pid = source.get("pid")
    host = source.get("host")
    if not pid or (host and host != socket.gethostname()):
        return None
    return int(pid), lifeline.alive(int(pid), source.get("pid_start"))


def settle(state_uri: str, ref: dict[str, Any]) -> dict[str, Any] | None:
    """The run's state.json content, marked FAILED (and persisted) first if its runner died."""
    state = read_state(state_uri)
    if state is not None and state.get("status") in FINAL:
        return state
    found = runner(state, ref)
    if found is None or found[1]:
        return state
    pid = found[0]
    state = read_state(state_uri)
    if state is not None and state.get("status") in FINAL:
        return state
    prefix = run_prefix_of(state_uri)
    failed = failed_state(state, pid, prefix)
    clean_up(prefix, failed)
    ArtifactStore.for_uri(state_uri).write_json(state_uri, failed)
    return failed


def failed_state(state: dict[str, Any] | None, pid: int, prefix: str) -> dict[str, Any]:
    died = f"the runner process (pid {pid}) died"
    now = time.time()
    if state is None:
        return {"status": "FAILED", "native": "runner_died", "pid": pid, "order": [], "steps": {},
                "message": f"{died} before it started the run; {_log_tail(prefix)}",
                "started_at": None, "finished_at": now}
    steps = {key: dict(s) for key, s in state.get("steps", {}).items()}
    running = [key for key, s in steps.items() if s.get("status") not in DONE and s.get("attempts")]
    for key, s in steps.items():
        if s.get("status") in DONE:
            continue
        if key in running:
            s.update(status="FAILED", native="runner_died", message=f"{died} while this step ran", finished_at=now)
        else:
            s.update(status="SKIPPED", native="runner_died", message=f"{died} before it recorded this step as started", finished_at=now)
    where = f" while step {', '.join(running)} ran" if len(running) == 1 else (
        f" while steps {', '.join(running)} ran" if running else "")
    return {**state, "status": "FAILED", "native": "runner_died", "steps": steps, "finished_at": now,
            "message": f"{died}{where}."}


def clean_up(prefix: str, state: dict[str, Any]) -> None:
    """Kill what is left of the run, roll back commits the runner never recorded, remove temp files."""
    run_id = prefix.rstrip("/").rsplit("/", 1)[-1]
    lifeline.kill_leftovers(run_id)
    deadline = time.time() + 2.0
    while lifeline.run_processes(run_id) and time.time() < deadline:
        time.sleep(0.02)
    store = ArtifactStore.for_uri(prefix)
    if not store.is_local:
        return
    recorded = {key for key, s in state.get("steps", {}).items() if s.get("status") in OK}
    for uri, record in store.list_json(prefix, "outputs.json"):
        if _instance_key(prefix, uri) not in recorded:
            for art in (record.get("artifacts") or {}).values():
                if str(art.get("uri", "")).startswith(prefix + "/"):
                    _remove(store.local_path(art["uri"]))
            _remove(store.local_path(uri))
    remove_temp_files(store.local_path(prefix))


def remove_temp_files(base: str) -> list[str]:
    """Delete the `*.tmp-PID-*` files and `*.old-*` folders writes leave when they are killed."""
    removed = []
    for dirpath, dirnames, filenames in os.walk(base):
        for name in [*filenames, *dirnames]:
            if _TEMP.search(name):
                _remove(os.path.join(dirpath, name))
                removed.append(os.path.join(dirpath, name))
        dirnames[:] = [d for d in dirnames if not _TEMP.search(d)]
    return removed


def recorded_steps(state: dict[str, Any] | None) -> set[str] | None:
    """Steps whose outputs count: for a finished run those it records SUCCEEDED or CACHED; None while it runs."""
    if state is None or state.get("status") not in FINAL:
        return None
    return {key for key, s in state.get("steps", {}).items() if s.get("status") in OK}


def _instance_key(prefix: str, outputs_uri: str) -> str:
    rel = outputs_uri[len(prefix) + 1:].rsplit(f"/{META}/", 1)[0].split("/")
    return rel[0] + "".join(f"[{i}]" for i in rel[1:])


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _log_tail(prefix: str) -> str:
    uri = f"{prefix}/{META}/runner.log"
    try:
        lines = ArtifactStore.for_uri(uri).read_bytes(uri).decode(errors="replace").strip().splitlines()[-3:]
    except StackhopError:
        return "it wrote no log."
    return f"its log ends: {' | '.join(lines)}" if lines else "its log is empty."
