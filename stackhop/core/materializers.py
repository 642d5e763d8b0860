"""Store and load step return values that are not scalars: bytes, numpy, pandas, JSON, pickle.

The materializer is chosen from the value's type without importing numpy or pandas (their
module name is enough), and recorded beside the artifact so `load()` needs no guessing.
Pickle runs arbitrary code on load, so it is used only when the step asked for it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from stackhop.errors import StackhopError


def _top_module(value: Any) -> str:
    return type(value).__module__.split(".")[0]


def save(value: Any, path: str, *, allow_pickle: bool, where: str) -> str:
    """Write `value` to `path`; return the materializer's name."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        with open(path, "wb") as f:
            f.write(bytes(value))
        return "bytes"
    mod = _top_module(value)
    if mod == "numpy" and type(value).__name__ == "ndarray":
        import numpy as np

        with open(path, "wb") as f:
            np.save(f, value, allow_pickle=False)
        return "numpy"
    if mod == "pandas" and type(value).__name__ in ("DataFrame", "Series"):
        frame = value.to_frame() if type(value).__name__ == "Series" else value
        try:
            frame.to_parquet(path)
            return "pandas-parquet"
        except ImportError:
            frame.to_json(path, orient="table")
            return "pandas-json"
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        if not allow_pickle:
            raise StackhopError(
                f"{where}: a {type(value).__module__}.{type(value).__name__} cannot be stored safely; return bytes, "
                "a numpy array, a DataFrame or JSON-able data, or pass allow_pickle=True to @step."
            ) from None
        import pickle

        with open(path, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        return "pickle"
    with open(path, "w") as f:
        f.write(text)
    return "json"


def load(path: str, materializer: str, *, allow_pickle: bool = False) -> Any:
    if materializer == "bytes":
        with open(path, "rb") as f:
            return f.read()
    if materializer == "json":
        with open(path) as f:
            return json.load(f)
    if materializer == "numpy":
        import numpy as np

        return np.load(path, allow_pickle=False)
    if materializer == "pandas-parquet":
        import pandas as pd

        return pd.read_parquet(path)
    if materializer == "pandas-json":
        import pandas as pd

        return pd.read_json(path, orient="table")
    if materializer == "pickle":
        if not allow_pickle:
            raise StackhopError(
                f"{os.path.basename(path)} was stored with pickle, which can run code when loaded; "
                "pass allow_pickle=True if you trust the run that wrote it."
            )
        import pickle

        with open(path, "rb") as f:
            return pickle.load(f)
    raise StackhopError(f"unknown materializer {materializer!r}; upgrade stackhop to read this artifact.")
