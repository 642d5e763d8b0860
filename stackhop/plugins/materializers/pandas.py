"""pandas DataFrames and Series: Parquet when pyarrow is installed, else pandas' JSON table format."""

from __future__ import annotations

from typing import Any

from stackhop.core.materializers import Materializer

_TYPES = ("pandas.DataFrame", "pandas.Series")


def _frame(value: Any) -> tuple[Any, dict[str, Any]]:
    if type(value).__name__ == "Series":
        name = value.name if value.name is not None else "value"
        return value.to_frame(name=str(name)), {"series": str(name)}
    return value, {}


def _back(frame: Any, meta: dict[str, Any]) -> Any:
    return frame[meta["series"]] if meta.get("series") else frame


class PandasParquetMaterializer(Materializer):
    name = "pandas-parquet"
    types = _TYPES
    priority = 10
    requires = ("pandas", "pyarrow")
    install = "pip install pandas pyarrow"

    def save(self, value: Any, path: str) -> dict[str, Any]:
        frame, meta = _frame(value)
        frame.to_parquet(path)
        return meta

    def load(self, path: str, expected: type | None, meta: dict[str, Any]) -> Any:
        import pandas as pd

        return _back(pd.read_parquet(path), meta)


class PandasJsonMaterializer(Materializer):
    name = "pandas-json"
    types = _TYPES
    requires = ("pandas",)
    install = "pip install pandas"

    def save(self, value: Any, path: str) -> dict[str, Any]:
        frame, meta = _frame(value)
        frame.to_json(path, orient="table")
        return meta

    def load(self, path: str, expected: type | None, meta: dict[str, Any]) -> Any:
        import pandas as pd

        return _back(pd.read_json(path, orient="table"), meta)
