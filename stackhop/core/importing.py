"""`importer(...)`: an artifact that already exists (a dataset in S3, a model from an earlier run) as a step output.

Nothing is copied and no process runs: the URI is the artifact. Its record is computed from
the IR wherever it is needed (the scheduler settles the step after checking the URI exists,
and a step process reading it needs no file), so every backend agrees on what was imported.
"""

from __future__ import annotations

import os
import reprlib
from typing import Any

from stackhop.core import checks
from stackhop.core.artifact_types import Artifact
from stackhop.core.artifacts import normalize_root
from stackhop.core.tracing import PipelineParam, Task, current_trace
from stackhop.errors import ArtifactError, PipelineDefinitionError

IMPORTED = "artifact"
"""The importer's one output, named as kfp names it."""


def importer(uri: Any, artifact_type: type[Artifact] | None = None, metadata: dict[str, Any] | None = None, *,
             reimport: bool = False, name: str = "importer") -> Task:
    """`importer("s3://data/iris.csv", Dataset, metadata={"rows": 150}).output` is an input for any step.

    `uri` is a URI (s3://, gs://, file://), an absolute path, a `str` pipeline parameter, or an
    artifact of an earlier run (`get_run(id).artifact("train", "model")`), whose type and
    metadata come along."""
    where = f"importer {name!r}"
    trace = current_trace(where)
    found_type, found_meta = None, {}
    if hasattr(uri, "uri") and hasattr(uri, "type") and not isinstance(uri, (str, PipelineParam)):
        found_type, found_meta, uri = getattr(uri, "type"), dict(getattr(uri, "metadata", None) or {}), uri.uri
    type_name = _type_name(where, artifact_type, found_type)
    if isinstance(uri, PipelineParam):
        if uri.type != "str":
            raise PipelineDefinitionError(f"{where} takes its URI from pipeline parameter {uri.name!r}, which is "
                                          f"{uri.type}; declare it `str`.")
    elif isinstance(uri, str):
        uri = _as_uri(where, uri)
    else:
        raise PipelineDefinitionError(
            f"{where} needs a URI string, a str pipeline parameter or an earlier run's artifact, not "
            f"{reprlib.repr(uri)}.")
    meta = {**found_meta, **(metadata or {})}
    problem = checks.json_problem(meta)
    if problem or not all(isinstance(k, str) for k in meta):
        raise PipelineDefinitionError(f"{where}: metadata {reprlib.repr(meta)} must be a dict of str keys and JSON "
                                      "values.")
    task = Task(name=trace.unique_name(name), explicit_name=False, kind="importer", group=trace.group,
                inputs={"uri": uri}, input_types={"uri": ("str", False, None, False)},
                output_types={IMPORTED: (type_name, False)},
                importer={"artifact_type": type_name, "metadata": meta, "reimport": bool(reimport)})
    return trace.add_task(task)


def _type_name(where: str, given: Any, found: str | None) -> str:
    if given is None:
        return found or "Artifact"
    if isinstance(given, type) and issubclass(given, Artifact):
        return given.type_name
    raise PipelineDefinitionError(f"{where}: artifact_type must be an artifact class such as Dataset or Model, "
                                  f"not {reprlib.repr(given)}.")


def _as_uri(where: str, text: str) -> str:
    if "://" in text:
        return text
    if os.path.isabs(text):
        return normalize_root(text)
    raise PipelineDefinitionError(f"{where} needs a URI (s3://, gs://, file://) or an absolute path, not the relative "
                                  f"path {text!r}; write its absolute path or upload it.")


def imported_record(step: dict[str, Any], uri: Any) -> dict[str, Any]:
    """The output record of an importer step whose `uri` input resolved to `uri` (None: not known here)."""
    if uri is not None and (not isinstance(uri, str) or not uri):
        raise ArtifactError(f"step {step['name']!r} imports {uri!r}, which is not a URI; pass one such as "
                            "s3://bucket/data.csv.")
    if uri is not None:
        uri = normalize_root(uri)  # a plain path, as a parameter may hold one, becomes its file:// URI
    spec = step["importer"]
    art = {"uri": uri, "type": spec["artifact_type"], "metadata": dict(spec.get("metadata") or {})}
    return {"scalars": {}, "artifacts": {IMPORTED: art}}
