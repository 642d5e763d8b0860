"""Rules every IR must satisfy before any adapter sees it.

Each failure is one sentence naming the pipeline, the step or field, and the fix. The DSL
catches some of these earlier with more context; this module is the authority, because IRs
also arrive as JSON (release manifests) and from hand-written code.
"""

from __future__ import annotations

import re
from stackhop.core import ir
from stackhop.core.graph import stable_topological
from stackhop.core.signatures import value_type_name
from stackhop.errors import ValidationError

STEP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
PIPELINE_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NUMERIC = {"int", "float"}


def validate(p: ir.Pipeline) -> None:
    where = f"pipeline {p.name!r}"
    if not PIPELINE_NAME.match(p.name):
        raise ValidationError(
            f"{where}: the name must be 1-63 lowercase letters, digits and '-', starting with a letter "
            f"and not ending with '-'; e.g. {_suggest_pipeline_name(p.name)!r}."
        )
    _parameters(p, where)
    steps = _names(p, where)
    groups = {g.id: g for g in p.groups}
    for s in p.steps:  # the groups' checks follow steps into their groups
        if s.group is not None and s.group not in groups:
            raise ValidationError(f"{where}, step {s.name!r}: unknown group {s.group!r}.")
    _groups(p, groups, steps, where)
    for s in p.steps:
        _step(p, s, steps, groups, f"{where}, step {s.name!r}")
    _outputs(p, steps, groups, where)
    _cycles(p, where)


def _outputs(p: ir.Pipeline, steps: dict[str, ir.Step], groups: dict[str, ir.Group], where: str) -> None:
    """A pipeline output must exist whenever the run succeeds: it comes from a step outside every If and loop."""
    seen: set[str] = set()
    for out in p.outputs:
        if out.name in seen:
            raise ValidationError(f"{where}: output {out.name!r} is returned twice; give each pipeline output its own name.")
        seen.add(out.name)
        if isinstance(out.value, (ir.CollectedRef, ir.OneOfRef)):
            found = _value_type(p, out.value, steps, groups, None, where, reading=f"output {out.name!r}")
            if isinstance(out.value, ir.CollectedRef) and found != "list":
                raise ValidationError(f"{where}: output {out.name!r} returns {_describe(out.value)}, a {found}; a "
                                      "pipeline returns collected values, so collect a scalar output or return each "
                                      "artifact from a step after the loop.")
            continue
        step = steps.get(out.value.step)
        if step is None or step.output(out.value.output) is None:
            raise ValidationError(f"{where}: output {out.name!r} names {ir.describe_value(out.value, prose=True)}, "
                                  "which does not exist; return an output of a step of this pipeline.")
        kinds = {g.kind: g.id for g in p.group_chain(step.group)}
        if "parallel_for" in kinds:
            raise ValidationError(
                f"{where}: output {out.name!r} comes from step {step.name!r}, which runs once per item of "
                f"{kinds['parallel_for']}; return a step after the loop that combines them instead.")
        if "condition" in kinds:
            raise ValidationError(
                f"{where}: output {out.name!r} comes from step {step.name!r}, which runs only when "
                f"{kinds['condition']} holds, so a run could succeed without it; return a step outside the If instead.")


def _suggest_pipeline_name(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = "p-" + cleaned
    return cleaned[:63].rstrip("-")


def _parameters(p: ir.Pipeline, where: str) -> None:
    seen: set[str] = set()
    for param in p.parameters:
        if not IDENT.match(param.name):
            raise ValidationError(f"{where}: parameter name {param.name!r} must be a Python identifier not starting with '_'.")
        if param.name in seen:
            raise ValidationError(f"{where}: parameter {param.name!r} is declared twice.")
        seen.add(param.name)
        if param.has_default and param.default is not None and not value_matches(param.default, param.type):
            raise ValidationError(
                f"{where}: parameter {param.name!r} is {param.type} but its default {param.default!r} is not."
            )


def _names(p: ir.Pipeline, where: str) -> dict[str, ir.Step]:
    steps: dict[str, ir.Step] = {}
    for s in p.steps:
        if not STEP_NAME.match(s.name):
            raise ValidationError(
                f"{where}: step name {s.name!r} must be 1-63 letters, digits, '_' or '-', starting with a letter."
            )
        if s.name in steps:
            raise ValidationError(
                f"{where}: two steps are named {s.name!r}; give one another name with .set_name(...)."
            )
        steps[s.name] = s
        for kind, items in (("input", s.inputs), ("output", s.outputs)):
            seen: set[str] = set()
            for item in items:
                if not IDENT.match(item.name):
                    raise ValidationError(
                        f"{where}, step {s.name!r}: {kind} name {item.name!r} must be a Python identifier not starting with '_'."
                    )
                if item.name in seen:
                    raise ValidationError(f"{where}, step {s.name!r}: {kind} {item.name!r} is declared twice.")
                seen.add(item.name)
    return steps


def _groups(p: ir.Pipeline, groups: dict[str, ir.Group], steps: dict[str, ir.Step], where: str) -> None:
    for g in p.groups:
        if g.parent is not None and g.parent not in groups:
            raise ValidationError(f"{where}: group {g.id!r} has unknown parent {g.parent!r}.")
        gwhere = f"{where}, {g.id}"
        if g.kind == "condition":
            if g.condition is None:
                raise ValidationError(f"{gwhere}: a condition group needs a condition.")
            _condition(p, g, g.condition, steps, groups, gwhere)
        elif g.kind == "parallel_for":
            given = ([x for x in (g.items.static, g.items.param, g.items.output, g.items.item) if x is not None]
                     if g.items else [])
            if len(given) != 1:
                raise ValidationError(f"{gwhere}: a ParallelFor needs exactly one of a static list, a list parameter, "
                                      "a step's list output or a list in an outer loop's item.")
            if g.items.item is not None:
                _item_loop(g, g.items.item, groups, gwhere)
            if g.key is not None and g.items.static is not None:
                lacking = next((x for x in g.items.static if not isinstance(x, dict) or g.key not in x), None)
                if lacking is not None:
                    raise ValidationError(f"{gwhere}: ParallelFor key {g.key!r} names each item by that field, but "
                                          f"item {lacking!r} has none; give every item the field, or drop key=.")
            if g.items.output is not None:
                source = _value_type(p, g.items.output, steps, groups, g.parent, gwhere, reading="the ParallelFor")
                if source != "list":
                    raise ValidationError(
                        f"{gwhere}: ParallelFor iterates over {_describe(g.items.output)}, which is {source}, not a "
                        "list; loop over a list output (annotate the step `-> list[...]`).")
            if g.items.param is not None:
                param = p.parameter(g.items.param)
                if param is None or param.type != "list":
                    raise ValidationError(
                        f"{gwhere}: ParallelFor iterates over {g.items.param!r}, which is not a list parameter of the pipeline."
                    )
        elif g.kind == "exit_handler":
            if g.exit_step not in steps:
                raise ValidationError(f"{gwhere}: exit step {g.exit_step!r} is not a step of the pipeline.")
            if g.id in _chain(steps[g.exit_step].group, groups):
                raise ValidationError(f"{gwhere}: exit step {g.exit_step!r} cannot be inside its own handler.")


def _item_loop(g: ir.Group, ref: ir.LoopItemRef, groups: dict[str, ir.Group], where: str) -> None:
    """A loop over an outer loop's item: that loop must enclose it, and each item it knows now must hold a list."""
    what = f"field {ref.field!r} of the item of {ref.loop}" if ref.field else f"the item of {ref.loop}"
    if ref.loop not in _chain(g.parent, groups) or groups[ref.loop].kind != "parallel_for":
        raise ValidationError(f"{where}: ParallelFor iterates over {what}, a loop it is not inside; loop over the "
                              "item of a loop around it.")
    outer = groups[ref.loop].items
    for item in (outer.static if outer is not None and outer.static is not None else ()):
        value = item.get(ref.field, None) if ref.field and isinstance(item, dict) else None if ref.field else item
        if not isinstance(value, (list, tuple)):
            raise ValidationError(f"{where}: ParallelFor iterates over {what}, but item {item!r} holds "
                                  f"{type(value).__name__ if value is not None else 'no such field'}, not a list; give "
                                  "every item a list there.")


def _chain(group_id: str | None, groups: dict[str, ir.Group]) -> list[str]:
    out = []
    while group_id is not None:
        out.append(group_id)
        group_id = groups[group_id].parent
    return out


def _condition(
    p: ir.Pipeline, g: ir.Group, expr: object, steps: dict[str, ir.Step], groups: dict[str, ir.Group], where: str
) -> None:
    if isinstance(expr, ir.Compare):
        types = [_value_type(p, v, steps, groups, g.parent, where, reading="the condition") for v in (expr.left, expr.right)]
        for v, t in zip((expr.left, expr.right), types):
            if t is not None and ir.is_artifact_type(t):
                raise ValidationError(
                    f"{where}: the condition compares {_describe(v)}, a {t} artifact; conditions read scalar outputs "
                    "or parameters, so have a step return the value to compare."
                )
        lt, rt = types
        if expr.op in ("in", "not in"):
            if rt not in (None, "list"):
                raise ValidationError(f"{where}: the right side of `{expr.op}` must be a list, it is {rt}.")
        elif expr.op in ("<", "<=", ">", ">="):
            for v, t in zip((expr.left, expr.right), types):
                if t is not None and t not in _NUMERIC and t != "str":
                    raise ValidationError(f"{where}: `{expr.op}` cannot order {_describe(v)} of type {t}.")
            if lt and rt and (lt in _NUMERIC) != (rt in _NUMERIC):
                raise ValidationError(f"{where}: `{expr.op}` compares {lt} with {rt}; compare values of one kind.")
        return
    if isinstance(expr, ir.Not):
        _condition(p, g, expr.operand, steps, groups, where)
        return
    assert isinstance(expr, ir.BoolOp)
    for operand in expr.operands:
        _condition(p, g, operand, steps, groups, where)


def _describe(v: object) -> str:
    return ir.describe_value(v, prose=True)


def _value_type(
    p: ir.Pipeline,
    v: object,
    steps: dict[str, ir.Step],
    groups: dict[str, ir.Group],
    consumer_group: str | None,
    where: str,
    reading: str,
) -> str | None:
    """The type of a value, after checking that the consumer may see it. None means 'any'."""
    if isinstance(v, ir.Const):
        return value_type_name(v.value) if v.value is not None else None
    if isinstance(v, ir.ParamRef):
        param = p.parameter(v.name)
        if param is None:
            names = ", ".join(x.name for x in p.parameters) or "none"
            raise ValidationError(f"{where}: {reading} reads unknown pipeline parameter {v.name!r}; parameters are {names}.")
        return param.type
    if isinstance(v, ir.LoopItemRef):
        if v.loop not in _chain(consumer_group, groups) or groups[v.loop].kind != "parallel_for":
            raise ValidationError(f"{where}: {reading} uses the item of {v.loop!r} outside that ParallelFor.")
        return None
    if isinstance(v, ir.CollectedRef):
        return _collected_type(p, v, steps, groups, consumer_group, where, reading)
    if isinstance(v, ir.OneOfRef):
        return _oneof_type(p, v, steps, groups, consumer_group, where, reading)
    assert isinstance(v, ir.OutputRef)
    up = steps.get(v.step)
    if up is None:
        raise ValidationError(
            f"{where}: {reading} reads step {v.step!r}, which is not in the pipeline; its steps are {', '.join(steps) or 'none'}."
        )
    out = up.output(v.output)
    if out is None:
        names = ", ".join(o.name for o in up.outputs) or "none"
        raise ValidationError(
            f"{where}: {reading} reads output {v.output!r} of step {v.step!r}, which has no such output; its outputs are {names}."
        )
    consumer_chain = _chain(consumer_group, groups)
    for gid in _chain(up.group, groups):
        if gid in consumer_chain:
            break
        kind = groups[gid].kind
        if kind == "condition":
            raise ValidationError(
                f"{where}: {reading} uses output {v.output!r} of step {v.step!r}, which runs only under {gid}; "
                "move the consumer into the same If block."
            )
        if kind == "parallel_for":
            raise ValidationError(
                f"{where}: {reading} uses output {v.output!r} of step {v.step!r} from outside its ParallelFor ({gid}); "
                f"consume it inside the loop, or pass Collected({v.step}.outputs[{v.output!r}]) for the list of "
                "every iteration's value."
            )
    return out.type


def _oneof_type(p: ir.Pipeline, v: ir.OneOfRef, steps: dict[str, ir.Step], groups: dict[str, ir.Group],
                consumer_group: str | None, where: str, reading: str) -> str | None:
    """OneOf reads one output per branch of one If/Elif/Else chain, all of one type, from after the chain."""
    what = f"{reading} reads {_describe(v)}"
    holder, seen, types = None, {}, {}
    for ref in v.values:
        up = steps.get(ref.step)
        out = up.output(ref.output) if up is not None else None
        if up is None or out is None:
            _value_type(p, ref, steps, groups, up.group if up else None, where, reading)
        assert up is not None and out is not None
        chain = _chain(up.group, groups)
        branch = next((g for g in chain if groups[g].kind == "condition" and groups[g].parent is not None
                       and groups[groups[g].parent].kind == "branches"), None)
        if branch is None:
            raise ValidationError(f"{where}: {what}, but step {ref.step!r} is in no branch of an If/Elif/Else chain; "
                                  "pass its output directly, or put each candidate in its own branch.")
        loop = next((g for g in chain[:chain.index(branch)] if groups[g].kind == "parallel_for"), None)
        if loop is not None:
            raise ValidationError(f"{where}: {what}, but step {ref.step!r} runs once per item of {loop}; collect it "
                                  "with Collected(...) inside the branch first.")
        if holder is not None and groups[branch].parent != holder:
            raise ValidationError(f"{where}: {what}, whose outputs come from different If/Elif/Else chains; choose "
                                  "among the branches of one chain.")
        if branch in seen:
            raise ValidationError(f"{where}: {what}, which takes steps {seen[branch]!r} and {ref.step!r} from the same "
                                  f"branch ({branch}); give one output per branch.")
        holder, seen[branch], types[ref.step] = groups[branch].parent, ref.step, out.type
    assert holder is not None
    if holder in _chain(consumer_group, groups):
        raise ValidationError(f"{where}: {what} inside the If/Elif/Else chain it chooses from; move the step after "
                              "the chain.")
    if len(set(types.values())) > 1:
        listed = ", ".join(f"{k} gives {t}" for k, t in types.items())
        raise ValidationError(f"{where}: {what} over outputs of different types ({listed}); make every branch return "
                              "the same type.")
    consumer_chain = _chain(consumer_group, groups)
    for gid in _chain(groups[holder].parent, groups):
        if gid not in consumer_chain and groups[gid].kind in ("condition", "parallel_for"):
            raise ValidationError(f"{where}: {what}, but the chain sits inside {gid}, which the step is not in; move "
                                  "the step inside it too.")
    return next(iter(types.values()))


def _collected_type(p: ir.Pipeline, v: ir.CollectedRef, steps: dict[str, ir.Step], groups: dict[str, ir.Group],
                    consumer_group: str | None, where: str, reading: str) -> str:
    """A Collected value is a list, read after every loop it gathers over, with no If between."""
    up = steps.get(v.step)
    out = up.output(v.output) if up is not None else None
    if up is None or out is None:
        _value_type(p, ir.OutputRef(step=v.step, output=v.output), steps, groups, consumer_group, where, reading)
    assert up is not None and out is not None
    consumer_chain = _chain(consumer_group, groups)
    crossed = [gid for gid in _chain(up.group, groups) if gid not in consumer_chain]
    loops = [gid for gid in crossed if groups[gid].kind == "parallel_for"]
    if not loops:
        own = [gid for gid in _chain(up.group, groups) if groups[gid].kind == "parallel_for"]
        if own:
            raise ValidationError(
                f"{where}: {reading} reads Collected({v.step}.{v.output}) inside {own[0]}, the loop it collects over; "
                "move the step after the loop, or pass the output itself to use one iteration's value.")
        raise ValidationError(
            f"{where}: {reading} reads Collected({v.step}.{v.output}), but step {v.step!r} is in no ParallelFor, so "
            f"there is nothing to collect; pass {v.step}.outputs[{v.output!r}] itself.")
    outermost = max(crossed.index(gid) for gid in loops)  # crossed runs inside out: an If within it holds iterations
    held = [gid for gid in crossed[outermost + 1:] if groups[gid].kind == "condition"]
    if held:
        raise ValidationError(
            f"{where}: {reading} reads Collected({v.step}.{v.output}), and every iteration of step {v.step!r} runs "
            f"only under {held[0]}, outside the loop it collects over; move the step into the If, or the If into the "
            "loop.")
    if ir.is_artifact_type(out.type) or out.from_return:
        return f"list[{out.type}]"
    return "list"


def _step(p: ir.Pipeline, s: ir.Step, steps: dict[str, ir.Step], groups: dict[str, ir.Group], where: str) -> None:
    if s.group is not None and s.group not in groups:
        raise ValidationError(f"{where}: unknown group {s.group!r}.")
    body = {"python": s.python, "container": s.container, "resource": s.resource, "fail": s.fail,
            "importer": s.importer}
    if body[s.kind] is None or sum(v is not None for v in body.values()) != 1:
        raise ValidationError(f"{where}: a {s.kind} step must carry exactly its `{s.kind}` body.")
    for i in s.inputs:
        iwhere = f"{where}, input {i.name!r}"
        if i.value is None:
            if not i.has_default:
                raise ValidationError(f"{where} needs input {i.name!r}; pass it when calling the step.")
            continue
        if i.is_list or (ir.is_artifact_type(i.type) and isinstance(i.value, ir.CollectedRef)):
            _artifact_list(p, i, steps, groups, s.group, where)
            continue
        if ir.is_artifact_type(i.type) and not isinstance(i.value, (ir.OutputRef, ir.OneOfRef)):
            _artifact_fed_a_value(i, where)
        source = _value_type(p, i.value, steps, groups, s.group, where, reading=f"input {i.name!r}")
        if source is not None and not type_accepts(i.type, source):
            raise ValidationError(
                f"{iwhere} expects {i.type} but gets {_describe(i.value)} of type {source}; "
                "connect an output of the matching type."
            )
    for up in s.after:
        if up not in steps:
            raise ValidationError(f"{where}: .after() names step {up!r}, which is not in the pipeline.")
        if up == s.name:
            raise ValidationError(f"{where}: a step cannot run after itself.")
    for key in list(s.settings.env) + [x.env for x in s.secrets]:
        if not ENV_NAME.match(key):
            raise ValidationError(f"{where}: environment variable name {key!r} is invalid; use letters, digits and '_'.")
    names = [x.env for x in s.secrets]
    clash = set(names) & set(s.settings.env) or {n for n in names if names.count(n) > 1}
    if clash:
        raise ValidationError(f"{where}: environment variable {sorted(clash)[0]!r} is set twice (env and secret); keep one.")
    if s.importer is not None:
        uri = s.input("uri")
        if uri is None or not isinstance(uri.value, (ir.Const, ir.ParamRef)) or (
                isinstance(uri.value, ir.Const) and not isinstance(uri.value.value, str)):
            raise ValidationError(f"{where}: an importer's uri must be a URI string or a str pipeline parameter, known "
                                  "before the run starts.")
        if [o.name for o in s.outputs] != ["artifact"] or not ir.is_artifact_type(s.outputs[0].type):
            raise ValidationError(f"{where}: an importer has exactly one output, 'artifact', of an artifact type.")
    if s.resource:
        _manifest_parameters(p, s.resource, where)
    if s.container:
        _container(s, where)


def _container(s: ir.Step, where: str) -> None:
    """Every placeholder names what the step declares, fits its type, and an absent input is only read under IfPresent."""
    from stackhop.core.container_args import argv_items, presence_names, present_inputs, unguarded

    assert s.container is not None
    items = argv_items(s.container)
    if not items:
        raise ValidationError(f"{where}: a container step needs a command.")
    inputs = {i.name: i for i in s.inputs}
    outputs = {o.name: o for o in s.outputs}
    present = present_inputs(s)
    for name in presence_names(items):
        if name not in inputs:
            raise ValidationError(f"{where}: IfPresent({name!r}) names no declared input.")
    for ph, guarded in unguarded(items):
        pool = outputs if ph.is_output else inputs
        if ph.name not in pool:
            raise ValidationError(f"{where}: placeholder {ph.placeholder}({ph.name!r}) names nothing declared.")
        spec_type = pool[ph.name].type
        if ph.placeholder == "input_value" and ir.is_artifact_type(spec_type):
            raise ValidationError(f"{where}: InputValue({ph.name!r}) is a {spec_type} artifact; use InputPath({ph.name!r}) "
                                  f"or InputUri({ph.name!r}).")
        if ph.placeholder in ("input_uri", "output_uri") and not ir.is_artifact_type(spec_type):
            raise ValidationError(f"{where}: {'InputUri' if ph.placeholder == 'input_uri' else 'OutputUri'}({ph.name!r}) "
                                  f"is a {spec_type} value, which has no URI; use "
                                  f"{'InputValue' if ph.placeholder == 'input_uri' else 'OutputPath'}({ph.name!r}).")
        if not ph.is_output and ph.name not in present and ph.name not in guarded:
            spec = inputs[ph.name]
            if spec.default is None:
                raise ValidationError(
                    f"{where} reads input {ph.name!r}, which is optional and not given; pass it, or put the placeholder "
                    f"inside IfPresent({ph.name!r}, then=[...]).")


def _artifact_list(p: ir.Pipeline, i: ir.InputSpec, steps: dict[str, ir.Step], groups: dict[str, ir.Group],
                   group: str | None, where: str) -> None:
    """A list of artifacts comes only from Collected(...) of artifacts of the type the input declares."""
    iwhere = f"{where}, input {i.name!r}"
    if not i.is_list:
        raise ValidationError(f"{iwhere} is one {i.type} artifact but gets {_describe(i.value)}, one per iteration; "
                              f"declare it Input[list[{i.type}]] to take them all.")
    if not isinstance(i.value, ir.CollectedRef):
        raise ValidationError(f"{iwhere} is a list of {i.type} artifacts (Input[list[{i.type}]]), which only "
                              f"Collected(...) of an in-loop step's artifact gives; it gets {_describe(i.value)}.")
    source = _value_type(p, i.value, steps, groups, group, where, reading=f"input {i.name!r}")
    if source == "list" or not type_accepts(i.type, str(source)[5:-1]):
        raise ValidationError(f"{iwhere} expects a list of {i.type} artifacts but gets {_describe(i.value)}, a "
                              f"{source}; collect an artifact output of that type.")


def _artifact_fed_a_value(i: ir.InputSpec, where: str) -> None:
    """An artifact input only ever comes from a step that wrote it; a constant, parameter or loop item is no file."""
    if isinstance(i.value, ir.Const) and i.value.value is None:
        gets = "None"
    elif isinstance(i.value, ir.LoopItemRef):
        gets = f"the item of {i.value.loop}, a plain value"
    else:
        gets = _describe(i.value)
    kind = f"a {i.type} artifact loaded as a value" if i.as_value else f"an artifact (Input[{i.type}])"
    fix = "pass another step's output" + (", or leave it out to use its default" if i.has_default else "")
    raise ValidationError(f"{where}, input {i.name!r} is {kind} but gets {gets}; {fix}.")


def _manifest_parameters(p: ir.Pipeline, spec: ir.ResourceOpSpec, where: str) -> None:
    """Each parametrised field exists, holds null until the run's value arrives, and names a real parameter."""
    for mp in spec.parameters:
        field = ir.field_path(mp.path)
        if mp.path in ir.FIXED_MANIFEST_FIELDS:
            raise ValidationError(f"{where}: the manifest's {field} cannot be a pipeline parameter, because "
                                  f"{ir.FIXED_MANIFEST_FIELDS[mp.path]}; write it out.")
        if p.parameter(mp.parameter) is None:
            names = ", ".join(x.name for x in p.parameters) or "none"
            raise ValidationError(
                f"{where}: the manifest's field {field} takes unknown pipeline parameter {mp.parameter!r}; "
                f"parameters are {names}."
            )
        node: object = spec.manifest
        for part in mp.path:
            ok = (isinstance(node, dict) and isinstance(part, str) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
            if not ok:
                raise ValidationError(f"{where}: the manifest has no field {field} for parameter {mp.parameter!r}; "
                                      "set it to null in the manifest.")
            node = node[part]  # type: ignore[index]
        if node is not None:
            raise ValidationError(f"{where}: the manifest's field {field} takes parameter {mp.parameter!r} but also "
                                  "holds a value; set it to null in the manifest.")


def type_accepts(target: str, source: str) -> bool:
    if ir.is_artifact_type(target) != ir.is_artifact_type(source):
        return False
    if ir.is_artifact_type(target):
        return target == source or target == "Artifact"
    return target == source or (target == "float" and source == "int")


def value_matches(value: object, type_name: str) -> bool:
    checks: dict[str, tuple[type, ...]] = {
        "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "list": (list, tuple), "dict": (dict,)
    }
    if type_name in ("int", "float") and isinstance(value, bool):
        return False
    return isinstance(value, checks[type_name])


def _cycles(p: ir.Pipeline, where: str) -> None:
    edges = p.edges()
    order = stable_topological([s.name for s in p.steps], edges)
    if len(order) != len(p.steps):
        out: dict[str, list[str]] = {s.name: [] for s in p.steps}
        for a, b in edges:
            out[a].append(b)
        cycle = _find_cycle({s.name for s in p.steps} - set(order), out)
        raise ValidationError(
            f"{where}: steps depend on each other in a cycle ({' -> '.join(cycle)}); remove one of the .after() calls."
        )


def _find_cycle(nodes: set[str], out: dict[str, list[str]]) -> list[str]:
    start = min(nodes)
    path, seen = [start], {start}
    node = start
    while True:
        node = next(m for m in out[node] if m in nodes)
        if node in seen:
            return path[path.index(node):] + [node]
        path.append(node)
        seen.add(node)
