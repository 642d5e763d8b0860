"""The local backend: one detached process per run, every step attempt its own process.

    python -m stackhop.adapters.local.runner RUN_SPEC_PATH

The DAG walk (readiness, conditions, loops, caching, retries, cancel, state.json) is the
core scheduler's; this module only starts, watches and kills processes. An emulated run
(`--emulate`) is the same runner with another adapter's `Emulator`: each attempt starts the
command the compiled document names instead of the entrypoint. Each attempt runs
`python -m stackhop.entrypoint` in its own session and process group, so a timeout or a
cancel kills the step and everything it spawned. The runner records its pid, start time and
host in state.json, so readers can tell when it died (see `crash`), and every process it
starts dies with it (see `lifeline`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from stackhop.adapters.local.lifeline import start_time
from stackhop.core.emulation import EmulatedRun, EmulationError, Emulator, this_python
from stackhop.core.scheduler import AttemptEnd, Instance, Scheduler


class Runner(Scheduler):
    def __init__(self, spec_path: str, spec: dict[str, Any]):
        settings = spec.get("settings") or {}
        super().__init__(spec, max_running=int(settings.get("max_workers") or os.cpu_count() or 1))
        self.spec_path = spec_path
        self.grace = float(self.settings.get("kill_grace_seconds", 3.0))
        self.forkserver: Any = None
        self._forkserver_tried = False
        self._deadline: dict[str, float] = {}
        self._kill_at: dict[str, float] = {}
        self._timed_out: set[str] = set()
        self._scratch_dir: str | None = None
        import socket

        self._identity = {"pid_start": start_time(os.getpid()), "host": socket.gethostname()}
        from stackhop.adapters.local.gpus import GpuPool, available

        self.gpus = GpuPool(available(self.settings.get("gpus", "auto")))
        self.emulator = _emulator(spec)
        self._workdirs: dict[str, str] = {}

    # ------------------------------------------------------------------ starting
    def _start_forkserver(self) -> None:
        """Start steps through a warm fork server, which also runs `launcher: spawn` steps (forked, then
        exec'd as fresh interpreters), so steps die with the runner the same way in both modes.

        Started at the first launch, so a fully cached run never pays for it."""
        self._forkserver_tried = True
        if not hasattr(os, "fork"):
            return
        from stackhop.adapters.local.forkserver import ForkServer

        spawn = self.settings.get("launcher", "fork") != "fork"
        source = (self.spec.get("code") or {}).get("source_dir")
        modules = sorted({s["python"]["module"] for s in self.view.ir["steps"] if s.get("python")
                          and s["python"].get("source") is None and not s["python"].get("pickled")}) if source else []
        self.forkserver = ForkServer([] if spawn else modules, [source] if source else [], self._forked_exit, spawn=spawn)

    def _forked_exit(self, rid: str, rc: int) -> None:
        key, attempt = rid.rsplit("#", 1)
        self._report(key, int(attempt), rc)

    def _gpus_wanted(self, inst: Instance) -> int:
        accelerator = (self.step_settings(inst).get("resources") or {}).get("accelerator")
        return int(accelerator["count"]) if accelerator and self.gpus.ids else 0

    def _has_capacity(self, inst: Instance) -> bool:
        return super()._has_capacity(inst) and self.gpus.can_take(self._gpus_wanted(inst))

    def _report(self, key: str, attempt: int, rc: int) -> None:
        self.gpus.give_back(key)
        pid = self.instances[key].handle
        if pid is not None:  # like a container: nothing the step started outlives it
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        timed_out = key in self._timed_out
        self._timed_out.discard(key)
        self._deadline.pop(key, None)
        self._kill_at.pop(key, None)
        ok = rc == 0 and not timed_out
        problem = self._collect(key, ok) if self.emulator is not None else ""
        if problem:
            self.events.put(AttemptEnd(key, attempt, ok=False, reason=problem, native="outputs_not_collected",
                                       exit_code=rc, retryable=False))
            return
        if ok:
            self.events.put(AttemptEnd(key, attempt, ok=True, native="exit code 0", exit_code=0))
            return
        inst = self.instances[key]
        if timed_out:
            timeout = self.step_settings(inst).get("timeout_seconds")
            reason, native = f"timed out after {timeout:g}s", "timeout"
        elif rc < 0:
            reason, native = f"killed by signal {signal.Signals(-rc).name}", f"signal {-rc}"
        else:
            reason, native = "", f"exit code {rc}"
        self.events.put(AttemptEnd(key, attempt, ok=False, reason=reason, native=native, exit_code=rc))

    def start(self, inst: Instance) -> None:
        if self.emulator is not None:
            self._start_emulated(inst)
            return
        step = self.view.steps[inst.step]
        env = dict(os.environ)
        env.update(self.step_settings(inst).get("env") or {})
        env.update(STACKHOP_RUN_ID=self.view.run_id, STACKHOP_STEP=inst.key, STACKHOP_ATTEMPT=str(inst.attempts))
        missing = self._add_secrets(step, env)
        if missing:
            self.settle(inst, "FAILED", "secret_missing", missing)
            return
        if self.gpus.ids:  # like a pod: a step sees the GPUs it asked for, and no others
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus.take(inst.key, self._gpus_wanted(inst)))
        argv = ["--spec", self.spec_path, "--step", inst.step]
        if inst.index:
            argv += ["--index", ",".join(str(i) for i in inst.index)]
        log_path = self._log_path(inst)
        cwd = self.spec.get("workdir") or None
        with open(log_path, "ab") as log:
            if inst.attempts > 1:
                log.write(f"\n===== attempt {inst.attempts} =====\n".encode())
                log.flush()
            if not self._forkserver_tried:
                self._start_forkserver()
            if self.forkserver is not None:
                inst.handle = self.forkserver.start(f"{inst.key}#{inst.attempts}", argv, env, cwd, log_path)
            else:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "stackhop.entrypoint", *argv], stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=cwd,
                )
                inst.handle = proc.pid
                key, attempt = inst.key, inst.attempts
                threading.Thread(target=lambda: self._report(key, attempt, proc.wait()), daemon=True).start()
        timeout = self.step_settings(inst).get("timeout_seconds")
        if timeout:
            self._deadline[inst.key] = time.time() + float(timeout)

    def _start_emulated(self, inst: Instance) -> None:
        assert self.emulator is not None
        workdir = tempfile.mkdtemp(prefix="stackhop-emulate-")
        try:
            command = self.emulator.command(inst.step, inst.index, workdir)
        except Exception as exc:  # a document or store problem fails this step, never the runner
            shutil.rmtree(workdir, ignore_errors=True)
            message = str(exc) if isinstance(exc, EmulationError) else f"{type(exc).__name__}: {exc}"
            self.settle(inst, "FAILED", "not_emulated", message)
            return
        self._workdirs[inst.key] = workdir
        env = {**os.environ, **command.env, "STACKHOP_ATTEMPT": str(inst.attempts)}
        if self.gpus.ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus.take(inst.key, self._gpus_wanted(inst)))
        log_path = self._log_path(inst)
        with open(log_path, "ab") as log:
            if inst.attempts > 1:
                log.write(f"\n===== attempt {inst.attempts} =====\n".encode())
        if not self._forkserver_tried:
            self._start_forkserver()
        argv = this_python(command.argv)
        if self.forkserver is not None:
            inst.handle = self.forkserver.start(f"{inst.key}#{inst.attempts}", [], env, workdir, log_path, command=argv)
        else:
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, env=env, cwd=workdir)
            inst.handle = proc.pid
            key, attempt = inst.key, inst.attempts
            threading.Thread(target=lambda: self._report(key, attempt, proc.wait()), daemon=True).start()
        timeout = command.timeout_seconds or self.step_settings(inst).get("timeout_seconds")
        if timeout:
            self._deadline[inst.key] = time.time() + float(timeout)

    def _collect(self, key: str, ok: bool) -> str:
        """After an emulated attempt: hand its outputs on as the backend would (if it succeeded); the problem, if any."""
        inst = self.instances[key]
        workdir = self._workdirs.pop(key, None)
        try:
            if ok and self.emulator is not None and workdir is not None:
                self.emulator.collect(inst.step, inst.index, workdir)
        except Exception as exc:  # on the thread that saw the exit: the step must still end
            return str(exc) if isinstance(exc, EmulationError) else f"{type(exc).__name__}: {exc}"
        finally:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
        return ""

    def conditions_hold(self, inst: Instance) -> tuple[bool, str]:
        """An emulated run follows the document's condition, and fails the step where it disagrees with the IR's."""
        holds, group = super().conditions_hold(inst)
        if self.emulator is None:
            return holds, group
        says = self.emulator.condition(inst.step, inst.index)
        if says is not None and says != holds:
            raise EmulationError(
                f"the compiled document {'runs' if says else 'skips'} step {inst.key} where the pipeline's "
                f"conditions {'hold' if holds else f'({group}) do not'}; the adapter compiled the condition wrongly")
        return holds, group

    def on_settled(self, inst: Instance) -> None:
        if self.emulator is not None:
            workdir = self._workdirs.pop(inst.key, None)
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
            self.emulator.settled(inst.step, inst.index, inst.status, inst.message)

    def _add_secrets(self, step: dict[str, Any], env: dict[str, str]) -> str:
        table: dict[str, dict[str, str]] = self.settings.get("secrets") or {}
        for ref in step.get("secrets", []):
            var = (table.get(ref["name"]) or {}).get(ref["key"])
            if var is None:
                return (f"secret {ref['name']}/{ref['key']} is not mapped; add settings.secrets."
                        f"{ref['name']}.{ref['key']}: <ENV VAR NAME> to the local stack.")
            if var not in os.environ:
                return f"secret {ref['name']}/{ref['key']} maps to ${var}, which is not set in the runner's environment."
            env[ref["env"]] = os.environ[var]
        return ""

    # ------------------------------------------------------------------ stopping and watching
    def _signal(self, inst: Instance, sig: int) -> None:
        if inst.handle is None:
            return
        runtime = self.spec.get("container_runtime")
        if runtime and self.view.steps[inst.step]["kind"] == "container":  # the container is not in our process group
            from stackhop.adapters.local.container_runtime import container_name, stop_container

            stop_container(runtime, container_name(self.view.run_id, inst.key, inst.attempts),
                           self.grace if sig == signal.SIGTERM else None)
        try:
            os.killpg(inst.handle, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, inst: Instance) -> None:
        self._kill_at[inst.key] = time.time() + self.grace
        self._signal(inst, signal.SIGTERM)

    def tick(self) -> None:
        if self.forkserver is not None and not self.forkserver.alive():
            for inst in self.instances.values():
                if inst.handle is not None:
                    self._signal(inst, signal.SIGKILL)
                    self.gpus.give_back(inst.key)
                    inst.handle = None
                    self.settle(inst, "FAILED", "launcher_died", "the local fork server exited unexpectedly")
            self.forkserver = None
        now = time.time()
        for inst in self.instances.values():
            if inst.handle is None:
                continue
            deadline = self._deadline.get(inst.key)
            if deadline and now >= deadline and inst.key not in self._timed_out:
                self._timed_out.add(inst.key)
                self._kill_at[inst.key] = now + self.grace
                self._signal(inst, signal.SIGTERM)
            elif inst.key in self._kill_at and now >= self._kill_at[inst.key]:
                del self._kill_at[inst.key]
                self._signal(inst, signal.SIGKILL)

    def wait_seconds(self) -> float:
        now = time.time()
        times = list(self._deadline.values()) + list(self._kill_at.values())
        return max(0.001, min([0.5] + [t - now for t in times]))

    def close(self) -> None:
        if self.forkserver is not None:
            self.forkserver.close()
        if not self.store.is_local:
            for inst in self.instances.values():
                path = self._log_path(inst)
                if os.path.exists(path):
                    self.store.put_file(path, self._log_uri(inst))

    def state(self, status: str) -> dict[str, Any]:
        return {**super().state(status), **self._identity}

    # ------------------------------------------------------------------ logs
    def _log_uri(self, inst: Instance) -> str:
        return self.store.step_meta(self.view.pipeline, self.view.run_id, inst.step, inst.index, "log.txt")

    def _log_path(self, inst: Instance) -> str:
        if self.store.is_local:
            path = self.store.local_path(self._log_uri(inst))
        else:
            if self._scratch_dir is None:
                self._scratch_dir = tempfile.mkdtemp(prefix="stackhop-run-")
            path = os.path.join(self._scratch_dir, inst.key.replace("[", "_").replace("]", "") + ".log")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path


def _emulator(spec: dict[str, Any]) -> Emulator | None:
    emulation = spec.get("emulation")
    if not emulation:
        return None
    from stackhop.core.plugins import adapter_class

    cls = adapter_class(emulation["adapter"], where=f"emulated run {spec['run_id']}").emulator
    if cls is None:
        raise SystemExit(f"adapter {emulation['adapter']!r} has no emulator")
    files = {name: text.encode() for name, text in emulation["files"].items()}
    return cls(files, EmulatedRun(spec["run_id"], spec.get("parameters") or {}, spec["artifact_root"],
                                  spec["pipeline"], spec.get("code") or {}))


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    spec_path = args[0]
    with open(spec_path) as f:
        spec = json.load(f)
    os.environ["STACKHOP_RUN_ID"] = spec["run_id"]  # inherited by the fork server and every step: see lifeline
    status = Runner(spec_path, spec).run()
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
