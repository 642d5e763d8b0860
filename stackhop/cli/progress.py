"""Terminal views of recorded runs: run listings and one run's details (live views are in core.progress)."""

from __future__ import annotations

import json
import time
from typing import Any

from stackhop.core.progress import STYLE as _STYLE
from stackhop.core.progress import duration as _duration
from stackhop.core.runs import RunState


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def runs_table(records: list[Any]) -> None:
    from rich import box
    from rich.text import Text
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    widest = max((len(r.run_id) for r in records), default=3)
    table.add_column("run", no_wrap=True, min_width=widest)  # ids are never cut: the other columns give way
    table.add_column("pipeline", overflow="fold")
    table.add_column("stack", overflow="fold")
    table.add_column("status", no_wrap=True, min_width=max((len(r.status) for r in records), default=6))
    table.add_column("created", overflow="fold")
    table.add_column("duration", no_wrap=True)
    for r in records:
        status = r.status
        if r.finished_at is None and r.status not in _TERMINAL and time.time() - (r.seen_at or r.created_at) > 10:
            status += f" (seen {_ago(r.seen_at or r.created_at)} ago)"
        table.add_row(Text(r.run_id), Text(r.pipeline), Text(r.stack), Text(status, style=_STYLE.get(r.status, "white")),
                      _when(r.created_at), _duration(r.created_at, r.finished_at))
    Console().print(table)


_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def _ago(ts: float) -> str:
    seconds = int(time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return value if isinstance(value, str) else json.dumps(value)


def comparison(result: dict[str, Any]) -> None:
    """`runs compare`: a column per run; parameters that differ, every metric, steps that differ."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    runs = result["runs"]

    def section(title: str, rows: dict[str, list[Any]], show: Any = _cell) -> None:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=title, title_justify="left")
        table.add_column("", no_wrap=True)
        for r in runs:
            table.add_column(r["run_id"], overflow="fold")
        for name, values in rows.items():
            table.add_row(Text(name), *[Text(show(v)) for v in values])
        if rows:
            console.print(table)
        else:
            console.print(Text(f"{title}: none differ" if title != "metrics" else "metrics: none logged"))

    section("parameters", result["parameters"])
    section("metrics", result["metrics"])
    section("steps", result["steps"], lambda v: "-" if v["status"] is None else
            v["status"] + (f" {v['cache_key'][:12]}" if v.get("cache_key") else ""))
    if result["same_parameters"]:
        console.print(Text("same parameters: " + ", ".join(f"{k}={_cell(v)}" for k, v in result["same_parameters"].items())))


def metrics_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for c in columns:
        table.add_column(c.replace("created_at", "created"), overflow="fold", no_wrap=c == "run_id")
    for r in rows:
        table.add_row(*[Text(_when(r.get(c)) if c == "created_at" else _cell(r.get(c))) for c in columns])
    Console().print(table)


def show_run(record: Any, state: RunState, outputs: list[dict[str, Any]],
             pipeline_outputs: dict[str, dict[str, Any]] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    console.print(Text.assemble((record.run_id, "bold"), f"  {record.pipeline} on {record.stack} ({record.adapter})  ",
                                (state.status.value, _STYLE.get(state.status.value, "white"))))
    if state.message:
        console.print(state.message, markup=False)
    console.print(f"parameters: {record.parameters}", markup=False)
    if getattr(record, "origin_run_id", ""):
        console.print(f"resumed from run {record.origin_run_id}", markup=False)
    console.print(f"IR digest: {record.ir_digest}")
    table = Table(title="steps")
    for col in ("step", "status", "native", "attempts", "time", "message"):
        table.add_column(col)
    for key, s in state.steps.items():
        message = s.message
        if s.cache and s.cache.get("result") == "miss" and s.cache.get("changed") and s.status.value == "SUCCEEDED":
            message = "cache miss: " + "; ".join(s.cache["changed"])
        name = f"{key} {s.label[len(s.label.split('[', 1)[0]):]}" if s.label else key
        table.add_row(Text(name), s.status.value, Text(s.native), str(s.attempts), _duration(s.started_at, s.finished_at),
                      Text(message[:120]))
    console.print(table)
    if pipeline_outputs:
        returned = Table(title="pipeline outputs")
        for col in ("name", "from", "type", "value / uri"):
            returned.add_column(col)
        for name, o in pipeline_outputs.items():
            shown = repr(o["value"]) if "value" in o else o.get("uri", "(its step has not finished)")
            returned.add_row(Text(name), Text(f"{o['step']}.{o['output']}"), o["type"], Text(shown))
        console.print(returned)
    if outputs:
        out = Table(title="outputs")
        for col in ("step", "output", "type", "value / uri", "metadata"):
            out.add_column(col)
        for o in outputs:
            meta = ", ".join(f"{k}={v!r}" for k, v in sorted(o.get("metadata", {}).items()))
            out.add_row(Text(o["step"]), Text(o["output"]), o["type"], Text(repr(o["value"]) if "value" in o else o["uri"]),
                        Text(meta[:120]))
        console.print(out)
