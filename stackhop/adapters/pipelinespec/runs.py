"""What the Vertex and Kubeflow adapters share after compile: staging the run spec and reading task details.

Both backends report a run as tasks named like the PipelineSpec's; these helpers turn them
into stackhop's StepStates (loop iterations become `step[i]` in the order the backend lists
them) and read each step's `stackhop_meta` artifact for its log and outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from stackhop.adapters.pipelinespec.compiler import CODE_PARAM, META_OUTPUT, task_name
from stackhop.core.adapter import Compiled, RunRequest
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.runs import ArtifactRef, RunState, StepState, StepStatus

SPEC_FILE = "stackhop-spec.json"


def store_run_spec(compiled: Compiled, artifact_root: str) -> str:
    """Upload the run spec every step reads, once per content; returns its URI."""
    text = compiled.files[SPEC_FILE]
    store = ArtifactStore(artifact_root)
    uri = f"{store.root}/_stackhop/specs/{hashlib.sha256(text).hexdigest()}.json"
    if not store.exists(uri):
        store.write_bytes(uri, text)
    return uri


def parameter_values(request: RunRequest) -> dict[str, Any]:
    values = dict(request.parameters)
    values[CODE_PARAM] = f"{request.code.archive_uri}#{request.code.digest}" if request.code.archive_uri else ""
    return values


def shape(pipeline: dict[str, Any]) -> dict[str, Any]:
    """The part of the IR that maps task details to steps, small enough to keep in the run store."""
    return {"name": pipeline["name"], "steps": [{"name": s["name"], "group": s.get("group"), **_outputs(s)}
                                                for s in pipeline["steps"]],
            "groups": [{"id": g["id"], "kind": g["kind"], "parent": g.get("parent")} for g in pipeline.get("groups", [])]}


def _outputs(step: dict[str, Any]) -> dict[str, Any]:
    """A container step writes no record of its outputs, so the run keeps their types to report them by."""
    if step.get("kind") != "container":
        return {}
    return {"outputs": {o["name"]: o["type"] for o in step.get("outputs", [])}}


def step_names(pipeline: dict[str, Any]) -> dict[str, str]:
    return {task_name(s["name"]): s["name"] for s in pipeline["steps"]}


@dataclass
class Task:
    """A backend's task detail, reduced to what stackhop reads."""

    name: str
    state: str
    started_at: float | None = None
    finished_at: float | None = None
    message: str = ""
    outputs: dict[str, list[str]] = field(default_factory=dict)


def step_states(tasks: list[Task], names: dict[str, str], status_of: dict[str, StepStatus], terminal: bool,
                pipeline: dict[str, Any]) -> dict[str, StepState]:
    """Backend tasks -> StepStates keyed like local runs; group and driver tasks are left out."""
    out: dict[str, StepState] = {}
    loops = _in_loop(pipeline)
    for key, t in keyed(tasks, names, pipeline).items():
        meta = (t.outputs.get(META_OUTPUT) or [None])[0]
        out[key] = StepState(name=key, status=status_of.get(t.state, StepStatus.UNKNOWN), native=t.state,
                             attempts=1 if t.started_at else 0, started_at=t.started_at, finished_at=t.finished_at,
                             message=t.message, log_uri=f"{meta.rstrip('/')}/log.txt" if meta else None)
    for step in names.values():
        if step in loops or step in out:
            continue
        out[step] = StepState(name=step, status=StepStatus.SKIPPED if terminal else StepStatus.PENDING, native="not started")
    return out


def keyed(tasks: list[Task], names: dict[str, str], pipeline: dict[str, Any]) -> dict[str, Task]:
    """Step instance key -> task; a step in a loop gets `[i]` in the order the backend lists its tasks."""
    seen: dict[str, int] = {}
    out: dict[str, Task] = {}
    loops = _in_loop(pipeline)
    for t in tasks:
        step = names.get(t.name)
        if step is None:
            continue
        if step in loops:
            i = seen.get(step, 0)
            seen[step] = i + 1
            out[f"{step}[{i}]"] = t
        else:
            out[step] = t
    return out


def _in_loop(pipeline: dict[str, Any]) -> set[str]:
    groups = {g["id"]: g for g in pipeline.get("groups", [])}
    found = set()
    for s in pipeline["steps"]:
        gid = s.get("group")
        while gid is not None:
            if groups[gid]["kind"] == "parallel_for":
                found.add(s["name"])
                break
            gid = groups[gid].get("parent")
    return found


def list_folders(prefix: str) -> list[str]:
    """The folders directly under `prefix`, sorted; none when it does not exist."""
    store = ArtifactStore.for_uri(prefix)
    prefix = prefix.rstrip("/")
    if store.is_local:
        path = store.local_path(prefix)
        if not os.path.isdir(path):
            return []
        return [f"{prefix}/{name}" for name in sorted(os.listdir(path)) if os.path.isdir(os.path.join(path, name))]
    store.fs.invalidate_cache(prefix)  # a poll must see folders written since the last one
    try:
        entries = store.fs.ls(prefix, detail=True)
    except FileNotFoundError:
        return []
    return sorted(f"{store.scheme}://{e['name'].rstrip('/')}" for e in entries if e.get("type") == "directory")


def read_log(state: RunState, step: str) -> str | None:
    found = state.steps.get(step)
    if found is None or not found.log_uri:
        return None
    store = ArtifactStore.for_uri(found.log_uri)
    if not store.exists(found.log_uri):
        return None
    return store.read_bytes(found.log_uri).decode(errors="replace")


def artifacts(tasks: list[Task], names: dict[str, str], pipeline: dict[str, Any]) -> list[ArtifactRef]:
    """Each step's outputs: its outputs.json where the step wrote one, else the backend's output URIs."""
    refs: list[ArtifactRef] = []
    types = {s["name"]: s.get("outputs", {}) for s in pipeline["steps"]}
    for key, t in keyed(tasks, names, pipeline).items():
        meta = (t.outputs.get(META_OUTPUT) or [None])[0]
        record = None
        if meta:
            uri = f"{meta.rstrip('/')}/outputs.json"
            store = ArtifactStore.for_uri(uri)
            if store.exists(uri):
                record = store.read_json(uri)
        if record is not None:
            for name, value in record.get("scalars", {}).items():
                refs.append(ArtifactRef(uri=f"{meta.rstrip('/')}/outputs.json#{name}", type=_type_of(value), step=key,
                                        output=name, value=value))
            for name, art in record.get("artifacts", {}).items():
                refs.append(ArtifactRef(uri=art["uri"], type=art["type"], step=key, output=name,
                                        metadata=art.get("metadata") or {}, materializer=art.get("materializer"),
                                        materializer_meta=art.get("materializer_meta") or {},
                                        materializer_module=art.get("materializer_module"),
                                        digest=art.get("digest")))
            continue
        declared = types.get(names.get(t.name, ""), {})
        for name, uris in t.outputs.items():
            if name != META_OUTPUT and uris:
                refs.append(ArtifactRef(uri=uris[0], type=declared.get(name, "Artifact"), step=key, output=name))
    return refs


def _type_of(value: Any) -> str:
    return {str: "str", int: "int", float: "float", bool: "bool", list: "list", dict: "dict"}.get(type(value), "str")


def write_temp(text: bytes, suffix: str) -> str:
    import tempfile

    fd, path = tempfile.mkstemp(prefix="stackhop-", suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(text)
    return path


def dumps(doc: dict[str, Any]) -> bytes:
    """Sorted and compact: indenting would drop json to its pure-Python encoder, 20x slower on big specs."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
