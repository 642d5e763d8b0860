"""Whether a local runner is alive, and how its processes die with it.

A pid alone cannot say a runner is alive: after it dies the kernel may hand the pid to another
process. The runner therefore records its pid with its start time (field 22 of
/proc/<pid>/stat, in clock ticks since boot), and a runner is alive only while a process with
both exists and is not a zombie.

The death chain, so nothing of a run outlives its runner however the runner dies:

- runner -> fork server: the fork server asks for SIGTERM when its parent dies
  (PR_SET_PDEATHSIG), and also treats EOF on its stdin, a pipe only the runner writes, as
  the same news. Either way it SIGKILLs every step's process group, so what a step started
  dies too, then exits. The pipe covers what PDEATHSIG cannot: it fires on the death of the
  parent *thread*, and the kernel closes the pipe only when the whole runner is gone.
- fork server -> step: each forked step asks for SIGKILL when the fork server dies; the
  server is single-threaded, so its parent thread is the process. `launcher: spawn` steps
  are forked by the same server and exec a fresh interpreter, which keeps the setting.

Each setting is followed by a check that the parent is still the expected one, which closes
the gap between fork and prctl in which the parent may already have died.
"""

from __future__ import annotations

import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_RUN_MARKER = "STACKHOP_RUN_ID"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None when there is no such process or no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] == b"Z":
        return None
    return int(fields[19])


def has_proc() -> bool:
    return os.path.isdir("/proc/self")


def alive(pid: int, started: int | None) -> bool:
    """True while the process that had `pid` at `started` still runs (a zombie does not)."""
    if has_proc():
        now = start_time(pid)
        return now is not None and (started is None or now == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """Have the kernel send `sig` to this process when `parent` dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def run_processes(run_id: str) -> list[int]:
    """Live processes that carry the run's id in their environment: the runner puts it in its own, so
    the fork server, the steps and whatever they started all inherit it."""
    if not has_proc():
        return []
    marker = f"{_RUN_MARKER}={run_id}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if marker in env and start_time(int(name)) is not None:
            found.append(int(name))
    return found


def kill_leftovers(run_id: str) -> list[int]:
    """SIGKILL what is left of a dead run (a process a spawned step started); returns the pids killed."""
    killed = run_processes(run_id)
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return killed
