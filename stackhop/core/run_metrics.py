"""A run's metrics, many runs' metrics as one table, and what differs between runs.

A run's metrics are the numbers it logged: each entry of a Metrics artifact's metadata
(`evaluate.metrics.accuracy`) and each int or float a step returned (`train.output`). They are
read from the run's outputs, wherever it ran, so `runs compare` and `runs metrics` need no script.
"""

from __future__ import annotations

from typing import Any

from stackhop.core.handles import RunHandle, runs
from stackhop.core.runs import ArtifactRef

METRIC_TYPES = ("Metrics", "ClassificationMetrics")


def metrics_of(artifacts: list[ArtifactRef]) -> dict[str, float]:
    out: dict[str, float] = {}
    for a in artifacts:
        if a.type in METRIC_TYPES:
            for key, value in sorted((a.metadata or {}).items()):
                if _number(value):
                    out[f"{a.step}.{a.output}.{key}"] = value
        elif a.type in ("int", "float") and _number(a.value):
            out[f"{a.step}.{a.output}"] = a.value
    return dict(sorted(out.items()))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def rows(handles: list[RunHandle]) -> list[dict[str, Any]]:
    """One row per run, oldest first (a table reads down time), with a column per metric any of them logged."""
    out = []
    for h in reversed(handles):
        rec = h.store.get(h.run_id)
        out.append({"run_id": h.run_id, "pipeline": h.pipeline, "stack": rec.stack, "status": rec.status,
                    "created_at": rec.created_at, **metrics_of(h.artifacts())})
    return out


def metrics(pipeline: Any = None, *, stack: str | None = None, status: str | None = None, last: int = 20,
            config: Any = None) -> Any:
    """The metrics of the project's last runs, oldest first: a pandas DataFrame when pandas is installed (one
    row per run), plain rows (dicts) otherwise."""
    table = rows(runs(pipeline, stack=stack, status=status, limit=last, config=config))
    try:
        import pandas
    except ImportError:
        return table
    return pandas.DataFrame(table)


def compare(handles: list[RunHandle]) -> dict[str, Any]:
    """What differs between runs: parameters, metrics side by side, and the steps whose status or cache key
    differ. Each section maps a name to one value per run, in the order the runs were given."""
    records = [h.store.get(h.run_id) for h in handles]
    states = [h.state() for h in handles]
    found = [metrics_of(h.artifacts()) for h in handles]
    names = sorted({k for r in records for k in r.parameters})
    parameters = {n: [r.parameters.get(n) for r in records] for n in names}
    metric_names = sorted({k for m in found for k in m})
    steps: dict[str, list[dict[str, Any]]] = {}
    for key in sorted({k for s in states for k in s.steps}):
        seen = [{"status": s.steps[key].status.value if key in s.steps else None,
                 "cache_key": (s.steps[key].cache or {}).get("key") if key in s.steps else None} for s in states]
        if len({(x["status"], x["cache_key"]) for x in seen}) > 1:
            steps[key] = seen
    return {
        "runs": [{"run_id": r.run_id, "pipeline": r.pipeline, "stack": r.stack, "status": r.status} for r in records],
        "parameters": {n: v for n, v in parameters.items() if len({repr(x) for x in v}) > 1},
        "same_parameters": {n: v[0] for n, v in parameters.items() if len({repr(x) for x in v}) == 1},
        "metrics": {n: [m.get(n) for m in found] for n in metric_names},
        "steps": steps,
    }
