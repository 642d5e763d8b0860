"""How a SageMaker run resumes another: RetryPipelineExecution, SelectiveExecutionConfig, or a new execution.

SageMaker offers two ways to continue an execution, each with its limits. Retry runs the failed
steps of the same execution again, so it fits only when nothing changed: the definition, every
parameter (the code archive is one) and no `--from`. Selective execution starts a new execution
that runs the steps it is given and takes the others' properties from a source execution; the
selection must hold every step on a path between two selected ones, and at most 50 steps. Steps
to run again are those that did not succeed, whose definition or parameters changed, or that
`--from` names, and everything downstream of them: a closed set, so always a valid selection.
What fits neither is a new execution with caching on, and the plan says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_SELECTED = 50
"""SelectiveExecutionConfig.SelectedSteps holds at most 50 steps (botocore's SelectedStepList)."""


@dataclass(frozen=True)
class Plan:
    mechanism: str
    """"retry", "selective" or "rerun"."""
    selected: tuple[str, ...] = ()
    """SageMaker steps that run (all of them for a rerun)."""
    reused: tuple[str, ...] = ()
    """SageMaker steps whose results come from the origin execution."""
    why: dict[str, str] = field(default_factory=dict)
    """SageMaker step -> why it runs again."""
    note: str = ""


def plan(origin: str, before: dict[str, Any], after: dict[str, Any], before_params: dict[str, str],
         after_params: dict[str, str], statuses: dict[str, str], execution_status: str, rerun: set[str],
         from_step: str | None, changed: set[str] | frozenset[str] = frozenset()) -> Plan:
    """`before`/`after`: the origin's definition and the new one; `statuses`: SageMaker step -> its status in
    the origin; `rerun`: SageMaker steps `--from` runs again; `changed`: steps whose part of the run spec changed."""
    old, new = _steps(before), _steps(after)
    reasons: dict[str, str] = {}
    for name in new:
        status = statuses.get(name, "")
        condition = new[name].get("_condition")
        if not status and condition and statuses.get(condition) == "Succeeded" and name not in rerun:
            continue  # its condition chose the other branch: it runs again only if the condition does
        if name in rerun:
            reasons[name] = f"resumed from {from_step}"
        elif status != "Succeeded":
            said = {"Failed": "it failed", "Stopped": "it was stopped", "Stopping": "it was stopped",
                    "Executing": "it did not finish"}
            reasons[name] = f"{said.get(status, 'it did not run')} in run {origin}"
        elif name in changed or _without_nested(old.get(name)) != _without_nested(new[name]):
            reasons[name] = "its definition changed"
        else:
            changed = sorted(p for p in _parameters(new[name]) if before_params.get(p) != after_params.get(p))
            if changed:
                reasons[name] = ("the code changed" if changed == ["StackhopCode"]
                                 else f"parameter {', '.join(changed)} changed")
    unchanged = (json.dumps(before, sort_keys=True) == json.dumps(after, sort_keys=True)
                 and before_params == after_params and not rerun and not changed)
    if unchanged and execution_status in ("Failed", "Stopped"):
        return Plan("retry", tuple(sorted(reasons)), tuple(n for n in new if n not in reasons), reasons)
    for name, up in _closure(new, set(reasons)).items():
        reasons.setdefault(name, f"{up} runs again")
    runs = [n for n in new if n in reasons]
    reused = tuple(n for n in new if n not in reasons)
    if not reused:
        return Plan("rerun", tuple(runs), (), reasons,
                    "every step runs again, so this is a new execution (with SageMaker's cache on)")
    if len(runs) > MAX_SELECTED:
        return Plan("rerun", tuple(new), (), reasons,
                    f"{len(runs)} steps run again, more than the {MAX_SELECTED} a selective execution takes; this is "
                    "a new execution, and SageMaker's cache serves the steps it can")
    return Plan("selective", tuple(runs), reused, reasons)


def _steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for step in definition.get("Steps", []):
        out[step["Name"]] = step
        if step.get("Type") == "Condition":
            for inner in step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []):
                out[inner["Name"]] = {**inner, "_condition": step["Name"]}
    return out


def _without_nested(step: dict[str, Any] | None) -> Any:
    """A condition step compared by its own conditions: its branches are compared step by step."""
    if step is None or step.get("Type") != "Condition":
        return step
    args = {k: v for k, v in step["Arguments"].items() if k not in ("IfSteps", "ElseSteps")}
    return {**step, "Arguments": args}


def _references(value: Any, prefix: str) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        got = value.get("Get")
        if isinstance(got, str) and got.startswith(prefix):
            found.add(got[len(prefix):].split(".", 1)[0].split("[", 1)[0])
        for v in value.values():
            found |= _references(v, prefix)
    elif isinstance(value, list):
        for v in value:
            found |= _references(v, prefix)
    return found


def _parameters(step: dict[str, Any]) -> set[str]:
    return _references(_without_nested(step), "Parameters.")


def _closure(steps: dict[str, dict[str, Any]], start: set[str]) -> dict[str, str]:
    """Every step downstream of `start` -> the upstream step it runs again after."""
    readers: dict[str, set[str]] = {}
    for name, step in steps.items():
        ups = _references(_without_nested(step), "Steps.") | set(step.get("DependsOn", []))
        if step.get("_condition"):
            ups.add(step["_condition"])
        for up in ups:
            readers.setdefault(up, set()).add(name)
    out: dict[str, str] = {}
    todo = sorted(start)
    while todo:
        up = todo.pop()
        for reader in sorted(readers.get(up, ())):
            if reader not in start and reader not in out:
                out[reader] = up
                todo.append(reader)
    return out
