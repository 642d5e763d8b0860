"""`RunHandle` and the run store's readers: one run, or all of them, whatever backend ran them."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

from stackhop.core.adapter import Adapter, BackendRef
from stackhop.core.plugins import adapter_class
from stackhop.core.progress import html_table, shown_in_this_cell
from stackhop.core.resolve import parse_instance_key
from stackhop.core.runs import ArtifactRef, RunState, RunStatus, StepState, StepStatus
from stackhop.core.stack import LoadedConfig, Stack, StackConfig, load_config, load_stack
from stackhop.core.store import RunRecord, RunStore, store_path
from stackhop.errors import ArtifactError, StackhopError

if TYPE_CHECKING:
    from stackhop.core.artifacts import ArtifactStore


def get_run(run_id: str, *, config: str | LoadedConfig | None = None) -> "RunHandle":
    """A handle on any recorded run, from any process."""
    loaded = config if isinstance(config, LoadedConfig) else load_config(config)
    store = RunStore(store_path(loaded.project_dir), create=False)
    return _handle(store.get(run_id), loaded, store)


def runs(pipeline: Any = None, *, stack: str | None = None, status: RunStatus | str | None = None, limit: int = 50,
         config: str | LoadedConfig | None = None) -> list["RunHandle"]:
    """The project's runs, newest first, as handles: of one pipeline (a @pipeline or its name), on one stack, in one
    status. A run whose local runner died is recorded as ended first, as `runs list` does."""
    loaded = config if isinstance(config, LoadedConfig) else load_config(config)
    store = RunStore(store_path(loaded.project_dir), create=False)
    name = getattr(pipeline, "name", pipeline)
    if name is not None and not isinstance(name, str):
        raise StackhopError(f"runs() takes a @pipeline or a pipeline's name, got {type(pipeline).__name__}.")
    wanted = status if isinstance(status, RunStatus) or status is None else RunStatus.parse(status)
    if not isinstance(status, RunStatus) and wanted is RunStatus.UNKNOWN and str(status).upper() != "UNKNOWN":
        raise StackhopError(f"runs(status={status!r}): not a run status; use one of "
                            f"{', '.join(s.value for s in RunStatus)}.")
    found = list_runs(store, pipeline=name, stack=stack, limit=limit if wanted is None else 10_000)
    chosen = [r for r in found if wanted is None or RunStatus.parse(r.status) is wanted][:limit]
    return [_handle(r, loaded, store) for r in chosen]


def _handle(rec: RunRecord, loaded: LoadedConfig, store: RunStore) -> "RunHandle":
    try:
        stk = load_stack(rec.stack, config=loaded)
        if stk.config.adapter != rec.adapter:
            raise StackhopError("stack changed adapter")
    except StackhopError:
        cls = adapter_class(rec.adapter, where=f"run {rec.run_id}")
        stk = Stack(rec.stack, StackConfig(adapter=rec.adapter, artifact_root=rec.artifact_root),
                    loaded.project_dir, rec.stack_source, cls.Settings())
    cls = adapter_class(rec.adapter, where=f"run {rec.run_id}")
    return RunHandle(rec.run_id, rec.pipeline, stk, cls(stk), _ref_of(rec), store)


def _ref_of(rec: RunRecord) -> BackendRef:
    data = dict(rec.backend_ref)
    return BackendRef(data.pop("adapter", rec.adapter), data)


class RunHandle:
    """One run, on whichever backend: status, steps, logs, artifacts, wait and cancel."""

    @property
    def store(self) -> RunStore:
        """The run store that records this run, for reading its record (parameters, times, stack source)."""
        return self._store

    def __init__(self, run_id: str, pipeline: str, stack: Stack, adapter: Adapter, ref: BackendRef, store: RunStore):
        self.run_id = run_id
        self.pipeline = pipeline
        self.stack = stack
        self.adapter = adapter
        self.ref = ref
        self._store = store
        self._runs = adapter if ref.adapter == adapter.name else _adapter_for(ref, stack)
        """Who reads the run: the stack's adapter, or (for an emulated run) the runtime that ran it."""
        self._last: RunState | None = None
        self._shown_live: int | None = None

    def __repr__(self) -> str:
        status = self._last.status.value if self._last else "?"
        return f"<RunHandle {self.run_id} {self.pipeline} on {self.stack.name}: {status}>"

    def _repr_html_(self) -> str | None:
        """What a notebook shows for a handle: the run and every step's status (once: not again under its live view)."""
        if shown_in_this_cell(self):
            return None
        try:
            state = self.refresh()
        except StackhopError:
            state = self._last
        return html_table(self.run_id, self.pipeline, self.stack.name, state)

    def refresh(self) -> RunState:
        state = self._runs.status(self.ref)
        if self._last is None or state.status != self._last.status or state.steps != self._last.steps:
            _record_state(self._store, self.run_id, state)
        self._last = state
        return state

    @property
    def status(self) -> RunStatus:
        return self.refresh().status

    def steps(self) -> dict[str, StepState]:
        return dict(self.refresh().steps)

    def wait(
        self, timeout: float | None = None, *, on_update: Callable[[RunState], None] | None = None
    ) -> RunStatus:
        """Block until the run ends. Ctrl-C cancels the run, waits for that, then re-raises."""
        deadline = time.time() + timeout if timeout else None
        delay, longest = self._runs.poll_seconds
        try:
            while True:
                state = self.refresh()
                if on_update:
                    on_update(state)
                if state.status.terminal:
                    return state.status
                if deadline and time.time() > deadline:
                    raise TimeoutError(f"run {self.run_id} is still {state.status.value} after {timeout}s")
                time.sleep(delay)
                delay = min(delay * 1.5, longest)
        except KeyboardInterrupt as exc:
            print(f"stackhop: interrupted; cancelling run {self.run_id}", file=sys.stderr)
            self.cancel()
            self.wait(timeout=60, on_update=on_update)
            print(f"stackhop: run {self.run_id} {self._last.status.value if self._last else 'CANCELLED'}", file=sys.stderr)
            exc.run_id = self.run_id  # type: ignore[attr-defined]
            raise

    def cancel(self) -> None:
        self._runs.cancel(self.ref)

    def logs(self, step: str) -> str:
        """The log of one step, or loop iteration by index (`train[2]`) or by item (`train[lr=0.05]`), of this run.

        A loop step named without an index gives every iteration's log, each line prefixed with the iteration; a
        step served from the cache gives the log of the run that made its outputs, after a line that says so."""
        steps = self.steps()
        if step not in steps:
            step = next((key for key, s in steps.items() if s.label and s.label == step), step)
        iterations = [k for k in steps if "[" in k and k.split("[", 1)[0] == step] if step not in steps else []
        if iterations:
            return "".join(self._prefixed(k, steps[k]) for k in iterations)
        if step not in steps:
            shown = ", ".join(list(steps)[:12]) + (" ..." if len(steps) > 12 else "")
            raise ArtifactError(f"run {self.run_id} has no step {step!r}; its steps are {shown or 'none yet'}.")
        if step.endswith("[*]"):  # a loop over a step's output that never got its items
            return f"{step} stands for the iterations of a loop whose items never arrived; nothing of it ran.\n"
        origin = (steps[step].cache or {}).get("from_run") if steps[step].status is StepStatus.CACHED else None
        if origin and origin != self.run_id:
            return self._cached_log(step, origin)
        return self._runs.logs(self.ref, step)

    def follow_logs(self, step: str, *, poll: float | None = None) -> Iterator[str]:
        """The step's log as it grows: what is there, then each new part, until the step (or the run) has ended.
        A backend that keeps a step's log only once it ended gives it then."""
        printed = ""
        wait = poll if poll is not None else self._runs.poll_seconds[0]
        while True:
            state = self.refresh()
            ended = state.status.terminal or (step in state.steps and state.steps[step].status.terminal)
            try:
                text = self.logs(step)
            except ArtifactError:  # the run has not reached the step yet
                if ended:
                    raise
                time.sleep(wait)
                continue
            if text.startswith(printed):
                if len(text) > len(printed):
                    yield text[len(printed):]
            else:  # the backend replaced a placeholder ("no log stored yet") with the log itself
                yield "\n" + text
            printed = text
            if ended:
                return
            time.sleep(wait)

    def metrics(self) -> dict[str, float]:
        """The numbers this run logged: each Metrics artifact's entries (`evaluate.metrics.accuracy`) and each int or
        float a step returned (`train.output`)."""
        from stackhop.core.run_metrics import metrics_of

        return metrics_of(self.artifacts())

    def _prefixed(self, key: str, state: StepState) -> str:
        name = state.label or key
        text = self.logs(key)
        return "".join(f"{name} | {line}" for line in text.splitlines(keepends=True)) + ("" if text.endswith("\n") or
                                                                                         not text else "\n")

    def _cached_log(self, step: str, origin: str) -> str:
        note = f"stackhop: {step} was served from the cache; its log from run {origin}, which made its outputs:\n"
        try:
            rec = self._store.get(origin)
        except StackhopError:
            return f"stackhop: {step} was served from the cache; run {origin}, which made its outputs, is no longer recorded.\n"
        made = RunHandle(rec.run_id, rec.pipeline, self.stack, self.adapter, _ref_of(rec), self._store)
        try:
            return note + made.logs(step)
        except StackhopError as exc:
            return note + f"(not readable: {exc})\n"

    @property
    def stack_store(self) -> "ArtifactStore":
        """The artifact store the run wrote to."""
        from stackhop.core.artifacts import ArtifactStore

        return ArtifactStore(self.store.get(self.run_id).artifact_root or self.stack.artifact_root)

    def artifacts(self) -> list[ArtifactRef]:
        return self._runs.artifacts(self.ref)

    @property
    def reader(self) -> Adapter:
        """Who reads the run: the stack's adapter, or (for an emulated run) the runtime that ran it."""
        return self._runs

    def resume(self, pipeline: Any = None, *, from_step: str | None = None, skip: list[str] | None = None,
               parameters: dict[str, Any] | None = None, wait: bool = True, progress: bool | None = None
               ) -> "RunHandle":
        """A new run of the pipeline as its code is now, reusing each step that finished here with an unchanged
        cache key; `from_step` and everything downstream of it run again, `skip` steps (and what reads them) are
        left out. The new run names this one its origin.
        `pipeline` is loaded from the file the run recorded unless given (a notebook's pipeline has no file)."""
        from stackhop.core.resume import resume  # lazy: only resuming needs it

        return resume(self, pipeline=pipeline, from_step=from_step, skip=skip, parameters=parameters, wait=wait,
                      progress=progress)

    def artifact(self, step: str, output: str) -> ArtifactRef:
        """`step` is a step, an iteration by index (`train[2]`) or by item (`train[lr=0.05]`)."""
        found = [a for a in self.artifacts() if a.step == step and a.output == output]
        if not found and "[" in step:
            by_label = {s.label: key for key, s in self.steps().items() if s.label}
            found = [a for a in self.artifacts() if a.step == by_label.get(step) and a.output == output]
        if not found:
            have = sorted({f"{a.step}.{a.output}" for a in self.artifacts()})
            raise ArtifactError(
                f"run {self.run_id} has no output {output!r} of step {step!r}"
                + (f"; it has {', '.join(have)}." if have else " (no step has finished yet).")
            )
        return found[0]

    @property
    def outputs(self) -> dict[str, ArtifactRef]:
        """What the pipeline returned, by name, each read like `handle.outputs["model"].load()`.

        Only outputs whose step has finished are here: all of them once the run succeeded."""
        declared = self._store.get(self.run_id).outputs
        if not declared:
            return {}
        artifacts = self.artifacts()
        found = {(a.step, a.output): a for a in artifacts}
        out: dict[str, ArtifactRef] = {}
        for name, o in declared.items():
            if o.get("kind") == "collected":  # every iteration's value, in iteration order
                runs = sorted(((parse_instance_key(a.step)[1], a) for a in artifacts
                               if a.step.split("[", 1)[0] == o["step"] and a.output == o["output"]), key=lambda x: x[0])
                if runs or self.status == RunStatus.SUCCEEDED:
                    out[name] = ArtifactRef(uri="", type="list", step=o["step"], output=o["output"],
                                            value=[a.value for _, a in runs])
                continue
            sources = [tuple(x) for x in o.get("sources", [[o["step"], o["output"]]])]
            ran = next((found[x] for x in sources if x in found), None)  # a OneOf: the branch that ran
            if ran is not None:
                out[name] = ran
        return out

    @property
    def failed(self) -> bool:
        return (self._last or self.refresh()).status == RunStatus.FAILED

    def state(self) -> RunState:
        return self.refresh()


def _adapter_for(ref: BackendRef, stack: Stack) -> Adapter:
    cls = adapter_class(ref.adapter, where=f"stack {stack.name!r}")
    return cls(Stack(stack.name, StackConfig(adapter=ref.adapter, artifact_root=stack.artifact_root),
                     stack.project_dir, stack.source, cls.Settings()))


def _record_state(store: RunStore, run_id: str, state: RunState) -> None:
    store.set_status(
        run_id, state.status.value, finished=state.status.terminal, message=state.message,
        steps={k: {"status": v.status.value, "native": v.native,
                   **({"from_run": v.cache["from_run"]} if v.cache and v.cache.get("from_run") else {})}
               for k, v in state.steps.items()},
    )


def list_runs(store: RunStore, *, pipeline: str | None = None, stack: str | None = None, limit: int = 50) -> list[RunRecord]:
    """The store's runs, newest first; an unfinished one whose end this machine can see (its local
    runner died) is recorded as it ended first, so a listing never shows a dead run as RUNNING."""
    records = store.list(pipeline=pipeline, stack=stack, limit=limit)
    out = []
    for rec in records:
        if not RunStatus.parse(rec.status).terminal:
            try:
                runs = rec.backend_ref.get("adapter", rec.adapter)
                state = adapter_class(runs, where=f"run {rec.run_id}").settled_offline(rec.backend_ref)
            except (StackhopError, OSError, ValueError):  # the listing stands; `runs show` reports the problem
                state = None
            if state is not None:
                _record_state(store, rec.run_id, state)
                rec = store.get(rec.run_id)
        out.append(rec)
    return out


def refresh_unfinished(records: list[RunRecord], store: RunStore, *, seconds: float,
                       config: str | LoadedConfig | None = None) -> list[RunRecord]:
    """Ask the backends of the unfinished runs for their status, in parallel, for at most `seconds`; a run that
    did not answer in time keeps its record, whose `seen_at` says when it was last seen."""
    import threading

    unfinished = [r for r in records if not RunStatus.parse(r.status).terminal]
    if not unfinished:
        return records
    loaded = config if isinstance(config, LoadedConfig) else load_config(config)

    def ask(rec: RunRecord) -> None:
        try:
            _handle(rec, loaded, store).refresh()
        except (StackhopError, OSError):
            pass  # unreachable or misconfigured: the listing shows when it was last seen

    threads = [threading.Thread(target=ask, args=(r,), daemon=True, name=f"stackhop-refresh-{r.run_id}")
               for r in unfinished]  # daemons: a backend that hangs must not hold the command past `seconds`
    for t in threads:
        t.start()
    deadline = time.monotonic() + seconds
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return [store.get(r.run_id) if r in unfinished else r for r in records]


def project_store(config: str | LoadedConfig | None = None, *, create: bool = False) -> RunStore:
    """The run store of the project found from here (or from `config`); reading it creates nothing."""
    loaded = config if isinstance(config, LoadedConfig) else load_config(config)
    return RunStore(store_path(loaded.project_dir), create=create)
