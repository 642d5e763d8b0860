"""bytes as they are, JSON-able data as JSON, and pickle for anything else when the step allows it."""

from __future__ import annotations

import json
import pickle
from typing import Any

from stackhop.core.materializers import Materializer
from stackhop.errors import StackhopError


class BytesMaterializer(Materializer):
    name = "bytes"
    types = ("builtins.bytes", "builtins.bytearray", "builtins.memoryview")

    def save(self, value: Any, path: str) -> None:
        with open(path, "wb") as f:
            f.write(bytes(value))

    def load(self, path: str, expected: type | None, meta: dict[str, Any]) -> bytes:
        with open(path, "rb") as f:
            return f.read()


class JsonMaterializer(Materializer):
    """Lists, dicts, tuples, sets, None and numbers returned where the annotation does not say which."""

    name = "json"
    types = ("builtins.tuple", "builtins.list", "builtins.dict", "builtins.str", "builtins.int", "builtins.float",
             "builtins.bool", "builtins.NoneType", "builtins.set", "builtins.frozenset")
    priority = -10

    def save(self, value: Any, path: str) -> dict[str, Any]:
        kind = type(value).__name__
        data = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        try:
            text = json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StackhopError(f"the value is not JSON-able ({exc}); return plain lists, dicts and numbers.") from None
        meta = {"python_type": kind} if kind in ("tuple", "set", "frozenset") else {}
        if _restored(json.loads(text), meta) != value:
            raise StackhopError(
                "the value would not come back the same from JSON (tuples inside it, or keys that are not strings); "
                "return lists and string-keyed dicts, annotate a type a materializer stores, or pass allow_pickle=True.")
        with open(path, "w") as f:
            f.write(text)
        return meta

    def load(self, path: str, expected: type | None, meta: dict[str, Any]) -> Any:
        with open(path) as f:
            return _restored(json.load(f), meta)


def _restored(value: Any, meta: dict[str, Any]) -> Any:
    kind = meta.get("python_type")
    return {"tuple": tuple, "set": set, "frozenset": frozenset}[kind](value) if kind else value


class PickleMaterializer(Materializer):
    """Anything pickle can store; it runs code when loaded, so only with allow_pickle=True."""

    name = "pickle"
    types = ("builtins.object",)
    priority = -100
    pickle_based = True

    def save(self, value: Any, path: str) -> None:
        with open(path, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)

    def load(self, path: str, expected: type | None, meta: dict[str, Any]) -> Any:
        with open(path, "rb") as f:
            return pickle.load(f)
