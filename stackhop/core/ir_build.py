"""Trace a pipeline definition and turn the trace into a validated IR."""

from __future__ import annotations

import inspect
import reprlib
from typing import TYPE_CHECKING, Any

import pydantic

from stackhop.core import ir, tracing
from stackhop.core.user_frames import located
from stackhop.core.validate import validate
from stackhop.errors import PipelineDefinitionError, StackhopError, UserCodeError

if TYPE_CHECKING:
    from stackhop.core.dsl import PipelineDef


def build_ir(pdef: "PipelineDef") -> ir.Pipeline:
    params = pdef.parameters()
    try:
        with tracing.trace(pdef.name) as trace:
            returned = pdef.fn(*params)
    except StackhopError:
        raise
    except (Exception, SystemExit) as exc:
        at, details = located(exc)
        what = f"called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else f"raised {type(exc).__name__}: {exc}"
        raise UserCodeError(f"pipeline {pdef.name!r} {what}{at} while it was traced; fix the pipeline function "
                            "(it runs once, to record its steps, and must not exit).", details) from exc
    where = f"pipeline {pdef.name!r}"
    sig = inspect.signature(pdef.fn)
    parameters = []
    for p in params:
        default = sig.parameters[p.name].default
        has_default = default is not inspect.Parameter.empty
        if has_default:
            tracing.to_value(default, where=f"{where}, parameter {p.name!r} (its default)")
        parameters.append(
            dict(name=p.name, type=p.type, default=default if has_default else None, has_default=has_default)
        )
    groups = [_group(trace, g, where) for g in trace.groups]
    steps = [_step(t, where) for t in trace.tasks]
    data = dict(
        name=pdef.name,
        description=pdef.description,
        parameters=parameters,
        steps=steps,
        groups=groups,
        defaults=pdef._defaults,
        outputs=pipeline_outputs(pdef.name, returned),
    )
    pipeline = construct(ir.Pipeline, data, where)
    validate(pipeline)
    return pipeline


def returned_outputs(pipeline: str, returned: Any) -> dict[str, tracing.TaskOutput | tracing.Collected | tracing.OneOf]:
    """What a pipeline function returned, by name: a step output (`output`), a dict or a NamedTuple of them."""
    if returned is None:
        return {}
    if isinstance(returned, tuple) and hasattr(returned, "_fields"):
        items: dict[Any, Any] = dict(zip(returned._fields, returned))
    elif isinstance(returned, dict):
        items = dict(returned)
    else:
        items = {"output": returned}
    out = {}
    for name, value in items.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise PipelineDefinitionError(
                f"pipeline {pipeline!r} returns an output named {name!r}; name pipeline outputs with Python identifiers.")
        if isinstance(value, (tracing.Task, tracing.NestedTask)):
            value = value.output
        if not isinstance(value, (tracing.TaskOutput, tracing.Collected, tracing.OneOf)):
            what = "it" if name == "output" and not isinstance(returned, (dict, tuple)) else f"output {name!r}"
            raise PipelineDefinitionError(
                f"pipeline {pipeline!r} returns {reprlib.repr(value)} as {what}; a pipeline returns step outputs "
                "(`return train.output`, a dict or a NamedTuple of them), so pass other values to a step.")
        out[name] = value
    return out


def pipeline_outputs(pipeline: str, returned: Any) -> list[dict[str, Any]]:
    out = []
    for name, v in returned_outputs(pipeline, returned).items():
        first = v.output if isinstance(v, tracing.Collected) else v.outputs[0] if isinstance(v, tracing.OneOf) else v
        type_name = "list" if isinstance(v, tracing.Collected) else first.type
        out.append({"name": name, "type": type_name,
                    "value": tracing.to_value(v, where=f"pipeline {pipeline!r}, output {name!r}").model_dump()})
    return out


def _group(trace: tracing.Trace, g: tracing.GroupRec, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": g.id, "kind": g.kind, "parent": g.parent.id if g.parent else None}
    if g.kind == "condition":
        out["condition"] = tracing.to_expr(g.condition, where=f"{where}, {g.id}").model_dump()
    elif g.kind == "parallel_for":
        if isinstance(g.items, tracing.PipelineParam):
            out["items"] = {"param": g.items.name}
        elif isinstance(g.items, tracing.TaskOutput):
            out["items"] = {"output": {"kind": "output", "step": g.items.task.name, "output": g.items.name}}
        elif isinstance(g.items, tracing.LoopItem):
            out["items"] = {"item": {"kind": "loop_item", "loop": g.items.group.id, "field": g.items.field}}
        else:
            items = [tracing.to_value(i, where=f"{where}, {g.id}") for i in g.items]
            if not all(isinstance(i, ir.Const) for i in items):
                raise PipelineDefinitionError(
                    f"{where}: ParallelFor items must be constants; to loop over a list known only at run time, loop over "
                    "the step output or the list parameter that holds it (`ParallelFor(make_configs().output)`)."
                )
            out["items"] = {"static": [i.value for i in items]}
        out["parallelism"] = g.parallelism
        if g.key is not None:
            out["key"] = g.key
    elif g.kind == "pipeline":
        out["pipeline"] = g.pipeline
        params = []
        for name, type_name, default, value in g.params:
            has_default = default is not inspect.Parameter.empty
            params.append({"name": name, "type": type_name, "default": default if has_default else None,
                           "has_default": has_default, "value": tracing.to_value(value, where=f"{where}, {g.id}").model_dump()})
        if params:
            out["params"] = params
        if g.returns:
            out["returns"] = {k: {"kind": "output", "step": v.task.name, "output": v.name} for k, v in g.returns.items()}
    elif g.kind == "exit_handler":
        assert g.exit_task is not None
        if g.exit_task.group is not g.parent:
            raise PipelineDefinitionError(
                f"{where}: exit step {g.exit_task.name!r} must be created right before `with ExitHandler(...)`, "
                "outside the handler's body."
            )
        out["exit_step"] = g.exit_task.name
    return out


def _step(t: tracing.Task, where: str) -> dict[str, Any]:
    swhere = f"{where}, step {t.name!r}"
    inputs = []
    for name, (type_name, as_value, default, has_default) in t.input_types.items():
        value = t.inputs.get(name)
        inputs.append(
            dict(
                name=name,
                type=type_name,
                value=tracing.to_value(value, where=f"{swhere}, input {name!r}").model_dump() if name in t.inputs else None,
                default=default,
                has_default=has_default,
                as_value=as_value,
                **({"is_list": True} if name in t.list_inputs else {}),
            )
        )
    outputs = [dict(name=n, type=ty, from_return=fr, **({"materializer": t.materializers[n]} if n in t.materializers else {}),
                    **({"item_type": t.item_types[n]} if n in t.item_types else {}))
               for n, (ty, fr) in t.output_types.items()]
    data: dict[str, Any] = dict(
        name=t.name,
        kind=t.kind,
        display_name=t.display_name,
        inputs=inputs,
        outputs=outputs,
        after=[a.name for a in t.after_tasks],
        group=t.group.id if t.group else None,
        settings=t.settings,
        secrets=t.secrets,
        allow_pickle=t.allow_pickle,
    )
    if t.python:
        data["python"] = t.python
    if t.container:
        c = t.container
        data["container"] = {"image": c["image"], "command": c["command"], "args": c["args"]}
    if t.resource:
        data["resource"] = t.resource
    if t.fail:
        data["fail"] = t.fail
    if t.importer:
        data["importer"] = t.importer
    return data


def construct(model: type[pydantic.BaseModel], data: Any, where: str) -> Any:
    """Build a pydantic model, turning its error into one sentence that names the field."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise PipelineDefinitionError(f"{where}: {describe_pydantic_error(exc, data)}") from None


def describe_pydantic_error(exc: pydantic.ValidationError, data: Any = None) -> str:
    err = exc.errors()[0]
    loc = list(err["loc"])
    label = _readable_loc(loc, data)
    msg = err["msg"].removeprefix("Value error, ")
    return f"{label}: {msg}" + (f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else "") + "."


def _readable_loc(loc: list[Any], data: Any) -> str:
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int) and isinstance(node, list) and key < len(node):
            node = node[key]
            name = node.get("name") if isinstance(node, dict) else None
            parts[-1:] = [f"{parts[-1] if parts else ''}[{name or key}]"]
            continue
        parts.append(str(key))
        node = node.get(key) if isinstance(node, dict) else None
    return ".".join(parts) or "value"
