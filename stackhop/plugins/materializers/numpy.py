"""numpy arrays as .npy files, never pickled (object arrays are refused)."""

from __future__ import annotations

from typing import Any

from stackhop.core.materializers import Materializer
from stackhop.errors import StackhopError


class NumpyMaterializer(Materializer):
    name = "numpy"
    types = ("numpy.ndarray",)
    requires = ("numpy",)
    install = "pip install numpy"

    def save(self, value: Any, path: str) -> None:
        import numpy as np

        if value.dtype.hasobject:
            raise StackhopError("a numpy array of Python objects cannot be stored without pickle; "
                                "convert it to a numeric or string dtype, or pass allow_pickle=True and return it unannotated.")
        with open(path, "wb") as f:
            np.save(f, value, allow_pickle=False)

    def load(self, path: str, expected: type | None, meta: dict[str, Any]) -> Any:
        import numpy as np

        return np.load(path, allow_pickle=False)
