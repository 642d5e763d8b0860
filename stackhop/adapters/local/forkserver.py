"""A fork server for step processes: import once, fork per step.

Starting a fresh interpreter per step costs ~100 ms before any user code runs; a 100-step
chain would spend most of its time starting Pythons. The fork server imports the entrypoint
(and, best effort, the pipeline's step modules) once, then forks one child per step attempt.
Each child is still a separate process in its own session and process group, with its own
log file, environment and exit code, so isolation, timeouts and cancel work exactly as with
spawned processes. The server stays single-threaded, which is what makes fork safe.

With `launcher: spawn` the server preloads nothing and each child execs a fresh interpreter
(`"exec": true`), so both launchers share one way to start, watch and kill steps.

An emulated attempt sends `"command"`, the argv a compiled document names, which the child execs
in place of the entrypoint.

Protocol (JSON lines): the runner writes {"id", "argv", "env", "cwd", "log", "exec", "command"}; the server
answers {"id", "pid"} when the child starts and {"id", "rc"} when it ends (rc as
subprocess reports it: negative for a signal).

The server and its steps die with the runner (see `lifeline`): EOF on stdin, SIGTERM and the
runner's death all make it SIGKILL every step's process group and exit, so a step whose
runner is gone never gets to commit outputs nobody will record.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
from typing import Any, Callable


def serve(preload: list[str], sys_path: list[str], runner: int | None = None) -> None:
    from stackhop.adapters.local.lifeline import die_with_parent

    signal.signal(signal.SIGTERM, lambda *_: _stop())
    if runner is not None:
        die_with_parent(runner, signal.SIGTERM)
    # The protocol gets a descriptor of its own; whatever user modules print while they are
    # imported (fd 1 included) goes to stderr, the runner's log, and never into the protocol.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    _protocol.append(protocol.fileno())
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for p in reversed(sys_path):
        if p not in sys.path:
            sys.path.insert(0, p)
    from stackhop import entrypoint  # noqa: F401  (the point is to have it imported)
    from stackhop.core.import_guard import importing

    for module in preload:
        try:
            with importing(module, "the local fork server"):
                importlib.import_module(module)
        except BaseException:  # the child will import again and report the error in its log
            pass
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    stdin = sys.stdin.buffer
    out = protocol
    buffer = b""
    while True:
        ready, _, _ = select.select([stdin, wake_r], [], [], 1.0)
        if wake_r in ready:
            os.read(wake_r, 4096)
        if stdin in ready:
            chunk = os.read(stdin.fileno(), 65536)
            if not chunk:  # the runner closed the pipe, or died: no step may outlive it
                _stop()
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                pid = _fork(request)
                _children[pid] = request["id"]
                _send(out, {"id": request["id"], "pid": pid})
        while _children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            rid = _children.pop(pid, None)
            if rid is not None:
                _send(out, {"id": rid, "rc": os.waitstatus_to_exitcode(status)})


_protocol: list[int] = []
_children: dict[int, str] = {}


def _send(out: Any, message: dict[str, Any]) -> None:
    try:
        out.write(json.dumps(message) + "\n")
        out.flush()
    except (BrokenPipeError, ValueError):  # nobody reads any more: the runner is gone
        _stop()


def _stop() -> None:
    """Kill every step with everything it started, then exit: the runner is gone or done."""
    for pid in list(_children):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    os._exit(0)


def _protocol_fds() -> list[int]:
    return list(_protocol)


def _fork(request: dict[str, Any]) -> int:
    server = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        _children.clear()
        for fd in _protocol_fds():
            os.close(fd)
        os.setsid()
        from stackhop.adapters.local.lifeline import die_with_parent

        die_with_parent(server)
        signal.set_wakeup_fd(-1)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        if request.get("cwd"):
            os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if request.get("command"):
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            try:
                os.execvpe(request["command"][0], request["command"], dict(os.environ))
            except OSError as exc:
                print(f"stackhop: cannot start {request['command'][0]!r}: {exc.strerror}", file=sys.stderr)
                raise SystemExit(127) from None
        if request.get("exec"):
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execve(sys.executable, [sys.executable, "-m", "stackhop.entrypoint", *request["argv"]], dict(os.environ))
        import random

        random.seed()
        from stackhop import entrypoint

        code = entrypoint.main(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


class ForkServer:
    """The runner's side: start steps through the server, hear about exits on a callback."""

    def __init__(self, preload: list[str], sys_path: list[str], on_exit: Callable[[str, int], None], *,
                 spawn: bool = False):
        self.spawn = spawn
        code = "import json,sys; from stackhop.adapters.local.forkserver import serve; serve(*json.loads(sys.argv[1]))"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps([preload, sys_path, os.getpid()])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )
        self._on_exit = on_exit
        self._pids: dict[str, int] = {}
        self._started = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:  # not ours: the protocol has its own descriptor, but be safe
                continue
            if "pid" in msg:
                with self._started:
                    self._pids[msg["id"]] = msg["pid"]
                    self._started.notify_all()
            else:
                self._on_exit(msg["id"], msg["rc"])

    def start(self, rid: str, argv: list[str], env: dict[str, str], cwd: str | None, log: str,
              command: list[str] | None = None) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": rid, "argv": argv, "env": env, "cwd": cwd, "log": log,
                                          "exec": self.spawn, "command": command}) + "\n").encode())
        self.proc.stdin.flush()
        with self._started:
            if not self._started.wait_for(lambda: rid in self._pids, timeout=30):
                raise RuntimeError("the fork server did not start the step within 30s")
            return self._pids.pop(rid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
