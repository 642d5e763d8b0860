"""What the Vertex and Kubeflow adapters share after compile: staging the run spec and reading task details.

Both backends report a run as tasks named like the PipelineSpec's; these helpers turn them
into stackhop's StepStates (a loop iteration becomes `step[i]`, told by the items its step
recorded, and labelled after them) and read each step's `stackhop_meta` artifact for its log
and outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from stackhop.adapters.pipelinespec.compiler import CODE_PARAM, META_OUTPUT, task_name
from stackhop.adapters.pipelinespec.runtime import ITERATION_FILE
from stackhop.core.adapter import Compiled, RunRequest
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.resolve import instance_key, item_names
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


def shape(pipeline: dict[str, Any], parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The part of the IR that maps task details to steps, small enough to keep in the run store.

    A loop keeps its items where they are known at submit (a list, or the list parameter's value), or
    the output they come from, so readers can tell which iteration a task ran."""
    return {"name": pipeline["name"], "steps": [{"name": s["name"], "group": s.get("group"), **_outputs(s)}
                                                for s in pipeline["steps"]],
            "groups": [_group(g, parameters or {}) for g in pipeline.get("groups", [])]}


def _group(group: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    out = {"id": group["id"], "kind": group["kind"], "parent": group.get("parent")}
    items = group.get("items") or {}
    if items.get("static") is not None:
        out["items"] = list(items["static"])
    elif items.get("param") is not None and isinstance(parameters.get(items["param"]), list):
        out["items"] = parameters[items["param"]]
    elif items.get("output") is not None:
        out["items_from"] = {"step": items["output"]["step"], "output": items["output"]["output"]}
    elif items.get("item") is not None:
        out["items_of"] = {"loop": items["item"]["loop"], "field": items["item"].get("field")}
    if group.get("key"):
        out["key"] = group["key"]
    return out


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
    label: str = ""
    """For a loop iteration, its name after its item (`train[lr=0.05]`); set by `keyed`."""

    @property
    def meta(self) -> str | None:
        found = (self.outputs.get(META_OUTPUT) or [None])[0]
        return found.rstrip("/") if found else None


def step_states(tasks: list[Task], names: dict[str, str], status_of: dict[str, StepStatus], terminal: bool,
                pipeline: dict[str, Any]) -> dict[str, StepState]:
    """Backend tasks -> StepStates keyed like local runs; group and driver tasks are left out."""
    out: dict[str, StepState] = {}
    groups = _groups(pipeline)
    for key, t in keyed(tasks, names, pipeline).items():
        out[key] = StepState(name=key, status=status_of.get(t.state, StepStatus.UNKNOWN), native=t.state,
                             attempts=1 if t.started_at else 0, started_at=t.started_at, finished_at=t.finished_at,
                             message=t.message, log_uri=f"{t.meta}/log.txt" if t.meta else None, label=t.label)
    for s in pipeline["steps"]:
        if _loops(s, groups) or s["name"] in out:
            continue
        out[s["name"]] = StepState(name=s["name"], status=StepStatus.SKIPPED if terminal else StepStatus.PENDING,
                                   native="not started")
    return out


def keyed(tasks: list[Task], names: dict[str, str], pipeline: dict[str, Any]) -> dict[str, Task]:
    """Step instance key -> task. A backend lists a loop's tasks in no set order, so each iteration is told by
    the loop items its step recorded (`iteration.json`) against the loop's items; tasks with no record take
    the iterations left, in listing order."""
    groups = _groups(pipeline)
    by_step: dict[str, list[Task]] = {}
    for t in tasks:
        if t.name in names:
            by_step.setdefault(names[t.name], []).append(t)
    out: dict[str, Task] = {}
    steps = {s["name"]: s for s in pipeline["steps"]}
    for s in pipeline["steps"]:  # definition order: a loop's producer is keyed before the loop
        found = by_step.get(s["name"], [])
        loops = _loops(s, groups)
        if not loops:
            if found:
                out[s["name"]] = found[-1]
            continue
        space = _space(loops, groups, steps, out)
        if space is None:  # the items are not known (yet): number the tasks as the backend lists them
            out.update({instance_key(s["name"], (i,)): t for i, t in enumerate(found)})
            continue
        for it, t in _place(found, loops, space):
            key = instance_key(s["name"], it.index)
            label = s["name"] + "".join(f"[{n}]" for n in it.names)
            t.label = label if label != key else ""
            out[key] = t
    return out


@dataclass
class _Iteration:
    index: tuple[int, ...]
    items: tuple[Any, ...]
    names: tuple[str, ...]


def _space(loops: list[dict[str, Any]], groups: dict[str, dict[str, Any]], steps: dict[str, dict[str, Any]],
           done: dict[str, Task]) -> list[_Iteration] | None:
    """Every iteration of the loops around a step, outermost first; None when some loop's items are not known."""
    level = [_Iteration((), (), ())]
    for loop in loops:
        nxt = []
        for it in level:
            items = _items(loop, it, loops, groups, steps, done)
            if items is None:
                return None
            names = item_names(items, loop.get("key"))
            nxt += [_Iteration(it.index + (i,), it.items + (x,), it.names + (names[i],)) for i, x in enumerate(items)]
        level = nxt
    return level


def _items(loop: dict[str, Any], outer: _Iteration, loops: list[dict[str, Any]], groups: dict[str, dict[str, Any]],
           steps: dict[str, dict[str, Any]], done: dict[str, Task]) -> list[Any] | None:
    if "items" in loop:
        return list(loop["items"])
    if "items_of" in loop:  # `ParallelFor(config.lrs)`: the list in the outer loop's item
        ref = loop["items_of"]
        item = outer.items[next(i for i, g in enumerate(loops) if g["id"] == ref["loop"])]
        value = (item.get(ref["field"]) if isinstance(item, dict) else None) if ref.get("field") else item
        return value if isinstance(value, list) else None
    source = loop.get("items_from")
    if source is None:
        return None
    depth = len(_loops(steps.get(source["step"], {}), groups))
    producer = done.get(instance_key(source["step"], outer.index[:depth]))
    record = _read_json(f"{producer.meta}/outputs.json") if producer is not None and producer.meta else None
    value = (record or {}).get("scalars", {}).get(source["output"])
    return value if isinstance(value, list) else None


def _place(tasks: list[Task], loops: list[dict[str, Any]], space: list[_Iteration]) -> list[tuple[_Iteration, Task]]:
    """Each task's iteration: the first free one its recorded items match, then the rest in listing order."""
    indexes: dict[tuple[str, ...], dict[str, list[_Iteration]]] = {}
    placed: dict[tuple[int, ...], tuple[_Iteration, Task]] = {}
    unknown: list[Task] = []
    for t in tasks:
        record = _read_json(f"{t.meta}/{ITERATION_FILE}") if t.meta else None
        given = _fields(record, loops)
        if not given:
            unknown.append(t)
            continue
        shape = tuple(sorted(given))
        if shape not in indexes:
            indexes[shape] = {}
            for it in space:
                indexes[shape].setdefault(_signature({f: _field(it, loops, f) for f in shape}), []).append(it)
        matches = indexes[shape].get(_signature(given), [])
        free = next((it for it in matches if it.index not in placed), None)
        if free is not None:
            placed[free.index] = (free, t)
        elif matches:  # a second task for one iteration (a retry the backend lists apart): the later one stands
            placed[matches[-1].index] = (matches[-1], t)
        else:
            unknown.append(t)
    free_left = (it for it in space if it.index not in placed)
    for t in unknown:
        it = next(free_left, None)
        if it is None:
            break
        placed[it.index] = (it, t)
    return [placed[i] for i in sorted(placed)]


def _fields(record: Any, loops: list[dict[str, Any]]) -> dict[str, Any]:
    """`{"<loop>/<field>": value}` from a step's iteration.json, for the loops it is in."""
    items = record.get("items") if isinstance(record, dict) else None
    if not isinstance(items, dict):
        return {}
    ids = {loop["id"] for loop in loops}
    return {f"{loop}/{name}": value for loop, fields in items.items() if loop in ids and isinstance(fields, dict)
            for name, value in fields.items()}


_MISSING = object()


def _field(it: _Iteration, loops: list[dict[str, Any]], path: str) -> Any:
    loop, _, name = path.partition("/")
    item = it.items[next(i for i, g in enumerate(loops) if g["id"] == loop)]
    if not name:
        return item
    return item.get(name, _MISSING) if isinstance(item, dict) else _MISSING


def _signature(values: dict[str, Any]) -> str:
    if any(v is _MISSING for v in values.values()):
        return ""
    return json.dumps(_plain(values), sort_keys=True, default=str)


def _plain(value: Any) -> Any:
    """Values as a step reads them back: 2 and 2.0 are one item (a float input turns 2 into 2.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


_READ: dict[str, Any] = {}


def _read_json(uri: str) -> Any:
    """A meta file, read once: a finished task's files never change, and runs are polled every few seconds."""
    if uri in _READ:
        return _READ[uri]
    store = ArtifactStore.for_uri(uri)
    try:
        value = store.read_json(uri) if store.exists(uri) else None
    except (OSError, ValueError):
        return None
    if value is not None:
        if len(_READ) > 50_000:
            _READ.clear()
        _READ[uri] = value
    return value


def _groups(pipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {g["id"]: g for g in pipeline.get("groups", [])}


def _loops(step: dict[str, Any], groups: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The loops around a step, outermost first."""
    found = []
    gid = step.get("group")
    while gid is not None:
        if groups[gid]["kind"] == "parallel_for":
            found.append(groups[gid])
        gid = groups[gid].get("parent")
    return found[::-1]


def pair_folders(tasks: list[Task], folders: list[str]) -> None:
    """Give each of one step's tasks a meta folder, where the API names none (KFP): a folder holding
    outputs.json goes to a finished task, one holding error.json to a failed one, the rest in order."""
    def ended(folder: str) -> str:
        if _read_json(f"{folder}/outputs.json") is not None:
            return "done"
        return "failed" if _read_json(f"{folder}/error.json") is not None else ""

    by_end: dict[str, list[str]] = {}
    for folder in folders:
        by_end.setdefault(ended(folder), []).append(folder)
    left: list[Task] = []
    for t in tasks:
        end = "done" if t.state in ("SUCCEEDED", "CACHED") else "failed" if t.state == "FAILED" else ""
        if by_end.get(end):
            t.outputs[META_OUTPUT] = [by_end[end].pop(0)]
        else:
            left.append(t)
    rest = [f for end in ("", "done", "failed") for f in by_end.get(end, [])]
    for t, folder in zip(left, rest):
        t.outputs[META_OUTPUT] = [folder]


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
        meta = t.meta
        record = _read_json(f"{meta}/outputs.json") if meta else None
        if record is not None:
            for name, value in record.get("scalars", {}).items():
                refs.append(ArtifactRef(uri=f"{meta}/outputs.json#{name}", type=_type_of(value), step=key,
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


def resubmitted(resume: dict[str, Any], backend: str, *, retried: bool = False) -> dict[str, Any]:
    """The ref fields of a run that resumes another on a PipelineSpec backend: retried in place, or resubmitted
    with caching on (the steps to run again with caching off, see `core.resume.by_backend`)."""
    from stackhop.core.resume import reasons

    again = reasons(resume)
    if retried:
        reused = [k for k, status in (resume.get("origin_steps") or {}).items() if status in ("SUCCEEDED", "CACHED")]
        return {"resumed": resume["origin"], "mechanism": "retry", "again": again, "reused": reused, "left_out": [],
                "note": f"{backend} retries the failed tasks of run {resume['origin']} in place"}
    return {"resumed": resume["origin"], "mechanism": "resubmit", "again": again,
            "left_out": list(resume.get("left_out", [])),
            "note": f"a new {backend} run with caching on: each step whose cache key is unchanged is served from "
                    "the cache, the steps to run again have caching off"}


def as_resumed(steps: dict[str, StepState], ref: Any) -> dict[str, StepState]:
    if not ref.resumed:
        return steps
    from stackhop.core.resume import marked

    return marked(steps, ref.resumed, ref.again, ref.reused, ref.left_out)
