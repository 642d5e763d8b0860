"""`run()`, `compile()` and `explain()`: the same calls whatever backend the stack names."""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path
from typing import Any, Callable

from stackhop.core.adapter import Adapter, BackendRef, CodeRef, Compiled, Note, RunRequest
from stackhop.core.ir import Pipeline
from stackhop.core.runs import RunState, RunStatus
from stackhop.core.cache_key import explain_code
from stackhop.core.capabilities import check_capabilities, required_capabilities
from stackhop.core.code_by_value import image_python_mismatch
from stackhop.core.code_shipping import code_mode, code_ref, needs_source_tree
from stackhop.core.dsl import PipelineDef
from stackhop.core.handles import RunHandle, get_run, list_runs, project_store
from stackhop.core.import_guard import refuse_run
from stackhop.core.parameters import resolve_parameters
from stackhop.core.plugins import adapter_class, emulation_runtime, plugin_manager
from stackhop.core.progress import auto_view
from stackhop.core.stack import LoadedConfig, Stack, apply_stack, load_stack
from stackhop.core.store import RunRecord, RunStore
from stackhop.core.validate import validate
from stackhop.errors import CapabilityError, ConfigError, StackhopError

__all__ = ["RunHandle", "check_capabilities", "code_mode", "code_ref", "compile", "explain", "get_run", "list_runs",
           "needs_source_tree", "new_run_id", "project_store", "required_capabilities", "resolve_parameters", "run",
           "to_ir"]


def to_ir(pipeline: Any) -> tuple[Pipeline, Path | None]:
    """Accept a @pipeline definition or an IR; return the IR and the code's source root."""
    if isinstance(pipeline, PipelineDef):
        return pipeline.build(), pipeline.source_root
    if isinstance(pipeline, Pipeline):
        validate(pipeline)
        return pipeline, None
    raise StackhopError(
        f"run() takes a function decorated with @pipeline (or a stackhop IR), got {type(pipeline).__name__}."
    )


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def _prepare(ir: Pipeline, root: Path | None, stack: str | Stack | None, config: Any, *, build: bool = False
             ) -> tuple[Pipeline, Stack, Adapter, list[str]]:
    """The IR as the stack runs it. `build=True` first builds the images the stack's builder can make."""
    stk = stack if isinstance(stack, Stack) else load_stack(stack, config=config)
    effective = apply_stack(ir, stk)
    validate(effective)
    cls = adapter_class(stk.config.adapter, where=f"stack {stk.name!r}")
    warnings = [*stk.warnings, *check_capabilities(effective, stk, cls)]
    adapter = cls(stk)
    warnings += adapter.notes_for(effective)
    warnings += [_packages_warning(ir.name, s) for s in effective.steps if s.python is not None and s.python.packages]
    if cls.uses_images:
        for s in effective.steps:
            image = s.settings.image or (s.settings.image_build.parent_image if s.settings.image_build else None)
            why = image_python_mismatch(s.python, image) if s.python else None
            if why:
                raise CapabilityError(f"pipeline {ir.name!r}, step {s.name!r} {why}")
    if cls.uses_images and any(s.settings.image or s.settings.image_build for s in effective.steps):
        prepared = plugin_manager().hook.stackhop_prepare_images(ir=effective, stack=stk, root=root, build=build)
        if prepared is None:
            raise ConfigError(f"pipeline {ir.name!r} runs steps in images, and no installed plugin resolves them; "
                              "reinstall stackhop, whose images plugin does.")
        effective, image_warnings = prepared
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
    raw, root = to_ir(pipeline)
    ir, stk, adapter, _warnings = _prepare(raw, root, stack, config)
    out = adapter.explain(ir)
    if adapter.uses_images:
        for answer in plugin_manager().hook.stackhop_explain_images(ir=apply_stack(raw, stk), stack=stk, root=root):
            for step, lines in answer.items():
                out[step] = [*lines, *out.get(step, [])]
    for step, line in explain_code(ir).items():
        out[step] = [*out.get(step, []), line]
    for s in ir.steps:
        if s.python is not None and s.python.packages:
            out[s.name] = [*out.get(s.name, []), "warning: " + _packages_warning(ir.name, s)]
    return out


def _packages_warning(pipeline: str, step: Any) -> str:
    return (f"pipeline {pipeline!r}, step {step.name!r} installs packages_to_install "
            f"({', '.join(step.python.packages)}) when it starts, so its environment is not reproducible (the index "
            "may serve other versions, or be unreachable); bake them into the step's image for production.")


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
    _resume: dict[str, Any] | None = None,
) -> "RunHandle":
    """Compile the pipeline for the stack, submit it, and (by default) wait for it to finish.

    Returns the handle either way; a failed run is a FAILED status, not an exception.
    `emulate=True` executes the compiled backend document on this machine instead of submitting it.
    When the stack has an image builder, images that steps build from ImageSettings are built (or
    found unchanged in the registry) first, and the run uses them by digest.
    While waiting, step statuses are shown live (a table in a terminal, HTML in Jupyter, a line
    per change elsewhere) unless `progress=False` or `on_update` is given.
    """
    refuse_run()
    raw, root = to_ir(pipeline)
    ir, stk, adapter, warnings = _prepare(raw, root, stack, config, build=not emulate)
    for w in warnings:
        print(f"{'note' if isinstance(w, Note) else 'warning'}: {w}", file=sys.stderr)
    params = resolve_parameters(ir, parameters, from_strings=_parameters_are_strings)
    if _resume and not emulate:  # an emulated run is scheduled here, which resumes it step by step
        ir = adapter.for_resume(ir, _resume)
    run_id = run_id or new_run_id()
    code = _code or code_ref(root, stk, adapter, code_mode(apply_stack(raw, stk), adapter), ir)
    compiled = adapter.compile(ir)
    store = RunStore(stk.store_path)
    import json

    request = RunRequest(run_id, params, stk.artifact_root, code, cache, str(stk.store_path), json.loads(ir.to_json()),
                         resume=_resume)
    record = RunRecord(
        run_id=run_id, pipeline=ir.name, stack=stk.name, adapter=adapter.name, status=RunStatus.PENDING.value,
        created_at=time.time(), finished_at=None, parameters=params, backend_ref={},
        ir_digest=raw.digest(),  # the pipeline as written: the same on every stack it is promoted to
        artifact_root=stk.artifact_root, stack_source=stk.source, message="", steps={},
        outputs={o.name: {"step": o.sources[0].step, "output": o.sources[0].output, "type": o.type,
                          **({"kind": o.value.kind, "sources": [[x.step, x.output] for x in o.sources]}
                             if o.value.kind != "output" else {})} for o in ir.outputs},
        origin_run_id=(_resume or {}).get("origin", ""), source=_source(pipeline),
    )
    if emulate and adapter.emulator is None:
        raise CapabilityError(f"stack {stk.name!r}: adapter {adapter.name!r} cannot emulate its compiled document; "
                              "run without --emulate.")
    store.add(record)
    try:
        ref = _emulate(adapter, compiled, request) if emulate else adapter.submit(compiled, request)
    except BaseException as exc:
        store.set_status(run_id, RunStatus.FAILED.value, finished=True, message=f"submit failed: {exc}")
        raise
    store.set_status(run_id, RunStatus.PENDING.value, backend_ref={"adapter": ref.adapter, **ref.data})
    handle = RunHandle(run_id, ir.name, stk, adapter, ref, store)
    view = None
    if on_update is None and progress is not False:
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


def _source(pipeline: Any) -> dict[str, Any]:
    """Where a @pipeline is defined, for `runs resume` to load it again as the code is now."""
    import inspect

    if not isinstance(pipeline, PipelineDef):
        return {}
    try:
        return {"file": str(Path(inspect.getsourcefile(pipeline.fn) or "").resolve()), "name": pipeline.fn.__name__}
    except (TypeError, OSError):
        return {}


def _emulate(adapter: Adapter, compiled: Compiled, request: RunRequest) -> BackendRef:
    """Emulation is chosen here, once: the run is then a local run of the document, watched like any other."""
    adapter.stage(compiled, request)
    return emulation_runtime()(compiled, request)


