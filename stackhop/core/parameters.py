"""Pipeline parameters as a run gets them: defaults filled, values type-checked, CLI strings parsed."""

from __future__ import annotations

from typing import Any

from stackhop.core.checks import json_problem
from stackhop.core.ir import Pipeline
from stackhop.core.validate import value_matches
from stackhop.errors import ParameterError


def resolve_parameters(ir: Pipeline, given: dict[str, Any] | None, *, from_strings: bool = False) -> dict[str, Any]:
    """Defaults plus given values, type-checked; CLI strings are parsed per the declared type."""
    import json

    import reprlib

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
