"""scikit-learn estimators: skops' format when installed (no pickle), else joblib with allow_pickle=True.

skops refuses types it does not know unless told to trust them. The types a step's estimator
holds are recorded when the step writes it, and only those are trusted when it is read back:
an artifact swapped for one carrying other types is refused.
"""

from __future__ import annotations

from typing import Any

from stackhop.core.materializers import Materializer
from stackhop.errors import StackhopError

_TYPES = ("sklearn.base.BaseEstimator",)


class SkopsMaterializer(Materializer):
    name = "skops"
    types = _TYPES
    priority = 10
    requires = ("skops", "sklearn")
    install = "pip install skops"

    def save(self, value: Any, path: str) -> dict[str, Any]:
        import skops.io as sio

        sio.dump(value, path)
        return {"trusted": sorted(sio.get_untrusted_types(file=path))}

    def load(self, path: str, expected: type | None, meta: dict[str, Any]) -> Any:
        import skops.io as sio

        trusted = list(meta.get("trusted") or [])
        unknown = sorted(set(sio.get_untrusted_types(file=path)) - set(trusted))
        if unknown:
            raise StackhopError(
                f"{path} holds types the step that wrote it did not record ({', '.join(unknown[:3])}); "
                "it may have been replaced, so it is not loaded."
            )
        return sio.load(path, trusted=trusted)


class JoblibMaterializer(Materializer):
    name = "joblib"
    types = _TYPES
    pickle_based = True
    requires = ("joblib",)
    install = "pip install joblib"

    def save(self, value: Any, path: str) -> None:
        import joblib

        joblib.dump(value, path)

    def load(self, path: str, expected: type | None, meta: dict[str, Any]) -> Any:
        import joblib

        return joblib.load(path)
