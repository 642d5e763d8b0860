"""`run()`, `compile()` and `RunHandle`: the same calls whatever backend the stack names."""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path
from typing import Any, Callable

from stackhop.core.adapter import Adapter, BackendRef, Capability, CodeRef, Compiled, Note, RunRequest
from stackhop.core.ir import Pipeline
from stackhop.core.runs import ArtifactRef, RunState, RunStatus, StepState
from stackhop.core.stack import LoadedConfig, Stack, apply_stack, load_stack
from stackhop.core.store import RunRecord, RunStore
from stackhop.errors import ArtifactError, CapabilityError, ParameterError, StackhopError


def to_ir(pipeline: Any) -> tuple[Pipeline, Path | None]:
    """Accept a @pipeline definition or an IR; return the IR and the code's source root."""
    from stackhop.core.dsl import PipelineDef

    if isinstance(pipeline, PipelineDef):
        return pipeline.build(), pipeline.source_root
    if isinstance(pipeline, Pipeline):
        from stackhop.core.validate import validate

        validate(pipeline)
        return pipeline, None
    raise StackhopError(
        f"run() takes a function decorated with @pipeline (or a stackhop IR), got {type(pipeline).__name__}."
    )


def required_capabilities(ir: Pipeline) -> dict[Capability, list[str]]:
    """Which steps need which backend feature.

    An exit handler is needed by its handler step, not by the body it guards, so errors and
    warnings about it name the step the user passed to `ExitHandler(...)`.
    """
    needs: dict[Capability, list[str]] = {}
    groups = {g.id: g for g in ir.groups}

    def need(cap: Capability, step: str) -> None:
        needs.setdefault(cap, [])
        if step not in needs[cap]:
            needs[cap].append(step)

    for s in ir.steps:
        for g in ir.group_chain(s.group):
            if g.kind != "exit_handler":
                need({"condition": Capability.CONDITIONS, "parallel_for": Capability.PARALLEL_FOR}[g.kind], s.name)
        st = s.settings
        if st.retry and st.retry.max_retries > 0:
            need(Capability.RETRIES, s.name)
        if st.timeout_seconds:
            need(Capability.TIMEOUTS, s.name)
        if s.secrets:
            need(Capability.SECRETS, s.name)
        if st.resources and st.resources.accelerator:
            need(Capability.GPU, s.name)
        if s.kind == "resource":
            need(Capability.RESOURCE_OPS, s.name)
        if s.kind == "container":
            need(Capability.CONTAINER_STEPS, s.name)
        if st.node_selector:
            need(Capability.NODE_SELECTORS, s.name)
        if st.tolerations:
            need(Capability.TOLERATIONS, s.name)
    for g in groups.values():
        if g.kind == "exit_handler" and g.exit_step:
            need(Capability.EXIT_HANDLER, g.exit_step)
    return needs


def check_capabilities(ir: Pipeline, stack: Stack, adapter_cls: type[Adapter]) -> list[str]:
    """Raise for the first unsupported feature; return warnings for features the backend ignores."""
    from stackhop.core.plugins import adapters

    warnings = []
    for cap, steps in required_capabilities(ir).items():
        if cap in adapter_cls.capabilities:
            continue
        if cap in adapter_cls.ignored:
            warnings.append(f"stack {stack.name!r} ({adapter_cls.name}) ignores {cap.value} on step(s) {', '.join(steps)}.")
            continue
        others = sorted(n for n, c in adapters().items() if cap in c.capabilities)
        where = ", ".join(others) if others else "none of the installed adapters"
        role = " (the exit handler)" if cap is Capability.EXIT_HANDLER else ""
        raise CapabilityError(
            f"pipeline {ir.name!r}, step {steps[0]!r}{role} needs {cap.value}, which stack {stack.name!r} "
            f"(adapter {adapter_cls.name!r}) does not support; adapters that do: {where}."
        )
    return warnings


def resolve_parameters(ir: Pipeline, given: dict[str, Any] | None, *, from_strings: bool = False) -> dict[str, Any]:
    """Defaults plus given values, type-checked; CLI strings are parsed per the declared type."""
    import json

    import reprlib

    from stackhop.core.checks import json_problem
    from stackhop.core.validate import value_matches

    given = dict(given or {})
    out: dict[str, Any] = {}
    known = {p.name: p for p in ir.parameters}
    for name in given:
        if name not in known:
            raise ParameterError(
                f"pipeline {ir.name!r} has no parameter {name!r}; its parameters are {', '.join(known) or 'none'}."
            )
    for p in ir.parameters:
        if p.name not in given:
            if not p.has_default:
                raise ParameterError(
                    f"pipeline {ir.name!r} needs parameter {p.name!r} ({p.type}); pass it with -p {p.name}=<value>."
                )
            out[p.name] = p.default
            continue
        value = given[p.name]
        if from_strings and isinstance(value, str) and p.type != "str":
            try:
                value = {"int": int, "float": float}.get(p.type, json.loads)(value)
                if p.type == "bool" and not isinstance(value, bool):
                    raise ValueError
            except (ValueError, RecursionError):
                raise ParameterError(
                    f"pipeline {ir.name!r}: parameter {p.name!r} is {p.type}, and {reprlib.repr(given[p.name])} is not one"
                    + (" (write true or false)." if p.type == "bool" else ".")
                ) from None
        if not value_matches(value, p.type):
            raise ParameterError(
                f"pipeline {ir.name!r}: parameter {p.name!r} is {p.type}, got {type(value).__name__} {reprlib.repr(value)}."
            )
        problem = json_problem(value)
        if problem:
            raise ParameterError(
                f"pipeline {ir.name!r}: parameter {p.name!r} gets {reprlib.repr(value)}, which a run cannot record ("
                + {"non-finite": "NaN and infinity are not JSON", "big-int": "an integer beyond 64 bits"}.get(problem, problem)
                + "); pass a finite number, or a string."
            )
        out[p.name] = float(value) if p.type == "float" else list(value) if p.type == "list" else value
    return out


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def _prepare(ir: Pipeline, root: Path | None, stack: str | Stack | None, config: Any, *, build: bool = False
             ) -> tuple[Pipeline, Stack, Adapter, list[str]]:
    """The IR as the stack runs it. `build=True` first builds the images the stack's builder can make."""
    from stackhop.core.plugins import adapter_class

    stk = stack if isinstance(stack, Stack) else load_stack(stack, config=config)
    effective = apply_stack(ir, stk)
    from stackhop.core.validate import validate

    validate(effective)
    cls = adapter_class(stk.config.adapter, where=f"stack {stk.name!r}")
    warnings = [*stk.warnings, *check_capabilities(effective, stk, cls)]
    adapter = cls(stk)
    warnings += adapter.notes_for(effective)
    if cls.uses_images:
        from stackhop.core.code_by_value import image_python_mismatch

        for s in effective.steps:
            image = s.settings.image or (s.settings.image_build.parent_image if s.settings.image_build else None)
            why = image_python_mismatch(s.python, image) if s.python else None
            if why:
                raise CapabilityError(f"pipeline {ir.name!r}, step {s.name!r} {why}")
    if cls.uses_images and any(s.settings.image or s.settings.image_build for s in effective.steps):
        from stackhop.images.plan import resolve_images

        if build and stk.config.images.builder and any(s.settings.image_build for s in effective.steps):
            from stackhop.images.build import build_images

            for o in build_images(effective, stk, root, lambda line: print(line, file=sys.stderr)):
                print(f"image {o.result}: {o.reference}@{o.digest}", file=sys.stderr)

        effective, image_warnings = resolve_images(effective, stk, root)
        warnings += image_warnings
    return effective, stk, adapter, warnings


def compile(pipeline: Any, stack: str | Stack | None = None, *, config: str | LoadedConfig | None = None) -> Compiled:
    """The backend document for this pipeline on this stack; pure and deterministic."""
    raw, root = to_ir(pipeline)
    ir, _stk, adapter, warnings = _prepare(raw, root, stack, config)
    compiled = adapter.compile(ir)
    return Compiled(compiled.adapter, compiled.files, tuple(warnings) + compiled.notes)


def explain(pipeline: Any, stack: str | Stack | None = None, *, config: str | LoadedConfig | None = None) -> dict[str, list[str]]:
    """Per step, what the backend chose for it and why, and what code its cache key covers."""
    from stackhop.core.cache_key import explain_code

    raw, root = to_ir(pipeline)
    ir, stk, adapter, _warnings = _prepare(raw, root, stack, config)
    out = adapter.explain(ir)
    if adapter.uses_images:
        from stackhop.images.plan import explain_images

        for step, lines in explain_images(apply_stack(raw, stk), stk, root).items():
            out[step] = [*lines, *out.get(step, [])]
    for step, line in explain_code(ir).items():
        out[step] = [*out.get(step, []), line]
    return out


def run(
    pipeline: Any,
    stack: str | Stack | None = None,
    parameters: dict[str, Any] | None = None,
    *,
    wait: bool = True,
    cache: bool = True,
    config: str | LoadedConfig | None = None,
    run_id: str | None = None,
    on_update: Callable[[RunState], None] | None = None,
    emulate: bool = False,
    progress: bool | None = None,
    _parameters_are_strings: bool = False,
    _code: CodeRef | None = None,
) -> "RunHandle":
    """Compile the pipeline for the stack, submit it, and (by default) wait for it to finish.

    Returns the handle either way; a failed run is a FAILED status, not an exception.
    `emulate=True` executes the compiled backend document on this machine instead of submitting it.
    When the stack has an image builder, images that steps build from ImageSettings are built (or
    found unchanged in the registry) first, and the run uses them by digest.
    While waiting, step statuses are shown live (a table in a terminal, HTML in Jupyter, a line
    per change elsewhere) unless `progress=False` or `on_update` is given.
    """
    from stackhop.core.import_guard import refuse_run

    refuse_run()
    raw, root = to_ir(pipeline)
    ir, stk, adapter, warnings = _prepare(raw, root, stack, config, build=not emulate)
    for w in warnings:
        print(f"{'note' if isinstance(w, Note) else 'warning'}: {w}", file=sys.stderr)
    params = resolve_parameters(ir, parameters, from_strings=_parameters_are_strings)
    run_id = run_id or new_run_id()
    code = _code or _code_ref(root, stk, adapter, _code_mode(apply_stack(raw, stk), adapter), ir)
    compiled = adapter.compile(ir)
    store = RunStore(stk.store_path)
    import json

    request = RunRequest(run_id, params, stk.artifact_root, code, cache, str(stk.store_path), json.loads(ir.to_json()))
    record = RunRecord(
        run_id=run_id, pipeline=ir.name, stack=stk.name, adapter=adapter.name, status=RunStatus.PENDING.value,
        created_at=time.time(), finished_at=None, parameters=params, backend_ref={},
        ir_digest=raw.digest(),  # the pipeline as written: the same on every stack it is promoted to
        artifact_root=stk.artifact_root, stack_source=stk.source, message="", steps={},
    )
    store.add(record)
    try:
        ref = adapter.emulate(compiled, request) if emulate else adapter.submit(compiled, request)
    except BaseException as exc:
        store.set_status(run_id, RunStatus.FAILED.value, finished=True, message=f"submit failed: {exc}")
        raise
    store.set_status(run_id, RunStatus.PENDING.value, backend_ref={"adapter": ref.adapter, **ref.data})
    handle = RunHandle(run_id, ir.name, stk, adapter, ref, store)
    view = None
    if on_update is None and progress is not False:
        from stackhop.core.progress import auto_view

        view = auto_view(handle, live=wait)
    if wait:
        try:
            handle.wait(on_update=on_update or (view.update if view else None))
        finally:
            if view:
                view.close(handle)
    elif view:
        view.close(handle)
    return handle


def _code_mode(ir: Pipeline, adapter: Adapter) -> str:
    """How code reaches remote steps: 'git' if any step's image asks for it, 'image' if every step's has it baked in.

    `ir` is the pipeline with the stack applied, before images are resolved to references."""
    if not adapter.uses_images:
        return "artifact_store"
    modes = [s.settings.image_build.code if s.settings.image_build else None for s in ir.steps]
    if "git" in modes:
        return "git"
    return "image" if modes and all(m == "image" for m in modes) else "artifact_store"


def needs_source_tree(ir: Pipeline) -> bool:
    """False when every Python step travels by value from a notebook or REPL and imports no project module.

    A script's steps get the tree like `stackhop run` gives it: their lines may read files beside them."""
    return any(s.python is not None and (not s.python.by_value or s.python.imports_project or s.python.script)
               for s in ir.steps)


def _code_ref(root: Path | None, stack: Stack, adapter: Adapter, mode: str = "artifact_store",
              ir: Pipeline | None = None) -> CodeRef:
    if root is None or (ir is not None and not needs_source_tree(ir)):
        return CodeRef()
    if not adapter.wants_code_archive():
        return CodeRef(source_dir=str(root))
    if mode == "image":
        return CodeRef()
    if mode == "git":
        from stackhop.core.code_git import git_ref

        uri, digest = git_ref(root)
        return CodeRef(archive_uri=uri, digest=digest)
    from stackhop.core.artifacts import ArtifactStore
    from stackhop.core.code_archive import upload

    uri, digest = upload(ArtifactStore(stack.artifact_root), root)
    return CodeRef(archive_uri=uri, digest=digest)


def get_run(run_id: str, *, config: str | LoadedConfig | None = None) -> "RunHandle":
    """A handle on any recorded run, from any process."""
    from stackhop.core.plugins import adapter_class
    from stackhop.core.stack import StackConfig, load_config

    loaded = config if isinstance(config, LoadedConfig) else load_config(config)
    probe = Stack("local", StackConfig(), loaded.project_dir, "built-in")
    store = RunStore(probe.store_path, create=False)
    rec = store.get(run_id)
    try:
        stk = load_stack(rec.stack, config=loaded)
        if stk.config.adapter != rec.adapter:
            raise StackhopError("stack changed adapter")
    except StackhopError:
        cls = adapter_class(rec.adapter, where=f"run {rec.run_id}")
        stk = Stack(rec.stack, StackConfig(adapter=rec.adapter, artifact_root=rec.artifact_root),
                    loaded.project_dir, rec.stack_source, cls.Settings())
    cls = adapter_class(rec.adapter, where=f"run {rec.run_id}")
    ref_data = dict(rec.backend_ref)
    ref = BackendRef(ref_data.pop("adapter", rec.adapter), ref_data)
    return RunHandle(rec.run_id, rec.pipeline, stk, cls(stk), ref, store)


class RunHandle:
    """One run, on whichever backend: status, steps, logs, artifacts, wait and cancel."""

    def __init__(self, run_id: str, pipeline: str, stack: Stack, adapter: Adapter, ref: BackendRef, store: RunStore):
        self.run_id = run_id
        self.pipeline = pipeline
        self.stack = stack
        self.adapter = adapter
        self.ref = ref
        self._store = store
        self._last: RunState | None = None
        self._shown_live: int | None = None

    def __repr__(self) -> str:
        status = self._last.status.value if self._last else "?"
        return f"<RunHandle {self.run_id} {self.pipeline} on {self.stack.name}: {status}>"

    def _repr_html_(self) -> str | None:
        """What a notebook shows for a handle: the run and every step's status (once: not again under its live view)."""
        from stackhop.core.progress import html_table, shown_in_this_cell

        if shown_in_this_cell(self):
            return None
        try:
            state = self.refresh()
        except StackhopError:
            state = self._last
        return html_table(self.run_id, self.pipeline, self.stack.name, state)

    def refresh(self) -> RunState:
        state = self.adapter.status(self.ref)
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
        delay, longest = self.adapter.poll_seconds
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
        self.adapter.cancel(self.ref)

    def logs(self, step: str) -> str:
        """The log of one step (or loop iteration, `train[2]`) of this run, and of no other."""
        steps = self.steps()
        if step not in steps:
            shown = ", ".join(list(steps)[:12]) + (" ..." if len(steps) > 12 else "")
            raise ArtifactError(f"run {self.run_id} has no step {step!r}; its steps are {shown or 'none yet'}.")
        return self.adapter.logs(self.ref, step)

    def artifacts(self) -> list[ArtifactRef]:
        return self.adapter.artifacts(self.ref)

    def artifact(self, step: str, output: str) -> ArtifactRef:
        found = [a for a in self.artifacts() if a.step == step and a.output == output]
        if not found:
            have = sorted({f"{a.step}.{a.output}" for a in self.artifacts()})
            raise ArtifactError(
                f"run {self.run_id} has no output {output!r} of step {step!r}"
                + (f"; it has {', '.join(have)}." if have else " (no step has finished yet).")
            )
        return found[0]

    @property
    def failed(self) -> bool:
        return (self._last or self.refresh()).status == RunStatus.FAILED

    def state(self) -> RunState:
        return self.refresh()


def _record_state(store: RunStore, run_id: str, state: RunState) -> None:
    store.set_status(
        run_id, state.status.value, finished=state.status.terminal, message=state.message,
        steps={k: {"status": v.status.value, "native": v.native} for k, v in state.steps.items()},
    )


def list_runs(store: RunStore, *, pipeline: str | None = None, stack: str | None = None, limit: int = 50) -> list[RunRecord]:
    """The store's runs, newest first; an unfinished one whose end this machine can see (its local
    runner died) is recorded as it ended first, so a listing never shows a dead run as RUNNING."""
    from stackhop.core.plugins import adapter_class

    records = store.list(pipeline=pipeline, stack=stack, limit=limit)
    out = []
    for rec in records:
        if not RunStatus.parse(rec.status).terminal:
            try:
                state = adapter_class(rec.adapter, where=f"run {rec.run_id}").settled_offline(rec.backend_ref)
            except (StackhopError, OSError, ValueError):  # the listing stands; `runs show` reports the problem
                state = None
            if state is not None:
                _record_state(store, rec.run_id, state)
                rec = store.get(rec.run_id)
        out.append(rec)
    return out


def project_store(config: str | LoadedConfig | None = None, *, create: bool = False) -> RunStore:
    """The run store of the project found from here (or from `config`); reading it creates nothing."""
    from stackhop.core.stack import StackConfig, load_config

    loaded = config if isinstance(config, LoadedConfig) else load_config(config)
    return RunStore(Stack("local", StackConfig(), loaded.project_dir, "built-in").store_path, create=create)

