"""Map Job conditions and pod states to stackhop's words, keeping Kubernetes' own beside them.

Pure functions over the API's JSON, so they are tested without a cluster and shared by the
driver and the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STUCK_WAITING = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError",
                 "CreateContainerError", "RunContainerError"}
IMMEDIATELY_FATAL = {"InvalidImageName"}


@dataclass(frozen=True)
class Outcome:
    state: str  # "running" | "succeeded" | "failed" | "stuck"
    native: str
    reason: str = ""
    exit_code: int | None = None
    waiting: str = ""


def _true_conditions(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}


def job_outcome(job: dict[str, Any], pods: list[dict[str, Any]]) -> Outcome:
    conds = _true_conditions(job)
    for kind in ("Complete", "SuccessCriteriaMet"):
        if kind in conds:
            return Outcome("succeeded", kind, exit_code=0)
    for kind in ("Failed", "FailureTarget"):
        if kind in conds:
            c = conds[kind]
            detail, code = _last_termination(pods)
            reason = f"Job {job['metadata']['name']} failed: {c.get('reason', kind)}"
            if c.get("message"):
                reason += f" ({c['message']})"
            if detail:
                reason += f"; last pod: {detail}"
            return Outcome("failed", c.get("reason", kind), reason, code)
    if "Suspended" in conds:
        return Outcome("running", "Suspended")
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in STUCK_WAITING:
                message = f"{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
                return Outcome("stuck", waiting["reason"], f"pod {pod['metadata']['name']} is {message}",
                               waiting=waiting["reason"])
    active = (job.get("status") or {}).get("active") or 0
    return Outcome("running", "Running" if active else "Pending")


def _last_termination(pods: list[dict[str, Any]]) -> tuple[str, int | None]:
    best: tuple[str, str, int | None] | None = None
    for pod in pods:
        status = pod.get("status") or {}
        for cs in status.get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated")
            if term:
                text = f"{term.get('reason', 'Error')}, exit code {term.get('exitCode')}"
                stamp = term.get("finishedAt") or ""
                if best is None or stamp >= best[0]:
                    best = (stamp, text, term.get("exitCode"))
        if status.get("reason") == "Evicted" and best is None:
            best = ("", f"Evicted: {status.get('message', '')}", None)
    return (best[1], best[2]) if best else ("", None)


def lookup(obj: Any, path: str) -> Any:
    """`status.conditions[0].type` on a JSON object; None when any part is missing."""
    import re

    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            i = int(part[1:-1])
            obj = obj[i] if isinstance(obj, list) and i < len(obj) else None
        else:
            obj = obj.get(part) if isinstance(obj, dict) else None
        if obj is None:
            return None
    return obj


def condition_holds(obj: dict[str, Any], path: str, op: str, value: Any) -> bool:
    actual = lookup(obj, path)
    if actual is None:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            actual = float(actual)
        except (TypeError, ValueError):
            return False
    elif isinstance(value, bool):
        actual = str(actual).lower() == "true" if not isinstance(actual, bool) else actual
    else:
        actual = str(actual)
    return {
        "==": actual == value, "!=": actual != value, "<": actual < value, "<=": actual <= value,
        ">": actual > value, ">=": actual >= value,
    }[op]


def parse_conditions(text: str | None) -> list[tuple[str, str, Any]]:
    if not text:
        return []
    from stackhop.core.dsl import parse_field_conditions

    return [(c["path"], c["op"], c["value"]) for c in parse_field_conditions("resource", "condition", text)]
