"""Container steps: an image's own command run as written, and components defined once and reused.

`container_step(...)` declares one inline; `@container_component` turns a function returning
`ContainerSpec(image, command, args)` into a component called like a step in any pipeline, as
KFP's `dsl.container_component` does. Placeholders stand where the backend puts a value, a
local path or a URI; nothing of stackhop runs inside the image.
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from stackhop.core.artifact_types import Artifact, Input, Output
from stackhop.core.signatures import scalar_type_name, value_type_name
from stackhop.core.tracing import LoopItem, PipelineParam, Task, TaskOutput, current_trace
from stackhop.errors import PipelineDefinitionError

_TOKEN = re.compile(r"\{\{stackhop:(input_value|input_path|input_uri|output_path|output_uri):([^}]+)\}\}")


class _Placeholder:
    kind = ""

    def __init__(self, name: Any):
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __str__(self) -> str:
        """An f-string `f"--lr={lr}"` keeps the placeholder: the text becomes a Concat."""
        return "{{stackhop:%s:%s}}" % (self.kind, self.name)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.name == self.name  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.kind, str(self.name)))


class InputPath(_Placeholder):
    """A local path holding the input (an artifact, or a scalar written to a file).

    As a Python step's annotation, `InputPath(Dataset)` hands the step that path as a str."""

    kind = "input_path"


class InputValue(_Placeholder):
    """The input's value as text."""

    kind = "input_value"


class InputUri(_Placeholder):
    """The input artifact's URI in the artifact store, for commands that read the store themselves."""

    kind = "input_uri"


class OutputPath(_Placeholder):
    """A local path the command writes; a scalar output is parsed from that file.

    As a Python step's annotation, `OutputPath(Model)` hands the step the path to write as a str."""

    kind = "output_path"


class OutputUri(_Placeholder):
    """The URI the command writes the output artifact to itself."""

    kind = "output_uri"


_CLASS_NAMES = {"input_value": "InputValue", "input_path": "InputPath", "input_uri": "InputUri",
                "output_path": "OutputPath", "output_uri": "OutputUri"}


class Concat:
    """Parts joined into one argument: `Concat("--out=", OutputPath("model"))`."""

    def __init__(self, *items: Any):
        self.items = list(items[0]) if len(items) == 1 and isinstance(items[0], (list, tuple)) else list(items)


class IfPresent:
    """`then` when the step is given input `name`, otherwise `otherwise` (KFP's IfPresentPlaceholder)."""

    def __init__(self, name: Any, then: Iterable[Any] = (), otherwise: Iterable[Any] = ()):
        self.name = name.name if isinstance(name, _Placeholder) else name
        self.then = [then] if isinstance(then, (str, _Placeholder, Concat)) else list(then)
        self.otherwise = [otherwise] if isinstance(otherwise, (str, _Placeholder, Concat)) else list(otherwise)


@dataclass
class ContainerSpec:
    """What a `@container_component` returns: the image and the command it runs, as written."""

    image: str
    command: list[Any] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)


# ---------------------------------------------------------------------------- to the IR


def arg_ir(step: str, item: Any) -> Any:
    """A command item as the IR holds it; text with an f-string placeholder becomes a Concat."""
    if isinstance(item, _Placeholder):
        return {"placeholder": item.kind, "name": str(item.name)}
    if isinstance(item, Concat):
        return {"concat": [arg_ir(step, x) for x in item.items]}
    if isinstance(item, IfPresent):
        return {"if_present": str(item.name), "then": [arg_ir(step, x) for x in item.then],
                "otherwise": [arg_ir(step, x) for x in item.otherwise]}
    if isinstance(item, str):
        parts: list[Any] = []
        at = 0
        for m in _TOKEN.finditer(item):
            if m.start() > at:
                parts.append(item[at:m.start()])
            parts.append({"placeholder": m.group(1), "name": m.group(2)})
            at = m.end()
        if not parts:
            return item
        if at < len(item):
            parts.append(item[at:])
        return parts[0] if len(parts) == 1 else {"concat": parts}
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return str(item)
    raise PipelineDefinitionError(
        f"step {step!r}: a command item must be a string, a placeholder (InputValue, InputPath, InputUri, OutputPath, "
        f"OutputUri), Concat or IfPresent; got {type(item).__name__} {item!r}.")


def _walk(item: Any) -> Iterable[tuple[str, str]]:
    if isinstance(item, dict):
        if "placeholder" in item:
            yield item["placeholder"], item["name"]
        for key in ("concat", "then", "otherwise"):
            for x in item.get(key, ()):
                yield from _walk(x)
        if "if_present" in item:
            yield "input_value?", item["if_present"]


def _check_names(step: str, items: list[Any], inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
    for item in items:
        for kind, name in _walk(item):
            output = kind.startswith("output_")
            pool = outputs if output else inputs
            if name not in pool:
                what = "IfPresent" if kind.endswith("?") else _CLASS_NAMES[kind]
                raise PipelineDefinitionError(
                    f"step {step!r}: {what}({name!r}) names no declared {'output' if output else 'input'}; declare it in "
                    f"{'outputs' if output else 'inputs'}={{...}}" + (f" (declared: {', '.join(pool)})." if pool else "."))


def container_task(name: str, image: str, command: Iterable[Any], args: Iterable[Any], *, inputs: dict[str, Any],
                   input_types: dict[str, tuple[str, bool, Any, bool]], output_types: dict[str, tuple[str, bool]],
                   explicit_name: bool) -> Task:
    """The task every way of declaring a container step ends in."""
    from stackhop.core.dsl import image_reference

    trace = current_trace(f"container step {name!r}")
    image_reference(f"step {name!r}", image)
    for what, value in (("command", command), ("args", args)):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise PipelineDefinitionError(
                f"step {name!r}: {what} must be a list of strings (e.g. [\"sh\", \"-c\", \"echo hi\"]), got "
                f"{type(value).__name__} {value!r}.")
    parts = {"command": [arg_ir(name, x) for x in command], "args": [arg_ir(name, x) for x in args]}
    _check_names(name, parts["command"] + parts["args"], input_types, output_types)
    if not parts["command"] and not parts["args"]:
        raise PipelineDefinitionError(f"step {name!r}: a container step needs a command; pass command=[...].")
    task = Task(name=trace.unique_name(name) if not explicit_name else name, explicit_name=explicit_name,
                kind="container", group=trace.group, inputs=inputs, input_types=input_types,
                output_types=output_types, container={"image": image, **parts})
    return trace.add_task(task)


def _output_type(step: str, key: str, cls: Any) -> str:
    scalar = scalar_type_name(cls)
    if scalar:
        return scalar
    if isinstance(cls, type) and issubclass(cls, Artifact):
        return cls.type_name
    raise PipelineDefinitionError(
        f"step {step!r}: output {key!r} must be an artifact class (Dataset, Model ...) or str/int/float/bool/list/dict, "
        f"got {cls!r}.")


def container_step(
    name: str,
    image: str,
    command: Iterable[Any],
    args: Iterable[Any] = (),
    *,
    inputs: dict[str, Any] | None = None,
    outputs: dict[str, type] | None = None,
) -> Task:
    """A step that runs an image's command as written; inputs and outputs pass through placeholders.

    `outputs` maps names to an artifact class (Dataset, Model ...) or a scalar type (int, str ...).
    """
    for what, value in (("inputs", inputs), ("outputs", outputs)):
        if value is not None and not isinstance(value, dict):
            raise PipelineDefinitionError(
                f"step {name!r}: {what} must be a dict of name -> {'value' if what == 'inputs' else 'type'}, got "
                f"{type(value).__name__} {value!r}.")
    inputs = dict(inputs or {})
    return container_task(
        name, image, command, args, inputs=inputs, explicit_name=True,
        input_types={k: (infer_type(name, k, v), False, None, False) for k, v in inputs.items()},
        output_types={k: (_output_type(name, k, cls), False) for k, cls in (outputs or {}).items()})


def infer_type(step_name: str, key: str, value: Any) -> str:
    if isinstance(value, Task):
        value = value.output
    if isinstance(value, (TaskOutput, PipelineParam)):
        return value.type
    if isinstance(value, LoopItem):
        return "str"
    found = value_type_name(value)
    if found is None:
        raise PipelineDefinitionError(
            f"step {step_name!r}: input {key!r} is a {type(value).__name__}; pass a JSON-able constant, "
            "a pipeline parameter or another step's output."
        )
    return found


# ---------------------------------------------------------------------------- components


@dataclass(frozen=True)
class ComponentParam:
    name: str
    type: str
    direction: str  # "in" | "out"
    default: Any = None
    has_default: bool = False
    optional: bool = False
    as_path: bool = False
    """Annotated InputPath(...)/OutputPath(...): the command gets a file, even for a scalar."""


class _ArtifactPlaceholders:
    """What an artifact parameter is inside a component function: `.path` and `.uri` placeholders."""

    def __init__(self, name: str, output: bool):
        self.path = (OutputPath if output else InputPath)(name)
        self.uri = (OutputUri if output else InputUri)(name)
        self.name = name

    def __str__(self) -> str:
        return str(self.path)


def _artifact_type_of(arg: Any) -> str | None:
    if isinstance(arg, type) and issubclass(arg, Artifact):
        return arg.type_name
    if isinstance(arg, str):
        from stackhop.core.ir import ARTIFACT_TYPES

        return arg if arg in ARTIFACT_TYPES else "Artifact"
    return None


def component_params(fn: Callable[..., Any], name: str) -> list[ComponentParam]:
    """A component function's parameters: scalars (Optional allowed), Input/Output artifacts, InputPath/OutputPath."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # unresolvable forward references
        raise PipelineDefinitionError(
            f"component {name!r}: cannot read the annotations of {fn.__qualname__} ({exc}); make them importable.") from None
    out = []
    for p in inspect.signature(fn).parameters.values():
        hint = hints.get(p.name, p.annotation)
        has_default = p.default is not inspect.Parameter.empty
        default = p.default if has_default else None
        optional = False
        if typing.get_origin(hint) is typing.Union and type(None) in typing.get_args(hint):
            rest = [a for a in typing.get_args(hint) if a is not type(None)]
            hint, optional = (rest[0] if len(rest) == 1 else hint), True
        origin = typing.get_origin(hint)
        if isinstance(hint, (InputPath, OutputPath)):
            direction = "out" if isinstance(hint, OutputPath) else "in"
            kind = scalar_type_name(hint.name) or _artifact_type_of(hint.name)
            if kind is None:
                raise PipelineDefinitionError(
                    f"component {name!r}: parameter {p.name!r} is {hint!r}; give it a type, e.g. {type(hint).__name__}(Dataset) "
                    f"or {type(hint).__name__}(int).")
            out.append(ComponentParam(p.name, kind, direction, as_path=True))
        elif origin in (Input, Output):
            (arg,) = typing.get_args(hint)
            kind = _artifact_type_of(arg) if isinstance(arg, type) else None
            if kind is None:
                raise PipelineDefinitionError(
                    f"component {name!r}: parameter {p.name!r} must be Input[<artifact class>] or Output[<artifact class>].")
            out.append(ComponentParam(p.name, kind, "out" if origin is Output else "in"))
        elif scalar_type_name(hint):
            out.append(ComponentParam(p.name, scalar_type_name(hint), "in", default, has_default,  # type: ignore[arg-type]
                                      optional or (has_default and default is None)))
        else:
            raise PipelineDefinitionError(
                f"component {name!r}: parameter {p.name!r} has annotation {hint!r}; use str/int/float/bool/list/dict "
                "(Optional allowed), Input[...]/Output[...] of an artifact class, or InputPath(...)/OutputPath(...).")
    return out


class ContainerComponent:
    """A container component: defined once at module level, called like a step in any pipeline."""

    def __init__(self, fn: Callable[..., ContainerSpec], name: str | None = None):
        self.fn = fn
        self.name = name or fn.__name__
        self._params: list[ComponentParam] | None = None
        self._spec: ContainerSpec | None = None
        functools.update_wrapper(self, fn)

    @property
    def params(self) -> list[ComponentParam]:
        if self._params is None:
            self._params = component_params(self.fn, self.name)
        return self._params

    def spec(self) -> ContainerSpec:
        """The function called once with placeholders: what it returns is the component."""
        if self._spec is None:
            placeholders: dict[str, Any] = {}
            for p in self.params:
                if p.type in ("str", "int", "float", "bool", "list", "dict"):
                    kind = OutputPath if p.direction == "out" else InputPath if p.as_path else InputValue
                    placeholders[p.name] = kind(p.name)
                else:
                    placeholders[p.name] = _ArtifactPlaceholders(p.name, p.direction == "out")
            spec = self.fn(**placeholders)
            if not isinstance(spec, ContainerSpec):
                raise PipelineDefinitionError(
                    f"component {self.name!r} returned {type(spec).__name__}; a @container_component returns "
                    "ContainerSpec(image=..., command=[...], args=[...]).")
            self._spec = ContainerSpec(spec.image, [_unwrap(x) for x in spec.command], [_unwrap(x) for x in spec.args])
        return self._spec

    def __call__(self, *args: Any, **kwargs: Any) -> Task:
        ins = [p for p in self.params if p.direction == "in"]
        if len(args) > len(ins):
            raise PipelineDefinitionError(f"component {self.name!r} takes {len(ins)} inputs, got {len(args)} positional.")
        bound = {p.name: a for p, a in zip(ins, args)}
        for key, value in kwargs.items():
            if not any(p.name == key for p in ins) or key in bound:
                why = "was given twice" if key in bound else "is not one of its inputs (" + ", ".join(p.name for p in ins) + ")"
                raise PipelineDefinitionError(f"component {self.name!r}: input {key!r} {why}.")
            bound[key] = value
        for p in ins:
            if p.name not in bound and not p.has_default and not p.optional:
                raise PipelineDefinitionError(f"component {self.name!r} needs input {p.name!r}; pass {self.name}({p.name}=...).")
        spec = self.spec()
        return container_task(
            self.name, spec.image, spec.command, spec.args, explicit_name=False,
            inputs={k: v for k, v in bound.items() if v is not None},
            input_types={p.name: (p.type, False, p.default, p.has_default or p.optional) for p in ins},
            output_types={p.name: (p.type, False) for p in self.params if p.direction == "out"})

    def __repr__(self) -> str:
        return f"<container component {self.name}>"


def _unwrap(item: Any) -> Any:
    if isinstance(item, _ArtifactPlaceholders):
        return item.path
    if isinstance(item, Concat):
        return Concat([_unwrap(x) for x in item.items])
    if isinstance(item, IfPresent):
        return IfPresent(item.name, [_unwrap(x) for x in item.then], [_unwrap(x) for x in item.otherwise])
    return item


def container_component(fn: Callable[..., ContainerSpec] | None = None, *, name: str | None = None) -> Any:
    """Decorate a function returning `ContainerSpec(image, command, args)`; its parameters are its inputs and outputs."""
    if fn is None:
        return lambda f: ContainerComponent(f, name)
    return ContainerComponent(fn, name)
