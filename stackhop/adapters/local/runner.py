"""The local backend: one detached process per run that schedules every step as its own process.

    python -m stackhop.adapters.local.runner RUN_SPEC_PATH

Steps start when their inputs are ready, up to `max_workers` at once (and a ParallelFor's
`parallelism`). Each attempt runs `python -m stackhop.entrypoint` in its own process group,
so a timeout or a cancel kills the step and everything it spawned. The runner's view of the
run is `_stackhop/state.json` in the run's prefix, rewritten atomically after every change:
that file is what `status()` reads, from this or any other process.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from stackhop.core.canonical import canonical_json
from stackhop.core.resolve import Index, RunView, instance_key

OK = ("SUCCEEDED", "CACHED")
TERMINAL = ("SUCCEEDED", "CACHED", "FAILED", "SKIPPED", "CANCELLED")


@dataclass
class Instance:
    step: str
    index: Index
    key: str
    data_deps: list[str] = field(default_factory=list)
    order_deps: list[str] = field(default_factory=list)
    is_exit: bool = False
    status: str = "PENDING"
    native: str = "waiting"
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    message: str = ""
    pid: int | None = None
    deadline: float | None = None
    kill_at: float | None = None
    timed_out: bool = False
    retry_at: float | None = None
    cache_key: str | None = None
    loop_slot: tuple[str, Index] | None = None

    @property
    def deps(self) -> list[str]:
        return self.data_deps + self.order_deps


class Runner:
    def __init__(self, spec_path: str, spec: dict[str, Any]):
        self.spec_path = spec_path
        self.view = RunView(spec)
        self.settings: dict[str, Any] = spec.get("settings") or {}
        self.max_workers = int(self.settings.get("max_workers") or os.cpu_count() or 1)
        self.grace = float(self.settings.get("kill_grace_seconds", 3.0))
        self.caching = bool(spec.get("caching", True))
        self.store = self.view.store
        self.events: queue.Queue[tuple[str, int, int] | None] = queue.Queue()
        self.cancel_requested = False
        self.started_at = time.time()
        self.instances: dict[str, Instance] = {}
        self.order: list[str] = []
        self.loop_running: dict[tuple[str, Index], int] = {}
        self.forkserver: Any = None
        self._forkserver_tried = False
        self._build()

    # ------------------------------------------------------------------ graph
    def _build(self) -> None:
        v = self.view
        exit_members: dict[str, list[str]] = {}
        for g in v.groups.values():
            if g["kind"] == "exit_handler":
                exit_members[g["exit_step"]] = [
                    s for s in v.steps if g["id"] in [x["id"] for x in v.chain(v.steps[s].get("group"))]
                ]
        for s in v.ir["steps"]:
            name = s["name"]
            data_ups = [i["value"]["step"] for i in s["inputs"] if i.get("value") and i["value"]["kind"] == "output"]
            for g in v.chain(s.get("group")):
                if g["kind"] == "condition":
                    data_ups += [x["step"] for x in _expr_outputs(g["condition"])]
            order_ups = list(s.get("after", [])) + exit_members.get(name, [])
            loops = [g["id"] for g in v.loops(name)]
            for index in v.instances(name):
                inst = Instance(name, index, instance_key(name, index), is_exit=name in exit_members)
                inst.data_deps = self._instances_of(dict.fromkeys(data_ups), loops, index)
                inst.order_deps = self._instances_of(dict.fromkeys(order_ups), loops, index)
                if loops:
                    inst.loop_slot = (loops[-1], index[:-1])
                self.instances[inst.key] = inst
        self.order = _topological(self.instances)

    def _instances_of(self, ups: dict[str, None], loops: list[str], index: Index) -> list[str]:
        keys: list[str] = []
        for up in ups:
            up_loops = [g["id"] for g in self.view.loops(up)]
            common = 0
            while common < min(len(loops), len(up_loops)) and loops[common] == up_loops[common]:
                common += 1
            for up_index in self.view.instances(up):
                if up_index[:common] == index[:common]:
                    keys.append(instance_key(up, up_index))
        return keys

    # ------------------------------------------------------------------ main loop
    def run(self) -> str:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._update_store("RUNNING")
        self._write_state("RUNNING")
        try:
            status = self._loop()
        finally:
            if self.forkserver is not None:
                self.forkserver.close()
        self._write_state(status)
        self._update_store(status)
        return status

    def _start_forkserver(self) -> None:
        """Fork per step from a warm process unless the stack asks for fresh interpreters.

        Started at the first launch, so a fully cached run never pays for it."""
        self._forkserver_tried = True
        if self.settings.get("launcher", "fork") != "fork" or not hasattr(os, "fork"):
            return
        from stackhop.adapters.local.forkserver import ForkServer

        source = (self.view.spec.get("code") or {}).get("source_dir")
        modules = sorted({s["python"]["module"] for s in self.view.ir["steps"] if s.get("python")}) if source else []
        self.forkserver = ForkServer(modules, [source] if source else [], self._forked_exit)

    def _forked_exit(self, rid: str, rc: int) -> None:
        key, attempt = rid.rsplit("#", 1)
        self.events.put((key, int(attempt), rc))

    def _loop(self) -> str:
        while True:
            if self.cancel_requested:
                self._cancel_all()
            else:
                self._schedule()
            self._check_timers()
            if all(i.status in TERMINAL for i in self.instances.values()):
                break
            try:
                event = self.events.get(timeout=self._wait_seconds())
            except queue.Empty:
                event = None
            while event is not None:
                self._on_exit(*event)
                try:
                    event = self.events.get_nowait()
                except queue.Empty:
                    event = None
            self._write_state("CANCELLING" if self.cancel_requested else "RUNNING")
        return self._final_status()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.cancel_requested = True
        self.events.put(None)

    def _wait_seconds(self) -> float:
        now = time.time()
        times = [t for i in self.instances.values() for t in (i.deadline, i.kill_at, i.retry_at) if t]
        return max(0.001, min([0.5] + [t - now for t in times]))

    def _final_status(self) -> str:
        states = [i.status for i in self.instances.values()]
        if self.cancel_requested and "CANCELLED" in states:
            return "CANCELLED"
        if "FAILED" in states:
            return "FAILED"
        return "SUCCEEDED"

    # ------------------------------------------------------------------ scheduling
    def _running(self) -> int:
        return sum(1 for i in self.instances.values() if i.pid is not None)

    def _schedule(self) -> None:
        changed = True
        while changed:
            changed = False
            for key in self.order:
                inst = self.instances[key]
                if inst.status == "RUNNING" and inst.retry_at and inst.pid is None:
                    if time.time() >= inst.retry_at and self._has_capacity(inst):
                        inst.retry_at = None
                        self._launch(inst)
                    continue
                if inst.status != "PENDING":
                    continue
                deps = [self.instances[d] for d in inst.deps]
                if not all(d.status in TERMINAL for d in deps):
                    continue
                if self._decide(inst):
                    changed = True

    def _has_capacity(self, inst: Instance) -> bool:
        if self._running() >= self.max_workers:
            return False
        if inst.loop_slot:
            group = self.view.groups[inst.loop_slot[0]]
            limit = group.get("parallelism")
            if limit and self.loop_running.get(inst.loop_slot, 0) >= limit:
                return False
        return True

    def _decide(self, inst: Instance) -> bool:
        """Settle a ready instance: skip it, serve it from cache, or launch it. True if it changed."""
        if not inst.is_exit:
            for d in inst.data_deps:
                up = self.instances[d]
                if up.status not in OK:
                    word = "upstream_skipped" if up.status == "SKIPPED" else "upstream_failed"
                    return self._settle(inst, "SKIPPED", word, f"{d} is {up.status.lower()}")
            for d in inst.order_deps:
                up = self.instances[d]
                if up.status in ("FAILED", "CANCELLED"):
                    return self._settle(inst, "SKIPPED", "upstream_failed", f"{d} is {up.status.lower()}")
            try:
                holds, group = self.view.conditions_hold(inst.step, inst.index)
            except Exception as exc:
                return self._settle(inst, "FAILED", "condition_error", f"could not evaluate the condition: {exc}")
            if not holds:
                return self._settle(inst, "SKIPPED", "condition_false", f"{group} is false")
        if self._try_cache(inst):
            return True
        if not self._has_capacity(inst):
            return False
        self._launch(inst)
        return True

    def _settle(self, inst: Instance, status: str, native: str, message: str = "") -> bool:
        inst.status, inst.native, inst.message = status, native, message
        inst.finished_at = time.time()
        return True

    # ------------------------------------------------------------------ caching
    def _step_settings(self, inst: Instance) -> dict[str, Any]:
        return self.view.steps[inst.step].get("settings") or {}

    def _cache_enabled(self, inst: Instance) -> bool:
        step = self.view.steps[inst.step]
        enabled = self._step_settings(inst).get("caching")
        return self.caching and enabled is not False and step["kind"] != "resource"

    def _cache_key(self, inst: Instance) -> str:
        step = self.view.steps[inst.step]
        inputs: dict[str, Any] = {}
        for spec in step["inputs"]:
            if spec.get("value") is None:
                inputs[spec["name"]] = {"default": spec.get("default")}
                continue
            value = self.view.value(spec["value"], inst.step, inst.index)
            inputs[spec["name"]] = {"digest": value.get("digest")} if isinstance(value, dict) and "uri" in value and spec["type"] not in ("dict",) else {"value": value}
        body = step.get("python") or step.get("container") or step.get("resource")
        material = {
            "v": 1,
            "kind": step["kind"],
            "body": body,
            "image": self._step_settings(inst).get("image"),
            "env": self._step_settings(inst).get("env") or {},
            "inputs": inputs,
            "outputs": step["outputs"],
        }
        return hashlib.sha256(canonical_json(material).encode()).hexdigest()

    def _cache_uri(self, inst: Instance, key: str) -> str:
        return self.store.shared_meta("cache", self.view.pipeline, inst.step, key + ".json")

    def _try_cache(self, inst: Instance) -> bool:
        if not self._cache_enabled(inst):
            return False
        try:
            inst.cache_key = self._cache_key(inst)
            uri = self._cache_uri(inst, inst.cache_key)
            if not self.store.exists(uri):
                return False
            record = self.store.read_json(uri)
        except Exception:
            return False
        if not all(self.store.exists(a["uri"]) for a in record.get("artifacts", {}).values()):
            return False
        self.store.write_json(self.view.outputs_uri(inst.step, inst.index), record)
        self.view.remember_outputs(inst.step, inst.index, record)
        return self._settle(inst, "CACHED", "cache_hit", f"outputs of run {record.get('run_id', '?')}")

    def _store_cache(self, inst: Instance, record: dict[str, Any]) -> None:
        if inst.cache_key and self._cache_enabled(inst):
            entry = {**record, "run_id": record.get("run_id", self.view.run_id)}
            self.store.write_json(self._cache_uri(inst, inst.cache_key), entry)

    # ------------------------------------------------------------------ processes
    def _log_path(self, inst: Instance) -> str:
        uri = self.store.step_meta(self.view.pipeline, self.view.run_id, inst.step, inst.index, "log.txt")
        if self.store.is_local:
            path = self.store.local_path(uri)
        else:
            path = os.path.join(self._scratch(), inst.key.replace("[", "_").replace("]", "") + ".log")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def _scratch(self) -> str:
        import tempfile

        if not hasattr(self, "_scratch_dir"):
            self._scratch_dir = tempfile.mkdtemp(prefix="stackhop-run-")
        return self._scratch_dir

    def _launch(self, inst: Instance) -> None:
        step = self.view.steps[inst.step]
        settings = self._step_settings(inst)
        inst.attempts += 1
        env = dict(os.environ)
        env.update(settings.get("env") or {})
        env.update(STACKHOP_RUN_ID=self.view.run_id, STACKHOP_STEP=inst.key, STACKHOP_ATTEMPT=str(inst.attempts))
        missing = self._add_secrets(step, env)
        if missing:
            self._settle(inst, "FAILED", "secret_missing", missing)
            return
        cmd = [sys.executable, "-m", "stackhop.entrypoint", "--spec", self.spec_path, "--step", inst.step]
        if inst.index:
            cmd += ["--index", ",".join(str(i) for i in inst.index)]
        log_path = self._log_path(inst)
        cwd = self.view.spec.get("workdir") or None
        with open(log_path, "ab") as log:
            if inst.attempts > 1:
                log.write(f"\n===== attempt {inst.attempts} =====\n".encode())
                log.flush()
            if not self._forkserver_tried:
                self._start_forkserver()
            if self.forkserver is not None:
                inst.pid = self.forkserver.start(f"{inst.key}#{inst.attempts}", cmd[3:], env, cwd, log_path)
            else:
                proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True, env=env, cwd=cwd,
                )
                inst.pid = proc.pid
                attempt = inst.attempts
                threading.Thread(target=lambda: self.events.put((inst.key, attempt, proc.wait())), daemon=True).start()
        inst.status, inst.native = "RUNNING", f"attempt {inst.attempts}"
        inst.started_at = inst.started_at or time.time()
        timeout = settings.get("timeout_seconds")
        inst.deadline = time.time() + float(timeout) if timeout else None
        inst.kill_at, inst.timed_out = None, False
        if inst.loop_slot:
            self.loop_running[inst.loop_slot] = self.loop_running.get(inst.loop_slot, 0) + 1

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

    def _kill(self, inst: Instance, sig: int) -> None:
        if inst.pid is None:
            return
        try:
            os.killpg(inst.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _check_timers(self) -> None:
        now = time.time()
        if self.forkserver is not None and not self.forkserver.alive():
            for inst in self.instances.values():
                if inst.pid is not None:
                    self._kill(inst, signal.SIGKILL)
                    inst.pid = None
                    self._settle(inst, "FAILED", "launcher_died", "the local fork server exited unexpectedly")
            self.forkserver = None
        for inst in self.instances.values():
            if inst.pid is None:
                continue
            if inst.deadline and now >= inst.deadline and not inst.timed_out:
                inst.timed_out = True
                inst.kill_at = now + self.grace
                self._kill(inst, signal.SIGTERM)
            elif inst.kill_at and now >= inst.kill_at:
                inst.kill_at = None
                self._kill(inst, signal.SIGKILL)

    def _on_exit(self, key: str, attempt: int, rc: int) -> None:
        inst = self.instances[key]
        if attempt != inst.attempts or inst.pid is None:
            return
        inst.pid, inst.deadline, inst.kill_at = None, None, None
        inst.exit_code = rc
        if inst.loop_slot:
            self.loop_running[inst.loop_slot] -= 1
        if self.cancel_requested:
            self._settle(inst, "CANCELLED", "cancelled", "the run was cancelled")
            return
        if rc == 0 and not inst.timed_out:
            try:
                record = self.store.read_json(self.view.outputs_uri(inst.step, inst.index))
            except Exception:
                self._settle(inst, "FAILED", "no_outputs", "the step exited 0 without writing outputs.json")
                return
            record["run_id"] = self.view.run_id
            self.view.remember_outputs(inst.step, inst.index, record)
            self._store_cache(inst, record)
            self._settle(inst, "SUCCEEDED", "exit code 0")
            return
        timeout = self._step_settings(inst).get("timeout_seconds")
        if inst.timed_out:
            reason = f"timed out after {timeout:g}s"
        elif rc < 0:
            reason = f"killed by signal {signal.Signals(-rc).name}"
        else:
            reason = self._error_message(inst) or f"exited with code {rc}"
        retry = self._step_settings(inst).get("retry")
        if retry and inst.attempts <= int(retry["max_retries"]):
            delay = min(
                float(retry.get("backoff_seconds", 1.0)) * float(retry.get("backoff_factor", 2.0)) ** (inst.attempts - 1),
                float(retry.get("max_backoff_seconds", 300.0)),
            )
            inst.retry_at = time.time() + delay
            inst.native = f"retrying in {delay:g}s"
            inst.message = f"attempt {inst.attempts} failed: {reason}"
            return
        self._settle(inst, "FAILED", "timeout" if inst.timed_out else f"exit code {rc}", reason)

    def _error_message(self, inst: Instance) -> str:
        uri = self.store.step_meta(self.view.pipeline, self.view.run_id, inst.step, inst.index, "error.json")
        try:
            return str(self.store.read_json(uri).get("message", ""))
        except Exception:
            return ""

    def _cancel_all(self) -> None:
        for inst in self.instances.values():
            if inst.pid is not None:
                if inst.kill_at is None:
                    inst.kill_at = time.time() + self.grace
                    self._kill(inst, signal.SIGTERM)
                inst.native = "cancelling"
            elif inst.status not in TERMINAL:
                self._settle(inst, "CANCELLED", "cancelled", "the run was cancelled")

    # ------------------------------------------------------------------ reporting
    def _write_state(self, status: str) -> None:
        finished = time.time() if status in ("SUCCEEDED", "FAILED", "CANCELLED") else None
        steps = {}
        for key in self.order:
            i = self.instances[key]
            steps[key] = {
                "status": i.status, "native": i.native, "attempts": i.attempts, "started_at": i.started_at,
                "finished_at": i.finished_at, "exit_code": i.exit_code, "message": i.message,
            }
        failed = [k for k, s in steps.items() if s["status"] == "FAILED"]
        message = f"step {failed[0]} failed: {steps[failed[0]]['message']}" if failed else ""
        state = {
            "status": status, "native": status.lower(), "message": message, "pid": os.getpid(),
            "started_at": self.started_at, "finished_at": finished, "steps": steps, "order": list(self.order),
        }
        self.store.write_json(self.store.run_meta(self.view.pipeline, self.view.run_id, "state.json"), state)
        if finished and not self.store.is_local:
            self._upload_logs()

    def _upload_logs(self) -> None:
        for inst in self.instances.values():
            path = self._log_path(inst)
            if os.path.exists(path):
                uri = self.store.step_meta(self.view.pipeline, self.view.run_id, inst.step, inst.index, "log.txt")
                self.store.put_file(path, uri)

    def _update_store(self, status: str) -> None:
        path = self.view.spec.get("store_path")
        if not path:
            return
        from stackhop.core.store import RunStore

        try:
            RunStore(path).set_status(self.view.run_id, status, finished=status in ("SUCCEEDED", "FAILED", "CANCELLED"))
        except Exception as exc:  # the state file stays authoritative
            print(f"stackhop runner: could not update the run store: {exc}", file=sys.stderr)


def _expr_outputs(expr: dict[str, Any]) -> list[dict[str, Any]]:
    if expr["kind"] == "compare":
        return [v for v in (expr["left"], expr["right"]) if v["kind"] == "output"]
    if expr["kind"] == "not":
        return _expr_outputs(expr["operand"])
    return [v for e in expr["operands"] for v in _expr_outputs(e)]


def _topological(instances: dict[str, Instance]) -> list[str]:
    import heapq

    position = {k: n for n, k in enumerate(instances)}
    indeg = {k: 0 for k in instances}
    down: dict[str, list[str]] = {k: [] for k in instances}
    for k, inst in instances.items():
        for d in set(inst.deps):
            down[d].append(k)
            indeg[k] += 1
    heap = [(position[k], k) for k, n in indeg.items() if n == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, k = heapq.heappop(heap)
        order.append(k)
        for m in down[k]:
            indeg[m] -= 1
            if indeg[m] == 0:
                heapq.heappush(heap, (position[m], m))
    return order


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    spec_path = args[0]
    with open(spec_path) as f:
        spec = json.load(f)
    status = Runner(spec_path, spec).run()
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
