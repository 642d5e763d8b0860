"""Terminal views: a live step table while a run is followed, and run listings.

On a terminal the table redraws in place; elsewhere (CI logs, pipes) each step change is one
line, so logs stay readable.
"""

from __future__ import annotations

import time
from typing import IO, Any

from stackhop.core.runs import RunState

_STYLE = {
    "SUCCEEDED": "green", "CACHED": "cyan", "FAILED": "bold red", "RUNNING": "yellow", "SKIPPED": "dim",
    "CANCELLED": "magenta", "CANCELLING": "magenta", "PENDING": "white", "UNKNOWN": "red",
}


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def _duration(start: float | None, end: float | None) -> str:
    if not start:
        return "-"
    return f"{(end or time.time()) - start:.1f}s"


class Follower:
    def __init__(self, stream: IO[str]):
        from rich.console import Console

        self.console = Console(file=stream)
        self.live: Any = None
        self.seen: dict[str, str] = {}

    def _table(self, state: RunState) -> Any:
        from rich.table import Table

        table = Table(title=f"run {state.status.value}", expand=False)
        for col in ("step", "status", "detail", "time"):
            table.add_column(col)
        for key, s in state.steps.items():
            detail = s.message or s.native
            table.add_row(key, f"[{_STYLE.get(s.status.value, 'white')}]{s.status.value}[/]", detail[:80],
                          _duration(s.started_at, s.finished_at))
        return table

    def update(self, state: RunState) -> None:
        if self.console.is_terminal:
            if self.live is None:
                from rich.live import Live

                self.live = Live(self._table(state), console=self.console, refresh_per_second=8)
                self.live.start()
            else:
                self.live.update(self._table(state))
            return
        for key, s in state.steps.items():
            word = f"{s.status.value} {s.native}"
            if s.status.value == "PENDING" and key not in self.seen:
                self.seen[key] = word
                continue
            if self.seen.get(key) != word:
                self.seen[key] = word
                extra = f" ({s.message})" if s.message else ""
                self.console.print(f"{key}: {s.status.value}{extra}", highlight=False, markup=False)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def runs_table(records: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("run", "pipeline", "stack", "status", "created", "duration"):
        table.add_column(col)
    for r in records:
        table.add_row(r.run_id, r.pipeline, r.stack, f"[{_STYLE.get(r.status, 'white')}]{r.status}[/]",
                      _when(r.created_at), _duration(r.created_at, r.finished_at))
    Console().print(table)


def show_run(record: Any, state: RunState, outputs: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{record.run_id}[/]  {record.pipeline} on {record.stack} ({record.adapter})  "
                  f"[{_STYLE.get(state.status.value, 'white')}]{state.status.value}[/]")
    if state.message:
        console.print(state.message, markup=False)
    console.print(f"parameters: {record.parameters}", markup=False)
    console.print(f"IR digest: {record.ir_digest}")
    table = Table(title="steps")
    for col in ("step", "status", "native", "attempts", "time", "message"):
        table.add_column(col)
    for key, s in state.steps.items():
        table.add_row(key, s.status.value, s.native, str(s.attempts), _duration(s.started_at, s.finished_at), s.message[:80])
    console.print(table)
    if outputs:
        out = Table(title="outputs")
        for col in ("step", "output", "type", "value / uri"):
            out.add_column(col)
        for o in outputs:
            out.add_row(o["step"], o["output"], o["type"], repr(o["value"]) if "value" in o else o["uri"])
        console.print(out)
