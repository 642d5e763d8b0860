"""A pipeline called inside another: its steps join the caller's trace under scoped names.

Inlining keeps every backend's contract unchanged (a nested pipeline is just more steps, with
the caller's conditions, loops and `.after()` around them), so caching, status, logs and
retries work per inner step everywhere. The inner pipeline's own defaults (`@pipeline(image=...)`)
apply to its steps before the caller's do.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from stackhop.core import tracing
from stackhop.core.ir_build import returned_outputs
from stackhop.core.validate import value_matches
from stackhop.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from stackhop.core.dsl import PipelineDef

_TRACED = (tracing.TaskOutput, tracing.PipelineParam, tracing.LoopItem, tracing.Task, tracing.NestedTask, tracing.Collected,
            tracing.OneOf)


def call_nested(trace: tracing.Trace, pdef: "PipelineDef", args: tuple[Any, ...], kwargs: dict[str, Any]) -> tracing.NestedTask:
    outer = trace.calling[-1] if trace.calling else trace.pipeline
    where = f"pipeline {pdef.name!r} called from pipeline {outer!r}"
    chain = [trace.pipeline, *trace.calling]
    if pdef.name in chain:
        path = " -> ".join([*chain[chain.index(pdef.name):], pdef.name])
        raise PipelineDefinitionError(
            f"pipeline {pdef.name!r} calls itself ({path}); a pipeline cannot contain itself, so call its steps instead.")
    values = _arguments(pdef, args, kwargs, where)
    scope = trace.unique_name(pdef.name)
    saved = trace._names, trace.scope
    trace._names, trace.scope = {}, f"{trace.scope}/{scope}"
    trace.calling.append(pdef.name)
    start, groups = len(trace.tasks), len(trace.groups)
    rec = trace.open_group("pipeline", pipeline=scope)  # kfp's nested DAG: transparent to every scheduler
    sig = inspect.signature(pdef.fn)
    rec.params = [(p.name, p.type, sig.parameters[p.name].default, v) for p, v in zip(pdef.parameters(), values)]
    try:
        returned = pdef.fn(*values)
    finally:
        trace._names, trace.scope = saved
        trace.calling.pop()
        if trace.stack and trace.stack[-1] is rec:
            trace.close_group(rec)
    inner = trace.tasks[start:]
    if not inner:
        raise PipelineDefinitionError(f"{where} adds no steps; give it at least one step, or call its steps directly.")
    for t in inner:
        t.name = f"{scope}-{t.name}"
        _apply_defaults(t, pdef._defaults)
    for g in trace.groups[groups:]:
        if g.kind == "pipeline" and g is not rec:
            g.pipeline = f"{scope}-{g.pipeline}"
    returns = returned_outputs(pdef.name, returned)
    rec.returns = {k: v for k, v in returns.items() if isinstance(v, tracing.TaskOutput)}
    return tracing.NestedTask(scope, pdef.name, inner, returns)


def _arguments(pdef: "PipelineDef", args: tuple[Any, ...], kwargs: dict[str, Any], where: str) -> list[Any]:
    sig = inspect.signature(pdef.fn)
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError as exc:
        names = ", ".join(sig.parameters) or "none"
        raise PipelineDefinitionError(f"{where}: {exc}; its parameters are {names}.") from None
    values = []
    for p in pdef.parameters():
        default = sig.parameters[p.name].default
        if p.name in bound.arguments:
            value = bound.arguments[p.name]
        elif default is not inspect.Parameter.empty:
            value = default
        else:
            raise PipelineDefinitionError(f"{where} needs parameter {p.name!r}; pass it as {pdef.fn.__name__}({p.name}=...).")
        if not isinstance(value, _TRACED):
            tracing.to_value(value, where=f"{where}, parameter {p.name!r}")
            if value is not None and not value_matches(value, p.type):
                raise PipelineDefinitionError(
                    f"{where}: parameter {p.name!r} is {p.type} but gets {type(value).__name__} {value!r}; pass a {p.type}.")
        values.append(value)
    return values


def _apply_defaults(task: tracing.Task, defaults: dict[str, Any]) -> None:
    for key, value in defaults.items():
        if key == "env":
            task.settings["env"] = {**value, **task.settings.get("env", {})}
        elif key not in task.settings and not (key == "image" and "image_build" in task.settings):
            task.settings[key] = value
