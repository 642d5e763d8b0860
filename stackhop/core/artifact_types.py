"""Artifact classes a step's code touches at run time, and the Input/Output markers.

Deliberately free of pydantic and fsspec: every step process imports this module, and a
step process that starts fast is what keeps a 100-step chain in seconds.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Generic, TypeVar


class Artifact:
    """A file or directory produced by one step and consumed by others.

    `path` is local: the step reads or writes it as it likes. `uri` is where the artifact
    lives in the artifact store; the entrypoint moves bytes between the two.
    """

    type_name = "Artifact"
    step = ""
    """The step writing it, when a step process made it: named in the errors its methods raise."""

    def __init__(self, name: str = "", uri: str = "", path: str = "", metadata: dict | None = None):
        self.name = name
        self.uri = uri
        self.path = path
        self.metadata: dict[str, Any] = dict(metadata or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, uri={self.uri!r})"


class Dataset(Artifact):
    type_name = "Dataset"


class Model(Artifact):
    type_name = "Model"


class HTML(Artifact):
    type_name = "HTML"


class Markdown(Artifact):
    type_name = "Markdown"


class Metrics(Artifact):
    """Scalar metrics; stored as JSON so every backend's UI and our gates can read them."""

    type_name = "Metrics"

    def log_metric(self, name: str, value: float | int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"metric {name!r} must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            what = (f"step {self.step!r} logged {value!r} as metric {name!r} of output {self.name!r}" if self.step
                    else f"metric {name!r} of output {self.name!r} is {value!r}")
            raise ValueError(f"{what}; JSON has no NaN or infinity, so log a finite number or leave the metric out.")
        self.metadata[name] = value
        self._flush()

    def _flush(self) -> None:
        if self.path:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            with open(self.path, "w") as f:
                json.dump(self.metadata, f, sort_keys=True)


class ClassificationMetrics(Metrics):
    type_name = "ClassificationMetrics"

    def log_confusion_matrix(self, categories: list[str], matrix: list[list[int]]) -> None:
        if len(matrix) != len(categories) or any(len(row) != len(categories) for row in matrix):
            raise ValueError("confusion matrix must be square with one row and column per category")
        self.metadata["confusionMatrix"] = {"categories": list(categories), "matrix": matrix}
        self._flush()

    def log_roc_curve(self, fpr: list[float], tpr: list[float], threshold: list[float]) -> None:
        if not (len(fpr) == len(tpr) == len(threshold)):
            raise ValueError("fpr, tpr and threshold must have the same length")
        self.metadata["confidenceMetrics"] = [
            {"falsePositiveRate": f, "recall": t, "confidenceThreshold": c}
            for f, t, c in zip(fpr, tpr, threshold)
        ]
        self._flush()


ARTIFACT_CLASSES: dict[str, type[Artifact]] = {
    cls.type_name: cls
    for cls in (Artifact, Dataset, Model, Metrics, ClassificationMetrics, HTML, Markdown)
}

T = TypeVar("T", bound=Artifact)


class Input(Generic[T]):
    """`dataset: Input[Dataset]`: the step reads an artifact another step wrote."""


class Output(Generic[T]):
    """`model: Output[Model]`: the step writes an artifact at `model.path`."""
