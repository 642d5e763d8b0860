"""Gates a release must pass to enter a stack: a successful run on the source, metric thresholds, approval."""

from __future__ import annotations

import operator
import os
import re
from dataclasses import dataclass
from typing import Any

from stackhop.core.stack import Gates
from stackhop.core.store import RunRecord, RunStore
from stackhop.errors import StackhopError

_METRIC = re.compile(r"^\s*([A-Za-z][\w-]*(?:\[\d+\])*)\.(\w+)\.([\w.-]+)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq, "!=": operator.ne}


class GateError(StackhopError):
    """A promotion gate did not hold; exit code 3 so CI can tell it from a broken config."""

    exit_code = 3


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    value: Any
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def source_run(store: RunStore, ir_digest: str, stack: str) -> RunRecord | None:
    """The latest SUCCEEDED run of exactly this pipeline (by IR digest) on `stack`."""
    for record in store.list(stack=stack, limit=1000):
        if record.ir_digest == ir_digest and record.status == "SUCCEEDED":
            return record
    return None


def evaluate(gates: Gates, *, release: dict[str, Any], source: str, target: str, store: RunStore,
             approved_by: str | None, evidence: dict[str, Any] | None = None) -> list[GateResult]:
    """Every gate's result, in order; the caller refuses on the first that failed.

    `evidence` is the promotion record the source stack's artifact store holds: on a fresh CI
    runner, whose run store is empty, the run it started is the proof of a successful run.
    """
    content = release["content"]
    results: list[GateResult] = []
    run = source_run(store, content["ir_digest"], source)
    remote = None
    if run is None and evidence and evidence.get("run_status") == "SUCCEEDED" \
            and evidence.get("ir_digest") == content["ir_digest"]:
        remote = evidence["run_id"]
    if gates.successful_run or gates.metrics:
        ok = run is not None or remote is not None
        detail = (f"run {run.run_id} on {source}" if run else f"run {remote} on {source}, recorded in its artifact store"
                  if remote else f"no SUCCEEDED run of IR {content['ir_digest'][:19]} on stack {source!r}")
        results.append(GateResult("successful_run", ok, run.run_id if run else remote, detail))
    for text in gates.metrics:
        m = _METRIC.match(text)
        if not m:
            raise StackhopError(f"stack {target!r} gate {text!r} is not `step.output.metric OP number`, "
                                "e.g. evaluate_model.metrics.accuracy >= 0.9.")
        step, output, metric, op, threshold = m.groups()
        if run is None:
            results.append(GateResult(text, False, None, f"no run on {source!r} to read {step}.{output} from"))
            continue
        value = _metric(run, step, output, metric, target, text)
        ok = bool(_OPS[op](value, float(threshold)))
        results.append(GateResult(text, ok, value, f"{step}.{output}.{metric} = {value}"))
    if gates.approval:
        who = approved_by or os.environ.get("STACKHOP_APPROVED_BY")
        results.append(GateResult("approval", bool(who), who, f"approved by {who}" if who else "nobody approved"))
    return results


def _metric(run: RunRecord, step: str, output: str, metric: str, target: str, gate: str) -> float:
    from stackhop.core.api import get_run

    try:
        artifact = get_run(run.run_id).artifact(step, output)
    except StackhopError:
        raise StackhopError(f"stack {target!r} gate {gate!r} reads output {output!r} of step {step!r}, which run "
                            f"{run.run_id} did not produce; fix the gate.") from None
    metrics = dict(artifact.metadata or {})
    if not metrics and artifact.value is None:
        try:
            metrics = artifact.load()
        except Exception:
            metrics = {}
    if metric not in metrics:
        logged = ", ".join(sorted(metrics)) or "none"
        raise StackhopError(f"stack {target!r} gate {gate!r} names metric {metric!r}, which run {run.run_id} did not "
                            f"log in {step}.{output} (it logged: {logged}); fix the gate.")
    return float(metrics[metric])
