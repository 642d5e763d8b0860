"""Dataclasses as JSON of their fields; nested dataclasses (and lists or dicts of them) are rebuilt from type hints."""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

from stackhop.core.materializers import Materializer, import_class, qualified
from stackhop.errors import StackhopError


class DataclassMaterializer(Materializer):
    name = "dataclass"

    @classmethod
    def distance(cls, tp: type) -> int | None:
        return 0 if dataclasses.is_dataclass(tp) and isinstance(tp, type) else None

    def save(self, value: Any, path: str) -> dict[str, Any]:
        try:
            text = json.dumps(dataclasses.asdict(value), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StackhopError(
                f"dataclass {type(value).__qualname__} has a field that is not JSON-able ({exc}); "
                "use plain fields, or register a materializer for it."
            ) from None
        with open(path, "w") as f:
            f.write(text)
        return {"class": qualified(type(value))}

    def load(self, path: str, expected: type | None, meta: dict[str, Any]) -> Any:
        with open(path) as f:
            data = json.load(f)
        cls = expected if expected is not None and dataclasses.is_dataclass(expected) else import_class(meta.get("class"))
        return rebuild(cls, data) if cls is not None else data


def rebuild(tp: Any, data: Any) -> Any:
    if dataclasses.is_dataclass(tp) and isinstance(data, dict):
        hints = typing.get_type_hints(tp)
        return tp(**{k: rebuild(hints.get(k), v) for k, v in data.items()})
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if (origin is typing.Union or type(tp).__name__ == "UnionType") and isinstance(data, (dict, list)):
        for arg in args:  # Optional[Inner], Inner | Other: the first that fits
            if arg is not type(None):
                try:
                    return rebuild(arg, data)
                except (TypeError, ValueError):
                    continue
        return data
    if origin in (list, tuple, set) and args and isinstance(data, list):
        return origin(rebuild(args[0], v) for v in data)
    if origin is dict and len(args) == 2 and isinstance(data, dict):
        return {k: rebuild(args[1], v) for k, v in data.items()}
    return data
