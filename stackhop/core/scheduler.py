"""Walk a run's DAG to completion, whatever executes the steps.

The scheduler expands loops into step instances, starts an instance when everything it
depends on has settled, skips it when a condition is false or an upstream failed, serves it
from cache when an identical step already ran, retries failed attempts with backoff, and
cancels cleanly. It reports the run as `_stackhop/state.json` in the run's prefix.

A backend subclasses it and supplies only `start`, `stop`, `tick` and `close`: the local
runner starts processes (for a local run, the entrypoint; for an emulated one, the command
the compiled document names, see `core.emulation`), and the Kubernetes driver creates Jobs.
Whatever starts an attempt reports its end through `events`.
"""

from __future__ import annotations

import queue
from abc import ABC, abstractmethod
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from stackhop.core.artifacts import ArtifactStore
from stackhop.core.resume import LEFT_OUT
from stackhop.core.cache_key import changes, input_part, key_of, material
from stackhop.core.graph import stable_topological
from stackhop.core.resolve import Index, RunView, instance_key
from stackhop.errors import ArtifactError

OK = ("SUCCEEDED", "CACHED")
BATCHED_STATE_ABOVE = 1_000
MAX_ITERATIONS = 10_000
"""Iterations one ParallelFor may run: a list beyond it is a mistake or a job for batches, not 10^6 steps."""
TERMINAL = ("SUCCEEDED", "CACHED", "FAILED", "SKIPPED", "CANCELLED")
FINAL_RUN = ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass
class Instance:
    """One step at one loop index, and what the scheduler knows of it."""

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
    handle: Any = None
    """The backend's name for the running attempt (a pid, a Job name); None when not running."""
    backend_name: str = ""
    """The backend object of the latest attempt, kept after it ends so the run record names it."""
    stopping: bool = False
    retry_at: float | None = None
    cache_key: str | None = None
    cache_parts: dict[str, Any] | None = None
    cache: dict[str, Any] | None = None
    """How the cache answered: hit (and from which run), miss (and what changed), or disabled."""
    loop_slot: tuple[str, Index] | None = None
    placeholder: bool = False
    """Stands for the iterations of a loop over a step output that has not been produced yet."""
    problem: str = ""
    label: str = ""
    """The iteration named after its items (`train[lr=0.05]`), when it is in a loop."""

    oneof_deps: list[list[str]] = field(default_factory=list)
    deps_settled: int = 0
    """How many of `deps`, from the first, have settled (the scheduler looks at each once)."""
    awaiting_capacity: bool = False
    """Decided to start (its deps, conditions and cache looked at): it waits only for a worker."""
    """For each OneOf input, the branch steps it chooses among: one of each must have succeeded."""

    @property
    def deps(self) -> list[str]:
        return self.data_deps + self.order_deps + [d for group in self.oneof_deps for d in group]


@dataclass(frozen=True)
class AttemptEnd:
    key: str
    attempt: int
    ok: bool
    reason: str = ""
    native: str = ""
    exit_code: int | None = None
    retryable: bool = True


class Scheduler(ABC):
    backend_retries: ClassVar[bool] = False
    """True when the backend re-runs failed attempts itself (a Job's backoffLimit)."""

    def __init__(self, spec: dict[str, Any], max_running: int | None = None):
        self.view = RunView(spec)
        self.spec = spec
        self.settings: dict[str, Any] = spec.get("settings") or {}
        self.max_running = max_running or 10**9
        self.caching = bool(spec.get("caching", True))
        self.store = self.view.store
        self.events: queue.Queue[AttemptEnd | None] = queue.Queue()
        self.cancel_requested = False
        self.started_at = time.time()
        self.instances: dict[str, Instance] = {}
        self.order: list[str] = []
        self.loop_running: dict[tuple[str, Index], int] = {}
        self._started: set[str] = set()
        self._running_now: int | None = None
        self._origin: dict[str, Any] | None = None
        """The steps of the run this one resumes, as its state.json recorded them (read once)."""
        """Keys of instances given a handle since the last count: `running()` looks at these, not at every instance."""
        self._state_due = 0.0
        self._state_pending: str | None = None
        self._previous = self._previous_steps()
        """What an earlier process driving this same run recorded (a driver restarted after its pod was deleted)."""
        self._build()

    def _previous_steps(self) -> dict[str, Any]:
        try:
            uri = self.store.run_meta(self.view.pipeline, self.view.run_id, "state.json")
            previous = self.store.read_json(uri) if self.store.exists(uri) else None
        except Exception:  # unreadable: drive the run afresh, adopting the Jobs it finds
            return {}
        if not previous:
            return {}
        self.started_at = previous.get("started_at") or self.started_at
        return previous.get("steps") or {}

    def _continued(self, inst: Instance) -> bool:
        """Settle the instance as the earlier process of this run left it: finished there with its outputs
        recorded (or failed there), so it is not started again."""
        before = self._previous.get(inst.key)
        if not before or before.get("status") not in ("SUCCEEDED", "CACHED", "FAILED"):
            return False
        if before["status"] != "FAILED":
            uri = self.view.outputs_uri(inst.step, inst.index)
            try:
                record = self.store.read_json(uri) if self.store.exists(uri) else None
            except Exception:
                record = None
            if record is None:
                return False
            self.view.remember_outputs(inst.step, inst.index, record)
        inst.attempts = int(before.get("attempts") or 0)
        inst.started_at, inst.exit_code = before.get("started_at"), before.get("exit_code")
        inst.backend_name, inst.cache = before.get("backend_name") or "", before.get("cache")
        inst.status, inst.native, inst.message = before["status"], before.get("native", ""), before.get("message", "")
        inst.finished_at = before.get("finished_at") or time.time()
        return True

    # ------------------------------------------------------------------ backend hooks
    @abstractmethod
    def start(self, inst: Instance) -> None:
        """Start attempt `inst.attempts` and set `inst.handle`, or settle the instance as failed."""

    @abstractmethod
    def stop(self, inst: Instance) -> None:
        """Begin stopping a running attempt; its end still arrives through `events`."""

    def tick(self) -> None:
        """Observe the backend (deadlines, status lists); called at least every `wait_seconds()`."""

    def close(self) -> None:
        """Release backend resources once the run has settled."""

    def wait_seconds(self) -> float:
        return 0.5

    def on_settled(self, inst: Instance) -> None:
        """Called once per instance when it reaches a final state (log persistence, cleanup)."""

    def conditions_hold(self, inst: Instance) -> tuple[bool, str]:
        """Whether the instance's enclosing conditions hold, and the first group that does not."""
        return self.view.conditions_hold(inst.step, inst.index)

    # ------------------------------------------------------------------ graph
    def _build(self) -> None:
        """What each step waits for; the instances follow from it, and grow as loops over step outputs learn their items."""
        v = self.view
        exit_members: dict[str, list[str]] = {}
        for g in v.groups.values():
            if g["kind"] == "exit_handler":
                exit_members[g["exit_step"]] = [
                    s for s in v.steps if g["id"] in [x["id"] for x in v.chain(v.steps[s].get("group"))]
                ]
        self.ups: dict[str, tuple[list[str], list[str]]] = {}
        self.collects: dict[str, set[str]] = {}
        """Steps a step reads through Collected: an iteration its If skipped is left out, not waited for."""
        self.oneof_ups: dict[str, list[list[str]]] = {}
        for s in v.ir["steps"]:
            name = s["name"]
            data_ups = [i["value"]["step"] for i in s["inputs"]
                        if i.get("value") and i["value"]["kind"] in ("output", "collected")]
            self.oneof_ups[name] = [[x["step"] for x in i["value"]["values"]] for i in s["inputs"]
                                    if i.get("value") and i["value"]["kind"] == "oneof"]
            for g in v.chain(s.get("group")):
                if g["kind"] == "condition":
                    data_ups += [x["step"] for x in _expr_outputs(g["condition"])]
                if g["kind"] == "parallel_for" and g["items"].get("output"):
                    data_ups.append(g["items"]["output"]["step"])
            order_ups = list(s.get("after", [])) + exit_members.get(name, [])
            self.ups[name] = (list(dict.fromkeys(data_ups)), list(dict.fromkeys(order_ups)))
            self.collects[name] = {i["value"]["step"] for i in s["inputs"]
                                   if i.get("value") and i["value"]["kind"] == "collected"}
        self.exit_steps = set(exit_members)
        self._expand()

    def _expand(self) -> None:
        """(Re)make the instances: a loop whose items a step has not produced yet is one placeholder, `train[*]`."""
        old, new = self.instances, {}
        self.slots = {s["name"]: self._slots(s["name"]) for s in self.view.ir["steps"]}
        for name, slots in self.slots.items():
            for index, complete, problem in slots:
                key = instance_key(name, index) + ("" if complete else "[*]")
                inst = old.get(key) or Instance(name, index, key, is_exit=name in self.exit_steps,
                                                placeholder=not complete)
                inst.problem = problem
                new[key] = inst
        self.instances = new
        for inst in new.values():
            inst.deps_settled = 0
            data_ups, order_ups = self.ups[inst.step]
            loops = [g["id"] for g in self.view.loops(inst.step)]
            if inst.placeholder:
                ref = self.view.loops(inst.step)[len(inst.index)]["items"].get("output")
                inst.data_deps = self._instances_of({ref["step"]: None}, loops, inst.index) if ref else []
                inst.order_deps = []
                inst.native = (f"waiting for {ref['step']}" if ref else
                               "too many items" if " would run " in inst.problem else "bad items")
                continue
            inst.data_deps = self._instances_of(dict.fromkeys(data_ups), loops, inst.index)
            inst.order_deps = self._instances_of(dict.fromkeys(order_ups), loops, inst.index)
            inst.oneof_deps = [self._instances_of(dict.fromkeys(g), loops, inst.index) for g in self.oneof_ups[inst.step]]
            if loops:
                inst.loop_slot = (loops[-1], inst.index[:-1])
                if not inst.label:
                    inst.label = self.view.iteration_label(inst.step, inst.index)
        self.order = _topological(self.instances)

    def _slots(self, step: str) -> list[tuple[Index, bool, str]]:
        """(index, complete, problem) for each instance of a step; incomplete ones stand for loops not expanded yet."""
        out: list[tuple[Index, bool, str]] = []
        partial: list[Index] = [()]
        for loop in self.view.loops(step):
            deeper: list[Index] = []
            for ix in partial:
                ref = loop["items"].get("output")
                if ref is not None:
                    up = self.instances.get(instance_key(ref["step"], self.view.upstream_index(ref["step"], ix)))
                    if up is None or up.status not in OK:
                        out.append((ix, False, ""))
                        continue
                    try:
                        count = len(self.view.loop_items(loop, ix))
                    except Exception as exc:
                        out.append((ix, False, f"{exc}; make the step return a list"))
                        continue
                else:
                    try:
                        count = len(self.view.loop_items(loop, ix))
                    except ValueError as exc:  # an outer item without a list where the loop reads one
                        out.append((ix, False, f"{exc}; give every item a list there"))
                        continue
                if count > MAX_ITERATIONS:
                    source = f"step {ref['step']!r} returned" if ref is not None else "its list holds"
                    out.append((ix, False, f"{loop['id']} would run {count} iterations ({source} {count} items), more "
                                           f"than the {MAX_ITERATIONS} one ParallelFor runs; give each iteration a "
                                           "batch of items instead"))
                    continue
                deeper += [ix + (i,) for i in range(count)]
            partial = deeper
        out += [(ix, True, "") for ix in partial]
        return sorted(out, key=lambda x: x[0])

    def _instances_of(self, ups: dict[str, None], loops: list[str], index: Index) -> list[str]:
        keys: list[str] = []
        for up in ups:
            up_loops = [g["id"] for g in self.view.loops(up)]
            common = 0
            while common < min(len(loops), len(up_loops)) and loops[common] == up_loops[common]:
                common += 1
            for up_index, complete, _ in self.slots[up]:
                n = min(common, len(index), len(up_index))
                if up_index[:n] == index[:n]:
                    keys.append(instance_key(up, up_index) + ("" if complete else "[*]"))
        return keys

    def _open(self, inst: Instance) -> bool:
        """A placeholder whose items producer has settled: expand its loop, or settle it as the producer did."""
        for d in inst.data_deps:
            up = self.instances[d]
            if up.status not in OK:
                word = "upstream_skipped" if up.status == "SKIPPED" else "upstream_failed"
                return self.settle(inst, "SKIPPED", word, f"{d} is {up.status.lower()}")
        self._expand()
        left = self.instances.get(inst.key)
        if left is not None and left.status == "PENDING":
            self.settle(left, "FAILED", "bad_items", left.problem or "the loop's items could not be read")
        return True

    # ------------------------------------------------------------------ main loop
    def run(self) -> str:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._update_store("RUNNING")
        self._write_state("RUNNING", now=True)
        try:
            status = self._loop()
        finally:
            self.close()
        self._write_state(status, now=True)
        self._update_store(status)
        return status

    def request_cancel(self) -> None:
        self.cancel_requested = True
        self.events.put(None)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.request_cancel()

    def _loop(self) -> str:
        while True:
            if self.cancel_requested:
                self._cancel_all()
            else:
                started = self.running()
                self._schedule()
                if self.running() > started:  # record the attempts at once: a runner killed now leaves them known
                    self._write_state("RUNNING")
            self.tick()
            if all(i.status in TERMINAL for i in self.instances.values()):
                return self._final_status()
            self._flush_state()
            try:
                event = self.events.get(timeout=self._timeout())
            except queue.Empty:
                event = None
            while event is not None:
                self._ended(event)
                try:
                    event = self.events.get_nowait()
                except queue.Empty:
                    event = None
            self._write_state("CANCELLING" if self.cancel_requested else "RUNNING")

    def _timeout(self) -> float:
        now = time.time()
        times = [i.retry_at for i in self.instances.values() if i.retry_at]
        if self._state_pending is not None:  # wake to write the state that is due
            times.append(now + self._state_due - time.monotonic())
        return max(0.001, min([self.wait_seconds()] + [t - now for t in times]))

    def _final_status(self) -> str:
        states = [i.status for i in self.instances.values()]
        if self.cancel_requested and "CANCELLED" in states:
            return "CANCELLED"
        if "FAILED" in states:
            return "FAILED"
        return "SUCCEEDED"

    # ------------------------------------------------------------------ scheduling
    def running(self) -> int:
        self._started = {k for k in self._started if k in self.instances and self.instances[k].handle is not None}
        return len(self._started)

    def _schedule(self) -> None:
        self._running_now = self.running()  # within one walk only starts change it
        try:
            self._walk()
        finally:
            self._running_now = None

    def _walk(self) -> None:
        changed = True
        while changed:
            changed = False
            for key in self.order:
                inst = self.instances[key]
                if inst.status == "RUNNING" and inst.retry_at and inst.handle is None:
                    if time.time() >= inst.retry_at and self._has_capacity(inst):
                        inst.retry_at = None
                        self._start(inst)
                    continue
                if inst.status != "PENDING":
                    continue
                if not self._deps_done(inst):
                    continue
                if inst.placeholder:
                    changed = self._open(inst)
                    break  # the instances changed: walk them afresh
                if self._decide(inst):
                    changed = True

    def _deps_done(self, inst: Instance) -> bool:
        """Whether every instance it waits for has settled; those that have stay settled, so each is looked at once."""
        deps = inst.deps
        while inst.deps_settled < len(deps) and self.instances[deps[inst.deps_settled]].status in TERMINAL:
            inst.deps_settled += 1
        return inst.deps_settled == len(deps)

    def _has_capacity(self, inst: Instance) -> bool:
        if (self._running_now if self._running_now is not None else self.running()) >= self.max_running:
            return False
        if inst.loop_slot:
            limit = self.view.groups[inst.loop_slot[0]].get("parallelism")
            if limit and self.loop_running.get(inst.loop_slot, 0) >= limit:
                return False
        return True

    def _decide(self, inst: Instance) -> bool:
        """Settle a ready instance: skip it, serve it from cache, or start it. True if it changed."""
        if inst.awaiting_capacity:  # decided already: it only waits for a free worker
            if not self._has_capacity(inst):
                return False
            inst.awaiting_capacity = False
            self._start(inst)
            return True
        if not inst.is_exit:
            for d in inst.data_deps:
                up = self.instances[d]
                if up.status not in OK:
                    if up.status == "SKIPPED" and up.native != "upstream_failed" and up.step in self.collects[inst.step]:
                        continue
                    word = "upstream_skipped" if up.status == "SKIPPED" else "upstream_failed"
                    return self.settle(inst, "SKIPPED", word, f"{d} is {up.status.lower()}")
            for d in inst.order_deps:
                up = self.instances[d]
                if up.status in ("FAILED", "CANCELLED"):
                    return self.settle(inst, "SKIPPED", "upstream_failed", f"{d} is {up.status.lower()}")
            for group in inst.oneof_deps:
                ups = [self.instances[d] for d in group]
                if not any(u.status in OK for u in ups):
                    bad = next((u for u in ups if u.status != "SKIPPED"), None)
                    return self.settle(inst, "SKIPPED", "upstream_failed" if bad else "upstream_skipped",
                                       f"no branch of {', '.join(group)} ran" if bad is None else
                                       f"{bad.key} is {bad.status.lower()}")
            try:
                holds, group = self.conditions_hold(inst)
            except Exception as exc:
                return self.settle(inst, "FAILED", "condition_error", f"could not evaluate the condition: {exc}")
            if not holds:
                return self.settle(inst, "SKIPPED", "condition_false", f"{group} is false")
        if self._previous and self._continued(inst):
            return True
        if self.view.steps[inst.step]["kind"] == "importer":
            return self._import(inst)
        if self._try_cache(inst):
            return True
        if not self._has_capacity(inst):
            inst.awaiting_capacity = True
            return False
        self._start(inst)
        return True

    def _import(self, inst: Instance) -> bool:
        """An importer runs nothing: its artifact must exist, and its record is written where readers look."""
        try:
            record = self.view.outputs(inst.step, inst.index)
            uri = record["artifacts"]["artifact"]["uri"]
            store = ArtifactStore.for_uri(uri) if uri else None
            if store is None or not store.exists(uri):
                raise ArtifactError(f"step {inst.step!r} imports {uri}, which does not exist; check the URI, or "
                                    "write the artifact there first")
            art = {**record["artifacts"]["artifact"], "digest": store.version(uri)}  # readers' cache keys follow it
            record = {**record, "artifacts": {"artifact": art}}
            self.view.remember_outputs(inst.step, inst.index, record)
        except Exception as exc:
            return self.settle(inst, "FAILED", "import_failed", str(exc).rstrip("."))
        self.store.write_json(self.view.outputs_uri(inst.step, inst.index), {**record, "run_id": self.view.run_id})
        return self.settle(inst, "SUCCEEDED", "imported", f"imported {uri}")

    def _start(self, inst: Instance) -> None:
        inst.attempts += 1
        inst.status, inst.native = "RUNNING", f"attempt {inst.attempts}"
        inst.started_at = inst.started_at or time.time()
        self.start(inst)
        if inst.handle is not None:
            inst.backend_name = str(inst.handle)
            self._started.add(inst.key)
            if self._running_now is not None:
                self._running_now += 1
        if inst.handle is not None and inst.loop_slot:
            self.loop_running[inst.loop_slot] = self.loop_running.get(inst.loop_slot, 0) + 1

    def settle(self, inst: Instance, status: str, native: str, message: str = "") -> bool:
        inst.status, inst.native, inst.message = status, native, message
        inst.finished_at = time.time()
        if not inst.placeholder:
            self.on_settled(inst)
        return True

    # ------------------------------------------------------------------ attempts ending
    def _ended(self, end: AttemptEnd | None) -> None:
        if end is None:
            return
        inst = self.instances[end.key]
        if end.attempt != inst.attempts or inst.handle is None:
            return
        inst.handle, inst.exit_code = None, end.exit_code
        if inst.loop_slot:
            self.loop_running[inst.loop_slot] -= 1
        if self.cancel_requested or inst.stopping:
            inst.stopping = False
            self.settle(inst, "CANCELLED", "cancelled", "the run was cancelled")
            return
        if end.ok:
            try:
                record = self.store.read_json(self.view.outputs_uri(inst.step, inst.index))
            except Exception:
                self.settle(inst, "FAILED", "no_outputs",
                            self.error_message(inst) or "the step ended without writing outputs.json")
                return
            record["run_id"] = self.view.run_id
            self.view.remember_outputs(inst.step, inst.index, record)
            self._store_cache(inst, record)
            self.settle(inst, "SUCCEEDED", end.native or "succeeded")
            return
        reason = end.reason or self.error_message(inst) or f"exited with code {end.exit_code}"
        retry = self.step_settings(inst).get("retry")
        if end.retryable and not self.backend_retries and retry and inst.attempts <= int(retry["max_retries"]):
            delay = min(
                float(retry.get("backoff_seconds", 1.0)) * float(retry.get("backoff_factor", 2.0)) ** (inst.attempts - 1),
                float(retry.get("max_backoff_seconds", 300.0)),
            )
            inst.retry_at = time.time() + delay
            inst.native = f"retrying in {delay:g}s"
            inst.message = f"attempt {inst.attempts} failed: {reason}"
            return
        self.settle(inst, "FAILED", end.native or f"exit code {end.exit_code}", reason)

    def error_message(self, inst: Instance) -> str:
        uri = self.store.step_meta(self.view.pipeline, self.view.run_id, inst.step, inst.index, "error.json")
        try:
            return str(self.store.read_json(uri).get("message", ""))
        except Exception:
            return ""

    def _cancel_all(self) -> None:
        for inst in self.instances.values():
            if inst.handle is not None:
                if not inst.stopping:
                    inst.stopping = True
                    inst.native = "cancelling"
                    self.stop(inst)
            elif inst.status not in TERMINAL or (inst.status == "RUNNING" and inst.retry_at):
                inst.retry_at = None
                self.settle(inst, "CANCELLED", "cancelled", "the run was cancelled")

    # ------------------------------------------------------------------ caching
    def step_settings(self, inst: Instance) -> dict[str, Any]:
        return self.view.steps[inst.step].get("settings") or {}

    def _cache_enabled(self, inst: Instance) -> bool:
        step = self.view.steps[inst.step]
        return self.caching and self.step_settings(inst).get("caching") is not False and step["kind"] != "resource"

    def _cache_parts(self, inst: Instance) -> dict[str, Any]:
        step = self.view.steps[inst.step]
        inputs: dict[str, Any] = {}
        for spec in step["inputs"]:
            if spec.get("value") is None:
                inputs[spec["name"]] = {"default": spec.get("default")}
                continue
            inputs[spec["name"]] = input_part(spec, self.view.value(spec["value"], inst.step, inst.index))
        return material(step, self.step_settings(inst), inputs)

    def _cache_uri(self, inst: Instance, key: str) -> str:
        return self.store.shared_meta("cache", self.view.pipeline, inst.step, key + ".json")

    def _latest_uri(self, inst: Instance) -> str:
        name = "latest" + "".join(f"-{i}" for i in inst.index) + ".json"
        return self.store.shared_meta("cache", self.view.pipeline, inst.step, name)

    def _try_cache(self, inst: Instance) -> bool:
        if self.spec.get("resume"):
            return self._resumed(inst, self.spec["resume"])
        if not self._cache_enabled(inst):
            inst.cache = {"result": "disabled"}
            try:  # recorded all the same: a resumed run reuses a step whose key is unchanged
                inst.cache["key"] = key_of(self._cache_parts(inst))
            except Exception:
                pass
            return False
        try:
            parts = self._cache_parts(inst)
            inst.cache_key = key_of(parts)
            inst.cache_parts = parts
            uri = self._cache_uri(inst, inst.cache_key)
            record = self.store.read_json(uri) if self.store.exists(uri) else None
        except Exception as exc:
            inst.cache = {"result": "miss", "changed": [f"the cache could not be read: {exc}"]}
            return False
        if record is None or not all(self.store.exists(a["uri"]) for a in record.get("artifacts", {}).values()):
            try:
                previous = self.store.read_json(self._latest_uri(inst)) if self.store.exists(self._latest_uri(inst)) else None
            except Exception:
                previous = None
            why = ["a cached artifact was deleted"] if record is not None else changes(previous, parts)
            inst.cache = {"result": "miss", "key": inst.cache_key, "changed": why}
            return False
        record = {k: v for k, v in record.items() if k != "key_parts"}
        self.store.write_json(self.view.outputs_uri(inst.step, inst.index), record)
        self.view.remember_outputs(inst.step, inst.index, record)
        inst.cache = {"result": "hit", "key": inst.cache_key, "from_run": record.get("run_id")}
        return self.settle(inst, "CACHED", "cache_hit", f"outputs of run {record.get('run_id', '?')}")

    def _resumed(self, inst: Instance, resume: dict[str, Any]) -> bool:
        """Serve the instance from the run this one resumes, when it finished there with the same cache key and its
        outputs are still there; otherwise say why it runs again."""
        origin = resume["origin"]

        def again(why: str | list[str]) -> bool:
            inst.cache = {"result": "miss", "key": inst.cache_key, "changed": [why] if isinstance(why, str) else why}
            return False

        if inst.step in resume.get("skip", ()):
            return self.settle(inst, "SKIPPED", "skipped", LEFT_OUT)
        if inst.step in resume.get("rerun", ()):
            return again(f"resumed from {resume.get('from') or inst.step}")
        try:
            parts = self._cache_parts(inst)
            inst.cache_key, inst.cache_parts = key_of(parts), parts
        except Exception as exc:
            return again(f"its cache key could not be made: {exc}")
        if self._origin is None:
            uri = self.store.run_meta(self.view.pipeline, origin, "state.json")
            self._origin = (self.store.read_json(uri) if self.store.exists(uri) else {}).get("steps", {})
        before = self._origin.get(inst.key) or {}
        if before.get("status") not in ("SUCCEEDED", "CACHED"):
            said = {"FAILED": "it failed", "SKIPPED": "it was skipped", "CANCELLED": "it was cancelled",
                    "RUNNING": "it did not finish", "PENDING": "it had not started"}
            return again(f"{said.get(before.get('status', ''), 'it did not run')} in run {origin}")
        old_key = (before.get("cache") or {}).get("key")
        if old_key != inst.cache_key:
            old_uri = self._cache_uri(inst, old_key) if old_key else None
            old = self.store.read_json(old_uri).get("key_parts") if old_uri and self.store.exists(old_uri) else None
            return again(changes(old, parts) if old else f"run {origin} recorded no cache key for it")
        uri = self.store.step_meta(self.view.pipeline, origin, inst.step, inst.index, "outputs.json")
        record = self.store.read_json(uri) if self.store.exists(uri) else None
        if record is None or not all(self.store.exists(a["uri"]) for a in record.get("artifacts", {}).values()):
            return again(f"its outputs in run {origin} are gone")
        self.store.write_json(self.view.outputs_uri(inst.step, inst.index), record)
        self.view.remember_outputs(inst.step, inst.index, record)
        inst.cache = {"result": "hit", "key": inst.cache_key, "from_run": record.get("run_id") or origin}
        return self.settle(inst, "CACHED", "resumed", f"outputs of run {origin}")

    def _store_cache(self, inst: Instance, record: dict[str, Any]) -> None:
        if inst.cache_key and self._cache_enabled(inst):
            self.store.write_json(self._cache_uri(inst, inst.cache_key), {**record, "key_parts": inst.cache_parts})
            self.store.write_json(self._latest_uri(inst), inst.cache_parts)

    # ------------------------------------------------------------------ reporting
    def state(self, status: str) -> dict[str, Any]:
        steps = {
            key: {
                "status": i.status, "native": i.native, "attempts": i.attempts, "started_at": i.started_at,
                "finished_at": i.finished_at, "exit_code": i.exit_code, "message": i.message,
                "backend_name": i.backend_name, **({"cache": i.cache} if i.cache else {}),
                **({"label": i.label} if i.label and i.label != key else {}),
            }
            for key in self.order
            for i in (self.instances[key],)
        }
        failed = [k for k, s in steps.items() if s["status"] == "FAILED"]
        import os

        return {
            "status": status, "native": status.lower(), "pid": os.getpid(), "order": list(self.order),
            "message": f"step {failed[0]} failed: {steps[failed[0]]['message']}" if failed else "",
            "started_at": self.started_at, "finished_at": time.time() if status in FINAL_RUN else None,
            "steps": steps,
        }

    def _write_state(self, status: str, *, now: bool = False) -> None:
        """Write state.json after every change, so a runner killed at any moment leaves its attempts known; past
        1,000 instances, whose state takes a while to write, at most once per ten times as long as the last write
        took (about once a second at 10,000), and always at the end."""
        clock = time.monotonic()
        if not now and len(self.instances) > BATCHED_STATE_ABOVE and clock < self._state_due:
            self._state_pending = status
            return
        self.store.write_json(self.store.run_meta(self.view.pipeline, self.view.run_id, "state.json"), self.state(status))
        spent = time.monotonic() - clock
        self._state_due = time.monotonic() + min(1.0, 9 * spent)
        self._state_pending = None

    def _flush_state(self) -> None:
        if self._state_pending is not None and time.monotonic() >= self._state_due:
            self._write_state(self._state_pending)

    def _update_store(self, status: str) -> None:
        path = self.spec.get("store_path")
        if not path:
            return
        from stackhop.core.store import RunStore  # lazy: sqlite3 only for runs recorded in a local run store

        try:
            RunStore(path).set_status(self.view.run_id, status, finished=status in FINAL_RUN)
        except Exception as exc:  # the state file stays authoritative
            print(f"stackhop: could not update the run store: {exc}", file=sys.stderr)


def _expr_outputs(expr: dict[str, Any]) -> list[dict[str, Any]]:
    if expr["kind"] == "compare":
        return [v for v in (expr["left"], expr["right"]) if v["kind"] == "output"]
    if expr["kind"] == "not":
        return _expr_outputs(expr["operand"])
    return [v for e in expr["operands"] for v in _expr_outputs(e)]


def _topological(instances: dict[str, Instance]) -> list[str]:
    return stable_topological(list(instances), ((d, k) for k, inst in instances.items() for d in inst.deps))
