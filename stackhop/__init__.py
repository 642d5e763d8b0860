"""stackhop: write an ML pipeline once, run it on any orchestrator.

Only what users touch is exported here, and it is loaded on first use (PEP 562), so
`import stackhop` stays instant and never pulls in pydantic, a cloud SDK or pandas.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # authoring
    "step": "stackhop.core.dsl",
    "pipeline": "stackhop.core.dsl",
    "container_step": "stackhop.core.containers",
    "container_component": "stackhop.core.containers",
    "ContainerSpec": "stackhop.core.containers",
    "load_component": "stackhop.components",
    "load_component_from_text": "stackhop.components",
    "export_component": "stackhop.components",
    "resource_op": "stackhop.core.dsl",
    "fail_step": "stackhop.core.dsl",
    "If": "stackhop.core.dsl",
    "Elif": "stackhop.core.dsl",
    "Else": "stackhop.core.dsl",
    "Condition": "stackhop.core.dsl",
    "ParallelFor": "stackhop.core.dsl",
    "Collected": "stackhop.core.tracing",
    "OneOf": "stackhop.core.tracing",
    "importer": "stackhop.core.importing",
    "ExitHandler": "stackhop.core.dsl",
    "InputPath": "stackhop.core.containers",
    "InputValue": "stackhop.core.containers",
    "InputUri": "stackhop.core.containers",
    "OutputPath": "stackhop.core.containers",
    "OutputUri": "stackhop.core.containers",
    "Concat": "stackhop.core.containers",
    "IfPresent": "stackhop.core.containers",
    "ImageSettings": "stackhop.core.image_settings",
    "Materializer": "stackhop.core.materializers",
    "materializer": "stackhop.core.materializers",
    # artifacts
    "Input": "stackhop.core.artifact_types",
    "Output": "stackhop.core.artifact_types",
    "Artifact": "stackhop.core.artifact_types",
    "Dataset": "stackhop.core.artifact_types",
    "Model": "stackhop.core.artifact_types",
    "Metrics": "stackhop.core.artifact_types",
    "ClassificationMetrics": "stackhop.core.artifact_types",
    "HTML": "stackhop.core.artifact_types",
    "Markdown": "stackhop.core.artifact_types",
    # running
    "run": "stackhop.core.api",
    "compile": "stackhop.core.api",
    "get_run": "stackhop.core.handles",
    "runs": "stackhop.core.handles",
    "metrics": "stackhop.core.run_metrics",
    "RunHandle": "stackhop.core.handles",
    "RunStatus": "stackhop.core.runs",
    "StepStatus": "stackhop.core.runs",
    "ArtifactRef": "stackhop.core.runs",
    "StackhopError": "stackhop.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stackhop' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from stackhop.core.api import compile, run
    from stackhop.core.handles import RunHandle, get_run, runs
    from stackhop.core.artifact_types import (
        HTML, Artifact, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output,
    )
    from stackhop.components import export_component, load_component, load_component_from_text
    from stackhop.core.containers import (
        Concat, ContainerSpec, IfPresent, InputPath, InputUri, InputValue, OutputPath, OutputUri,
        container_component, container_step,
    )
    from stackhop.core.tracing import Collected, OneOf
    from stackhop.core.importing import importer
    from stackhop.core.dsl import (
        Condition, Elif, Else, ExitHandler, If, ParallelFor, fail_step, pipeline, resource_op, step,
    )
    from stackhop.core.materializers import Materializer, materializer
    from stackhop.core.runs import ArtifactRef, RunStatus, StepStatus
    from stackhop.errors import StackhopError
