"""Read a step function's signature into typed inputs and outputs.

`Input[Dataset]` and `Output[Model]` are artifacts; str/int/float/bool/list/dict are scalars;
`InputPath(...)`/`OutputPath(...)` (KFP's spelling) hand the function a local path str instead,
so code written for KFP components runs unchanged and a scalar output may be written to a file;
any other annotation (bytes, numpy arrays, DataFrames ...) is an artifact whose value a
materializer loads and stores (chosen from the annotation when the pipeline is traced). The
return value is the output `output`, or one output per field of a NamedTuple.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from stackhop.core.artifact_types import Artifact, Input, Output
from stackhop.errors import PipelineDefinitionError

_SCALARS: dict[Any, str] = {str: "str", int: "int", float: "float", bool: "bool", list: "list", dict: "dict"}
_NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class ParamInfo:
    name: str
    type: str
    direction: str  # "in" | "out"
    as_value: bool = False
    default: Any = None
    has_default: bool = False
    path: bool = False
    """Annotated InputPath/OutputPath: the function gets a local path str, not a value or an Artifact."""
    is_list: bool = False
    """`Input[list[Dataset]]`: every iteration's artifact of a loop, from Collected(...)."""


@dataclass(frozen=True)
class Signature:
    params: tuple[ParamInfo, ...]
    returns: tuple[tuple[str, str, Any], ...] = field(default=())
    """(output name, type, the annotation when a materializer stores it, else None)"""
    item_types: dict[str, str] = field(default_factory=dict)
    """Outputs annotated `list[X]` with X a scalar type -> X."""

    @property
    def inputs(self) -> tuple[ParamInfo, ...]:
        return tuple(p for p in self.params if p.direction == "in")

    @property
    def artifact_outputs(self) -> tuple[ParamInfo, ...]:
        return tuple(p for p in self.params if p.direction == "out")


def scalar_type_name(annotation: Any) -> str | None:
    """`Optional[str]` (or `str | None`) is a str that may be None: None is a value every scalar input can take."""
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    origin = typing.get_origin(annotation)
    if origin in (list, dict):
        return _SCALARS[origin]
    if origin in (typing.Union, types.UnionType):
        others = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(others) == 1 and len(typing.get_args(annotation)) == 2:
            return scalar_type_name(others[0])
    return None


def value_type_name(value: Any) -> str | None:
    """The scalar type of a constant, or None when it is not JSON-able."""
    return _SCALARS.get(type(value))


_KFP_NAMES = {"String": "str", "Integer": "int", "Float": "float", "Boolean": "bool", "Bool": "bool",
              "JsonArray": "list", "List": "list", "JsonObject": "dict", "Dict": "dict",
              "str": "str", "int": "int", "float": "float", "bool": "bool", "list": "list", "dict": "dict"}


def path_type_name(type_arg: Any) -> str | None:
    """The IR type an InputPath/OutputPath annotation names: a class or a type name (KFP's or Python's).

    A type name no artifact class has (KFP files say "CSV", "TFModel" ...) is a plain Artifact."""
    from stackhop.core.ir import ARTIFACT_TYPES

    scalar = scalar_type_name(type_arg)
    if scalar:
        return scalar
    if isinstance(type_arg, type) and issubclass(type_arg, Artifact):
        return type_arg.type_name
    if isinstance(type_arg, str) and type_arg.strip():
        name = type_arg.strip()
        return _KFP_NAMES.get(name) or (name if name in ARTIFACT_TYPES else "Artifact")
    return None


def read_signature(fn: Callable[..., Any], *, step: str) -> Signature:
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # unresolvable forward references
        raise PipelineDefinitionError(
            f"step {step!r}: cannot read the type annotations of {fn.__qualname__} ({exc}); "
            "make every annotation importable at module level."
        ) from None
    params: list[ParamInfo] = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise PipelineDefinitionError(
                f"step {step!r}: *{p.name} / **{p.name} parameters cannot be traced; declare each input by name."
            )
        params.append(_param(step, p, hints.get(p.name, _NO_DEFAULT)))
    returns = _returns(step, hints.get("return", None))
    written = {p.name: p.type for p in params if p.direction == "out"}
    for name, _type, _hint in returns:
        if name in written:
            single = name == "output" and len(returns) == 1
            what = "its return value is the output named 'output'" if single else (
                f"its return type {getattr(hints['return'], '__name__', 'NamedTuple')} has a field {name!r} too")
            raise PipelineDefinitionError(
                f"step {step!r} has a parameter {name!r}: Output[{written[name]}], and {what}; every output needs its "
                f"own name, so rename the parameter{'' if single else ' or the field'}."
            )
    return Signature(tuple(params), returns, _item_types(hints.get("return", None)))


def list_item_type(annotation: Any) -> str | None:
    """`list[dict]` -> "dict"; a bare `list`, or items that are not scalars, give None."""
    if typing.get_origin(annotation) is not list:
        return None
    args = typing.get_args(annotation)
    return scalar_type_name(args[0]) if len(args) == 1 else None


def _item_types(hint: Any) -> dict[str, str]:
    if hint is None or hint is type(None):
        return {}
    fields = typing.get_type_hints(hint) if _is_namedtuple(hint) and getattr(hint, "__annotations__", None) else {"output": hint}
    return {name: t for name, ann in fields.items() if (t := list_item_type(ann))}


def _artifact_class(step: str, name: str, arg: Any) -> type[Artifact]:
    if isinstance(arg, type) and issubclass(arg, Artifact):
        return arg
    raise PipelineDefinitionError(
        f"step {step!r}: parameter {name!r} must be Input[<artifact type>] or Output[<artifact type>] "
        f"with one of Artifact, Dataset, Model, Metrics, ClassificationMetrics, HTML, Markdown; got {arg!r}."
    )


def _param(step: str, p: inspect.Parameter, hint: Any) -> ParamInfo:
    from stackhop.core.containers import InputPath, OutputPath  # lazy: containers reads this module

    has_default = p.default is not _NO_DEFAULT
    default = p.default if has_default else None
    if isinstance(hint, (InputPath, OutputPath)):
        kind = path_type_name(hint.name)
        spelled = type(hint).__name__
        if kind is None:
            raise PipelineDefinitionError(
                f"step {step!r}: parameter {p.name!r} is {spelled}({hint.name!r}); name what the path holds, e.g. "
                f"{spelled}(Dataset), {spelled}(\"Model\") or {spelled}(int).")
        if isinstance(hint, OutputPath):
            if has_default:
                raise PipelineDefinitionError(
                    f"step {step!r}: parameter {p.name!r} is an OutputPath, which the step writes; remove its default.")
            return ParamInfo(p.name, kind, "out", path=True)
        return ParamInfo(p.name, kind, "in", default=default, has_default=has_default, path=True)
    origin = typing.get_origin(hint)
    if origin is Input:
        (arg,) = typing.get_args(hint)
        if typing.get_origin(arg) is list and len(typing.get_args(arg)) == 1:  # kfp's Input[List[Dataset]]
            cls = _artifact_class(step, p.name, typing.get_args(arg)[0])
            return ParamInfo(p.name, cls.type_name, "in", is_list=True)
        cls = _artifact_class(step, p.name, arg)
        return ParamInfo(p.name, cls.type_name, "in")
    if origin is Output:
        (arg,) = typing.get_args(hint)
        if scalar_type_name(arg):
            raise PipelineDefinitionError(
                f"step {step!r}: parameter {p.name!r} is Output[{arg.__name__}]; return scalar outputs instead "
                "(a value, or a NamedTuple for several)."
            )
        cls = _artifact_class(step, p.name, arg)
        return ParamInfo(p.name, cls.type_name, "out")
    if hint is _NO_DEFAULT:
        inferred = scalar_type_name(type(default)) if has_default and default is not None else None
        if inferred is None:
            raise PipelineDefinitionError(
                f"step {step!r}: parameter {p.name!r} has no type annotation; annotate it, e.g. `{p.name}: str`."
            )
        return ParamInfo(p.name, inferred, "in", default=default, has_default=has_default)
    scalar = scalar_type_name(hint)
    if scalar:
        return ParamInfo(p.name, scalar, "in", default=default, has_default=has_default)
    if isinstance(hint, type) and issubclass(hint, Artifact):
        raise PipelineDefinitionError(
            f"step {step!r}: parameter {p.name!r} is annotated {hint.__name__}; write Input[{hint.__name__}] "
            f"to read it or Output[{hint.__name__}] to write it."
        )
    return ParamInfo(p.name, "Artifact", "in", as_value=True, default=default, has_default=has_default)


def _returns(step: str, hint: Any) -> tuple[tuple[str, str, Any], ...]:
    if hint is None or hint is type(None):
        return ()
    # get_type_hints, not __annotations__: under `from __future__ import annotations` those are strings.
    fields = typing.get_type_hints(hint) if _is_namedtuple(hint) and getattr(hint, "__annotations__", None) else None
    if fields is not None:
        return tuple(_return_field(step, name, ann) for name, ann in fields.items())
    return (_return_field(step, "output", hint),)


def _return_field(step: str, name: str, hint: Any) -> tuple[str, str, Any]:
    scalar = scalar_type_name(hint)
    if scalar:
        return (name, scalar, None)
    if isinstance(hint, type) and issubclass(hint, Artifact):
        raise PipelineDefinitionError(
            f"step {step!r}: return type {hint.__name__} is an artifact class; declare a parameter "
            f"`{name}: Output[{hint.__name__}]` and write to its path instead."
        )
    return (name, "Artifact", hint)


def _is_namedtuple(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, tuple) and hasattr(hint, "_fields")
