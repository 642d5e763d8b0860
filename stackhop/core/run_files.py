"""Read what a scheduler wrote for a run: state.json, step logs and outputs.json files.

Every backend whose driver runs the core scheduler (local, Kubernetes, the emulators) leaves
the same files in the run's prefix, so every adapter reads them the same way.
"""

from __future__ import annotations

from typing import Any

from stackhop.core.artifacts import META, ArtifactStore, safe_segment
from stackhop.core.resolve import parse_instance_key
from stackhop.core.runs import ArtifactRef, RunState, RunStatus, StepState, StepStatus
from stackhop.errors import StackhopError


def run_prefix_of(state_uri: str) -> str:
    return state_uri.rsplit(f"/{META}/", 1)[0]


def log_uri(run_prefix: str, key: str) -> str:
    step, index = parse_instance_key(key)
    return "/".join([run_prefix, safe_segment(step, "step name"), *(str(int(i)) for i in index), META, "log.txt"])


def read_state(state_uri: str) -> dict[str, Any] | None:
    try:
        return ArtifactStore.for_uri(state_uri).read_json(state_uri)
    except StackhopError:
        return None


def to_run_state(state: dict[str, Any], run_prefix: str) -> RunState:
    order = state.get("order") or []

    def position(key: str) -> int:
        return order.index(key) if key in order else len(order)

    steps = {
        key: StepState(
            name=key, status=StepStatus.parse(s["status"]), native=s.get("native", ""), attempts=s.get("attempts", 0),
            started_at=s.get("started_at"), finished_at=s.get("finished_at"), exit_code=s.get("exit_code"),
            message=s.get("message", ""), log_uri=log_uri(run_prefix, key) if not key.endswith("[*]") else None,
            cache=s.get("cache"), label=s.get("label", ""),
        )
        for key, s in sorted(state["steps"].items(), key=lambda kv: position(kv[0]))
    }
    return RunState(RunStatus.parse(state["status"]), state.get("native", ""), steps, state.get("message", ""),
                    state.get("started_at"), state.get("finished_at"))


def read_log(run_prefix: str, key: str) -> str | None:
    uri = log_uri(run_prefix, key)
    store = ArtifactStore.for_uri(uri)
    if not store.exists(uri):
        return None
    return store.read_bytes(uri).decode(errors="replace")


def list_artifacts(run_prefix: str) -> list[ArtifactRef]:
    store = ArtifactStore.for_uri(run_prefix)
    refs: list[ArtifactRef] = []
    for uri, record in store.list_json(run_prefix, "outputs.json"):
        rel = uri[len(run_prefix) + 1:].rsplit(f"/{META}/", 1)[0].split("/")
        key = rel[0] + "".join(f"[{i}]" for i in rel[1:])
        for name, value in record.get("scalars", {}).items():
            refs.append(ArtifactRef(uri=uri + "#" + name, type=_scalar_type(value), step=key, output=name, value=value))
        for name, art in record.get("artifacts", {}).items():
            refs.append(ArtifactRef(uri=art["uri"], type=art["type"], step=key, output=name,
                                    metadata=art.get("metadata") or {}, materializer=art.get("materializer"),
                                    materializer_meta=art.get("materializer_meta") or {},
                                    materializer_module=art.get("materializer_module"),
                                    digest=art.get("digest")))
    return refs


def _scalar_type(value: Any) -> str:
    return {str: "str", int: "int", float: "float", bool: "bool", list: "list", dict: "dict"}.get(type(value), "str")
