"""`runs resume`: a new run of the pipeline as its code is now, reusing the finished steps of an earlier run.

The reuse itself happens in the scheduler (`Scheduler._resumed`): a step is served from the
origin run when it finished there with the same cache key and its outputs still exist, and runs
again otherwise, with the reason recorded like a cache miss's. This module picks what must run
again (`--from` and everything downstream of it) and starts the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackhop.core.adapter import Capability
from stackhop.errors import CapabilityError, StackhopError

if TYPE_CHECKING:
    from stackhop.core.handles import RunHandle
    from stackhop.core.ir import Pipeline
    from stackhop.core.runs import StepState


def downstream(pipeline: dict[str, Any], start: str, *, waits: bool = True) -> list[str]:
    """`start` and every step that reads it, or (with `waits`) waits for it, directly or through others, in
    pipeline order."""
    groups = {g["id"]: g for g in pipeline.get("groups", [])}
    readers: dict[str, set[str]] = {}
    for s in pipeline["steps"]:
        for up in _upstream(s, groups, waits=waits):
            readers.setdefault(up, set()).add(s["name"])
    found, todo = {start}, [start]
    while todo:
        for reader in readers.get(todo.pop(), ()):
            if reader not in found:
                found.add(reader)
                todo.append(reader)
    return [s["name"] for s in pipeline["steps"] if s["name"] in found]


def _upstream(step: dict[str, Any], groups: dict[str, dict[str, Any]], *, waits: bool = True) -> set[str]:
    out = set(step.get("after", [])) if waits else set()
    values = [i["value"] for i in step.get("inputs", []) if i.get("value")]
    gid = step.get("group")
    while gid is not None:  # a loop's items and a condition's operands are read by every step inside
        g = groups[gid]
        if (g.get("items") or {}).get("output"):
            values.append(g["items"]["output"])
        if g.get("condition"):
            values += _operands(g["condition"])
        gid = g.get("parent")
    for v in values:
        if v.get("kind") in ("output", "collected"):
            out.add(v["step"])
        elif v.get("kind") == "oneof":
            out |= {x["step"] for x in v["values"]}
    return out


def _operands(expr: dict[str, Any]) -> list[dict[str, Any]]:
    if expr["kind"] == "compare":
        return [expr["left"], expr["right"]]
    if expr["kind"] == "not":
        return _operands(expr["operand"])
    return [v for e in expr["operands"] for v in _operands(e)]


def _load(run_id: str, name: str, source: dict[str, Any], import_user_file: Any) -> Any:
    path = Path(source.get("file", ""))
    if not source.get("file") or not path.is_file():
        raise StackhopError(f"run {run_id}: the file that defined pipeline {name!r} "
                            f"({source.get('file') or 'not recorded'}) is not there to resume it from; pass the "
                            f"pipeline, get_run({run_id!r}).resume(pipeline=...), as a notebook must.")
    found = getattr(import_user_file(path), source["name"], None)
    if found is None:
        raise StackhopError(f"run {run_id}: {path} no longer defines {source['name']!r}; pass the pipeline, "
                            f"get_run({run_id!r}).resume(pipeline=...).")
    return found


def pipeline_of(origin: "RunHandle") -> Any:
    """The @pipeline a run ran, loaded from its file as the code is now."""
    from stackhop.core.user_imports import import_user_file

    rec = origin.store.get(origin.run_id)
    return _load(origin.run_id, rec.pipeline, rec.source or {}, import_user_file)


def uncached(ir: "Pipeline", steps: list[str]) -> "Pipeline":
    """The IR with caching off on `steps`: how a backend that reuses through its own cache runs them again."""
    if not steps:
        return ir
    chosen = set(steps)
    return ir.model_copy(update={"steps": tuple(
        s.model_copy(update={"settings": s.settings.model_copy(update={"caching": False})}) if s.name in chosen else s
        for s in ir.steps)})


LEFT_OUT = "left out of the resumed run (--skip)"


def by_backend(ir: "Pipeline", resume: dict[str, Any], backend: str) -> "Pipeline":
    """`Adapter.for_resume` of a backend that reuses through its own cache or retry: the steps to run again have
    caching off, and the steps left out (`--skip`, and the steps that read them) are not in the document, since
    such a backend runs every step of the one it is given."""
    return uncached(without(ir, resume.get("left_out", []), resume["origin"], backend), resume.get("rerun", []))


def left_out(pipeline: dict[str, Any], skip: list[str]) -> list[str]:
    """The steps `--skip` leaves out: those named, and every step that reads one of them (a step that only runs
    after one still runs, as the scheduler does)."""
    gone = {name for s in skip for name in downstream(pipeline, s, waits=False)}
    return [s["name"] for s in pipeline["steps"] if s["name"] in gone]


def without(ir: "Pipeline", steps: list[str], origin: str, backend: str) -> "Pipeline":
    """The IR without `steps`: nothing waits for them, no output returns them, no group is left empty."""
    if not steps:
        return ir
    from stackhop.core.validate import validate
    from stackhop.errors import ValidationError

    gone = set(steps)
    kept = [s.model_copy(update={"after": tuple(a for a in s.after if a not in gone)})
            for s in ir.steps if s.name not in gone]
    used = {g for s in kept for g in _chain(ir, s.group)}
    outputs = tuple(o for o in ir.outputs if not any(src.step in gone for src in o.sources))
    pruned = ir.model_copy(update={"steps": tuple(kept), "groups": tuple(g for g in ir.groups if g.id in used),
                                   "outputs": outputs})
    try:
        validate(pruned)
    except ValidationError as exc:
        raise CapabilityError(f"run {origin}: {backend} runs every step of its document, and without "
                              f"{', '.join(steps)} pipeline {ir.name!r} is not one it can run ({exc}); resume "
                              "without --skip.") from None
    return pruned


def _chain(ir: "Pipeline", group: str | None) -> list[str]:
    by_id = {g.id: g for g in ir.groups}
    out = []
    while group is not None:
        out.append(group)
        group = by_id[group].parent
    return out


def reasons(resume: dict[str, Any]) -> dict[str, str]:
    """Instance key -> why it runs again, for a backend that does not say so itself: what the origin recorded."""
    said = {"FAILED": "it failed", "SKIPPED": "it was skipped", "CANCELLED": "it was cancelled",
            "RUNNING": "it did not finish", "PENDING": "it had not started"}
    out = {}
    rerun = set(resume.get("rerun", []))
    for key, status in (resume.get("origin_steps") or {}).items():
        if key.split("[", 1)[0] in rerun:
            out[key] = f"resumed from {resume.get('from')}"
        elif status not in ("SUCCEEDED", "CACHED"):
            out[key] = f"{said.get(status, 'it did not run')} in run {resume['origin']}"
    return out


def marked(steps: dict[str, "StepState"], resumed: str, again: dict[str, str], reused: list[str],
           left: tuple[str, ...] | list[str] = ()) -> dict[str, "StepState"]:
    """A resumed run's steps as stackhop says them: those reused in place (a retry) CACHED from the origin, those
    run again with the reason, those left out (`--skip`) SKIPPED."""
    from dataclasses import replace

    from stackhop.core.runs import StepState, StepStatus

    out = {name: StepState(name=name, status=StepStatus.SKIPPED, native="skipped", message=LEFT_OUT) for name in left}
    for key, state in steps.items():
        if key in reused and state.status in (StepStatus.SUCCEEDED, StepStatus.CACHED):
            state = replace(state, status=StepStatus.CACHED, native="resumed", message=f"outputs of run {resumed}",
                            cache={"result": "hit", "from_run": resumed})
        elif key in again:
            state = replace(state, cache={"result": "miss", "changed": [again[key]]})
        out[key] = state
    return out


def resume(origin: "RunHandle", *, pipeline: Any = None, from_step: str | None = None, skip: list[str] | None = None,
           parameters: dict[str, Any] | None = None, wait: bool = True, progress: bool | None = None, config: Any = None,
           **run_options: Any) -> "RunHandle":
    """`pipeline`: the @pipeline to run, where it is not in a file (a notebook's); else it is loaded from the file
    the run recorded. `skip`: steps left out of the new run (they, and the steps that read them, are SKIPPED).
    `run_options` go to `run` as they are (the CLI's run id, progress follower, text parameters)."""
    from stackhop.core.api import run

    rec = origin.store.get(origin.run_id)
    ref_adapter = origin.ref.adapter
    emulate = ref_adapter != origin.adapter.name  # an emulated run is a local run of the document
    if Capability.RESUME not in type(origin.reader).capabilities:
        raise CapabilityError(f"run {origin.run_id}: adapter {origin.adapter.name!r} cannot resume its runs; run "
                              "the pipeline again with caching on instead.")
    if pipeline is None:
        pipeline = pipeline_of(origin)
    ir = pipeline.build()
    if ir.name != rec.pipeline:
        raise StackhopError(f"run {origin.run_id} ran pipeline {rec.pipeline!r}, not {ir.name!r}; pass the pipeline "
                            "it ran.")
    rerun: list[str] = []
    names = [s.name for s in ir.steps]
    for given_step, what in [(from_step, "to resume from"), *[(s, "to skip") for s in skip or []]]:
        if given_step is not None and given_step not in names:
            raise StackhopError(f"run {origin.run_id}: pipeline {ir.name!r} has no step {given_step!r} {what}; "
                                f"its steps are {', '.join(names)}.")
    shape = json.loads(ir.to_json())
    if from_step is not None:
        rerun = downstream(shape, from_step)
    given = {k: v for k, v in rec.parameters.items() if k not in (parameters or {})}
    if run_options.get("_parameters_are_strings"):  # the recorded values are typed already: give them as text too
        given = {k: v if isinstance(v, str) else json.dumps(v) for k, v in given.items()}
    return run(pipeline, rec.stack, {**given, **(parameters or {})}, wait=wait, progress=progress,
               config=config, emulate=emulate, **run_options,
               _resume={"origin": origin.run_id, "rerun": rerun, **({"from": from_step} if from_step else {}),
                        **({"skip": list(skip), "left_out": left_out(shape, list(skip))} if skip else {}),
                        "origin_ref": dict(rec.backend_ref),
                        "origin_parameters": dict(rec.parameters),
                        "origin_steps": {k: s.status.value for k, s in origin.steps().items()}})
