"""Checks for values users hand the DSL: each failure is one sentence naming where the value was given.

Python would otherwise accept `retries="2"` until something deep inside breaks, or store a NaN
that JSON cannot hold; these turn such values into a PipelineDefinitionError at the call.
"""

from __future__ import annotations

import math
import re
from typing import Any

from stackhop.errors import PipelineDefinitionError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def fail(where: str, message: str) -> PipelineDefinitionError:
    return PipelineDefinitionError(f"{where}: {message}")


def whole(where: str, what: str, value: Any, *, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(where, f"{what} must be a whole number, got {type(value).__name__} {value!r}.")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise fail(where, f"{what} must be {bound}, got {value}.")
    return value


def number(where: str, what: str, value: Any, *, positive: bool = False, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(where, f"{what} must be a number, got {type(value).__name__} {value!r}.")
    if not math.isfinite(value):
        raise fail(where, f"{what} must be a finite number, got {value!r}.")
    if (positive and value <= 0) or value < low:
        raise fail(where, f"{what} must be {'greater than' if positive else 'at least'} {low:g}, got {value!r}.")
    return float(value)


_INT64 = 2**63


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why `value` cannot be stored as pipeline JSON: "non-finite", "big-int", or what else is wrong; None if it can."""
    if depth > 100:
        return "nested more than 100 levels deep"
    if value is None or isinstance(value, (bool, str)):
        return None
    if isinstance(value, int):
        return "big-int" if not -_INT64 <= value < _INT64 else None
    if isinstance(value, float):
        return None if math.isfinite(value) else "non-finite"
    if isinstance(value, (list, tuple)):
        return next((p for p in (json_problem(v, depth + 1) for v in value) if p), None)
    if isinstance(value, dict):
        if any(not isinstance(k, str) for k in value):
            return "a key that is not a string"
        return next((p for p in (json_problem(v, depth + 1) for v in value.values()) if p), None)
    return f"{type(value).__name__} is not JSON"


def timeout(where: str, what: str, value: Any) -> float:
    from stackhop.core.ir import MAX_TIMEOUT_SECONDS

    seconds = number(where, what, value, positive=True)
    if seconds > MAX_TIMEOUT_SECONDS:
        raise fail(where, f"{what} must be at most {MAX_TIMEOUT_SECONDS} seconds (ten years), got {value!r}.")
    return seconds


def flag(where: str, what: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise fail(where, f"{what} must be True or False, got {type(value).__name__} {value!r}.")
    return value


def text(where: str, what: str, value: Any, *, allow_empty: bool = False, one_line: bool = True) -> str:
    if not isinstance(value, str):
        raise fail(where, f"{what} must be a string, got {type(value).__name__} {value!r}.")
    if not allow_empty and not value.strip():
        raise fail(where, f"{what} must not be empty.")
    if one_line and ("\n" in value or "\r" in value or "\0" in value):
        raise fail(where, f"{what} must be one line, got {value!r}.")
    return value


def scalar_text(where: str, what: str, value: Any) -> str:
    """A string, number or bool, as text (environment values, labels)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(where, f"{what} must be finite, got {value!r}.")
    if isinstance(value, (str, int, float, bool)) and "\0" not in str(value):
        return str(value)
    raise fail(where, f"{what} must be a string or a number, got {type(value).__name__} {value!r}.")


def name(where: str, what: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise fail(where, f"{what} {value!r} is not a valid name; use letters, digits, '_', '-' and '.', "
                          "starting with a letter or '_' (at most 63 characters).")
    return value


def env_name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        raise fail(where, f"environment variable name {value!r} is invalid; use letters, digits and '_'.")
    return value


def mapping(where: str, what: str, value: Any) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise fail(where, f"{what} must be a mapping, got {type(value).__name__} {value!r}.")
    return value
