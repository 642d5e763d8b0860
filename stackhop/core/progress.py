"""Live views of a run while it is followed: a table in a terminal, HTML in Jupyter, lines elsewhere.

`run()` from Python and `stackhop run` share them. In a terminal the table redraws in place;
in a Jupyter kernel one HTML table is updated in place (no widget library needed); in CI logs
and pipes each step change is one line, so logs stay readable. The run id is in every title.
"""

from __future__ import annotations

import html
import sys
import time
from typing import IO, Any

from stackhop.core.runs import RunState

STYLE = {
    "SUCCEEDED": "green", "CACHED": "cyan", "FAILED": "bold red", "RUNNING": "yellow", "SKIPPED": "dim",
    "CANCELLED": "magenta", "CANCELLING": "magenta", "PENDING": "white", "UNKNOWN": "red",
}
_COLOURS = {"SUCCEEDED": "#1a7f37", "CACHED": "#0969da", "FAILED": "#cf222e", "RUNNING": "#9a6700",
            "SKIPPED": "#6e7781", "CANCELLED": "#8250df", "CANCELLING": "#8250df"}


def duration(start: float | None, end: float | None) -> str:
    if not start:
        return "-"
    return f"{(end or time.time()) - start:.1f}s"


class TerminalView:
    """A rich live table on a terminal; one line per step change on anything else."""

    def __init__(self, stream: IO[str], run_id: str, *, summary: bool = True):
        from rich.console import Console

        self.console = Console(file=stream)
        self.run_id = run_id
        self.summary = summary
        self.live: Any = None
        self.seen: dict[str, str] = {}
        self.started = time.time()

    def _table(self, state: RunState) -> Any:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"run {self.run_id} {state.status.value}", expand=False)
        for col in ("step", "status", "detail", "time"):
            table.add_column(col)
        for key, s in state.steps.items():  # Text: step messages are the user's words, never markup
            detail = s.message or s.native
            table.add_row(Text(key), Text(s.status.value, style=STYLE.get(s.status.value, "white")), Text(detail[:80]),
                          duration(s.started_at, s.finished_at))
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
        if not self.seen:
            self.console.print(f"run {self.run_id}", highlight=False, markup=False)
            self.seen["\0"] = ""
        for key, s in state.steps.items():
            word = f"{s.status.value} {s.native}"
            if s.status.value == "PENDING" and key not in self.seen:
                self.seen[key] = word
                continue
            if self.seen.get(key) != word:
                self.seen[key] = word
                extra = f" ({s.message})" if s.message else ""
                self.console.print(f"{key}: {s.status.value}{extra}", highlight=False, markup=False)

    def close(self, handle: Any = None) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.summary and handle is not None:
            state = handle._last
            if state is None or not state.status.terminal:
                self.console.print(f"run {self.run_id} submitted to stack {handle.stack.name}", highlight=False, markup=False)
            else:
                message = f": {state.message}" if state.message else ""
                self.console.print(f"run {self.run_id} {state.status.value} in {time.time() - self.started:.1f}s{message}",
                                   highlight=False, markup=False)


def html_table(run_id: str, pipeline: str, stack: str, state: RunState | None) -> str:
    """The run and its steps as an HTML table: Jupyter's live view and `RunHandle._repr_html_`."""
    status = state.status.value if state else "SUBMITTED"
    esc = html.escape
    rows = []
    for key, s in (state.steps.items() if state else []):
        colour = _COLOURS.get(s.status.value, "inherit")
        rows.append(
            f"<tr><td style='text-align:left'><code>{esc(key)}</code></td>"
            f"<td style='text-align:left;color:{colour}'><b>{esc(s.status.value)}</b></td>"
            f"<td style='text-align:left'>{esc((s.message or s.native)[:120])}</td>"
            f"<td style='text-align:right'>{esc(duration(s.started_at, s.finished_at))}</td></tr>")
    message = f"<div>{esc(state.message)}</div>" if state and state.message else ""
    return (f"<div class='stackhop-run'><b>run <code>{esc(run_id)}</code></b> · {esc(pipeline)} on "
            f"<code>{esc(stack)}</code> · <b style='color:{_COLOURS.get(status, 'inherit')}'>{esc(status)}</b>{message}"
            "<table><thead><tr><th style='text-align:left'>step</th><th style='text-align:left'>status</th>"
            "<th style='text-align:left'>detail</th><th style='text-align:right'>time</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


class NotebookView:
    """One HTML table in the cell's output, updated in place through IPython's display ids."""

    def __init__(self, handle: Any):
        from IPython.display import HTML, display

        self.handle = handle
        self._html = HTML
        self._last = ""
        self._at = 0.0
        self.display = display(HTML(self._render(None)), display_id=True)
        handle._shown_live = _cell_number()  # this cell's result would show the same table again

    def _render(self, state: RunState | None) -> str:
        return html_table(self.handle.run_id, self.handle.pipeline, self.handle.stack.name, state)

    def update(self, state: RunState) -> None:
        text = self._render(state)
        if text != self._last and (time.time() - self._at > 0.2 or state.status.terminal):
            self._last, self._at = text, time.time()
            self.display.update(self._html(text))

    def close(self, handle: Any = None) -> None:
        state = self.handle._last
        if state is not None:
            text = self._render(state)
            if text != self._last:
                self.display.update(self._html(text))


def _cell_number() -> int | None:
    try:
        return sys.modules["IPython"].get_ipython().execution_count
    except Exception:
        return None


def shown_in_this_cell(handle: Any) -> bool:
    number = getattr(handle, "_shown_live", None)
    return number is not None and number == _cell_number()


def in_notebook() -> bool:
    """A Jupyter kernel (not a terminal IPython), found without importing IPython."""
    if "IPython" not in sys.modules:
        return False
    try:
        shell = sys.modules["IPython"].get_ipython()
    except Exception:
        return False
    return shell is not None and hasattr(shell, "kernel")


def auto_view(handle: Any, *, live: bool) -> TerminalView | NotebookView:
    if in_notebook():
        return NotebookView(handle)
    return TerminalView(sys.stderr, handle.run_id)
