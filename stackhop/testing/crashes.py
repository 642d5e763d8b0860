"""Kill a local run's runner at a random point, then look at what the next reads see.

Shared by the crash specs (tests/test_local_crashes.py) and the 20-kill figure script
(benchmarks/crash_runner.py), so both measure the same thing. A run is started detached, from
a fresh `stackhop run` process, so the runner is nobody's child here (as after a laptop's
terminal closes); `start="api"` starts it with `run(wait=False)` from this process instead,
which leaves the killed runner a zombie of ours until reaped. Each step writes its artifact in
chunks and starts a `sleep` of its own, so a kill lands mid-write as often as between steps,
and an orphan would be visible.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PIPELINE = '''
import subprocess, time
from stackhop import Dataset, Input, Output, pipeline, step

CHUNK = bytes(range(256)) * 256


def _write(path, chunks):
    subprocess.Popen(["sleep", "60"])
    with open(path, "wb") as f:
        for _ in range(chunks):
            f.write(CHUNK)
            f.flush()
            time.sleep(0.03)


@step
def produce(data: Output[Dataset], chunks: int = 40) -> int:
    _write(data.path, chunks)
    return chunks


@step
def relay(src: Input[Dataset], data: Output[Dataset], chunks: int) -> int:
    assert open(src.path, "rb").read() == CHUNK * chunks, "an incomplete input"
    _write(data.path, chunks)
    return chunks


@pipeline
def crashy(chunks: int = 40):
    a = produce(chunks=chunks).set_caching(False)
    b = relay(src=a.outputs["data"], chunks=a.output).set_caching(False)
    relay(src=b.outputs["data"], chunks=b.output).set_caching(False)
'''

DETECT_SECONDS = 5.0
ORPHAN_SECONDS = 5.0


@dataclass
class Outcome:
    run_id: str
    pid: int
    delay: float
    detected_s: float | None = None
    reader: str = ""
    readers: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    orphans: list[str] = field(default_factory=list)
    left_without_reader: list[str] | None = None
    """With `wait_first`: what of the run was still alive 2 s after the kill, before anything read it."""
    half_artifacts: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.detected_s is not None and self.detected_s <= DETECT_SECONDS and not self.orphans
                and not self.left_without_reader
                and not self.half_artifacts and not self.temp_files
                and all(v == "FAILED" for v in self.readers.values())
                and all(f"the runner process (pid {self.pid}) died" in m for m in self.messages.values()))


def make_project(root: Path, launcher: str = "fork") -> Path:
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    config = {"default_stack": "dev", "stacks": {"dev": {"adapter": "local", "settings": {"launcher": launcher}}}}
    (root / "stackhop.yaml").write_text(yaml.safe_dump(config))
    (root / "crash_pipe.py").write_text(textwrap.dedent(PIPELINE))
    return root


def start(root: Path, how: str = "cli") -> tuple[str, int]:
    """Start the run detached; return (run id, runner pid)."""
    from stackhop.core.api import get_run

    if how == "cli":
        out = subprocess.run([sys.executable, "-m", "stackhop", "run", "crash_pipe.py", "--detach"], cwd=root,
                             capture_output=True, text=True, check=True).stdout
        run_id = out.strip().splitlines()[-1]
    else:
        import stackhop
        from stackhop.core.source import import_file

        sys.modules.pop("crash_pipe", None)
        run_id = stackhop.run(import_file(root / "crash_pipe.py").crashy, wait=False, progress=False).run_id
    return run_id, int(get_run(run_id).ref.data["pid"])


def _cli(*args: str) -> str:
    from stackhop.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(list(args))
    return out.getvalue()


def read(reader: str, run_id: str) -> tuple[str, str]:
    """(status, message) as one reader reports it."""
    if reader == "runs list":
        rec = next(r for r in json.loads(_cli("runs", "list", "--json", "-n", "1000")) if r["run_id"] == run_id)
        return rec["status"], rec["message"]
    if reader == "runs show":
        doc = json.loads(_cli("runs", "show", run_id, "--json"))
        return doc["state"]["status"], doc["state"]["message"]
    from stackhop.core.api import get_run

    handle = get_run(run_id)
    return handle.status.value, handle.state().message


READERS = ("runs list", "runs show", "RunHandle.status")


def run_processes(run_id: str) -> list[str]:
    from stackhop.adapters.local.lifeline import run_processes as live

    described = []
    for pid in live(run_id):
        try:
            described.append(f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
        except OSError:
            pass
    return described


def half_artifacts(run_id: str) -> list[str]:
    """Visible artifacts whose bytes are not the ones their step committed, or outputs of unrecorded steps."""
    from stackhop.core.api import get_run
    from stackhop.core.artifacts import ArtifactStore, content_digest

    handle = get_run(run_id)
    steps = handle.steps()
    bad = []
    for art in handle.artifacts():
        if not steps[art.step].status.ok:
            bad.append(f"{art.step}.{art.output}: listed, but the step is {steps[art.step].status.value}")
        if art.digest is None:
            continue
        path = ArtifactStore.local_path(art.uri)
        if not os.path.exists(path) or content_digest(path) != art.digest:
            bad.append(f"{art.step}.{art.output}: {art.uri} is not what the step committed")
    return bad


def temp_files(root: Path, run_id: str) -> list[str]:
    return [str(p) for p in (root / ".stackhop" / "artifacts").glob(f"*/{run_id}/**/*") if ".tmp-" in p.name]


def _wait_gone(run_id: str, until: float) -> list[str]:
    while run_processes(run_id) and time.time() < until:
        time.sleep(0.02)
    return run_processes(run_id)


def kill_once(root: Path, rng: random.Random, *, how: str = "cli", max_delay: float = 2.0,
              wait_first: bool | None = None) -> Outcome:
    """Start a run, SIGKILL its runner after a random delay, and check every reader, processes and files.

    The first read comes at once, or (`wait_first`, by default a coin toss) only after the run's
    processes had 2 s to die on their own, which shows they die with the runner and not because
    a reader cleaned up after them."""
    run_id, pid = start(root, how)
    outcome = Outcome(run_id, pid, round(rng.uniform(0.0, max_delay), 3))
    wait_first = rng.random() < 0.5 if wait_first is None else wait_first
    time.sleep(outcome.delay)
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    if wait_first:
        outcome.left_without_reader = _wait_gone(run_id, killed + 2.0)
    first = rng.choice(READERS)
    outcome.reader = first
    while time.time() - killed < DETECT_SECONDS:
        status, message = read(first, run_id)
        if status == "FAILED":
            outcome.detected_s = round(time.time() - killed, 3)
            break
        time.sleep(0.02)
    for reader in READERS:
        outcome.readers[reader], outcome.messages[reader] = read(reader, run_id)
    outcome.orphans = _wait_gone(run_id, killed + ORPHAN_SECONDS)
    outcome.half_artifacts = half_artifacts(run_id)
    outcome.temp_files = temp_files(root, run_id)
    return outcome


def figures(outcomes: list[Outcome]) -> dict[str, Any]:
    detected = [o.detected_s for o in outcomes if o.detected_s is not None]
    return {
        "kills": len(outcomes),
        "failed_within_5s": sum(1 for o in outcomes if o.detected_s is not None and o.detected_s <= DETECT_SECONDS),
        "all_readers_agree": sum(1 for o in outcomes if all(v == "FAILED" for v in o.readers.values())),
        "max_detection_s": max(detected, default=None),
        "orphans": sum(len(o.orphans) for o in outcomes),
        "left_alive_without_a_reader": sum(len(o.left_without_reader or []) for o in outcomes),
        "half_artifacts": sum(len(o.half_artifacts) for o in outcomes),
        "temp_files_left": sum(len(o.temp_files) for o in outcomes),
        "ok": sum(1 for o in outcomes if o.ok),
    }
