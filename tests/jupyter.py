"""A real Jupyter kernel (ipykernel through jupyter_client) that tests feed cells to, as a notebook does."""

from __future__ import annotations

import os
import queue
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CellResult:
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    html: list[str] = field(default_factory=list)
    """Every text/html the cell displayed or updated in place, in order."""
    updates: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    """The cell's value (execute_result), by MIME type."""


class Kernel:
    def __init__(self, cwd: Path, env: dict[str, str] | None = None):
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(
            kernel_name="python3", cwd=str(cwd), env={**os.environ, **(env or {})}, startup_timeout=60)

    def run(self, code: str, timeout: float = 180) -> CellResult:
        msg_id = self.client.execute(code, store_history=True)
        result = CellResult()
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"the cell did not finish within {timeout}s:\n{code}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind == "error":
                result.error = f"{content['ename']}: {content['evalue']}"
            elif kind in ("display_data", "update_display_data", "execute_result"):
                data: dict[str, Any] = content.get("data", {})
                if "text/html" in data:
                    result.html.append(data["text/html"])
                result.updates += kind == "update_display_data"
                if kind == "execute_result":
                    result.result = data
            elif kind == "status" and content["execution_state"] == "idle":
                return result

    def check(self, code: str, timeout: float = 180) -> CellResult:
        """Run a cell that must not raise."""
        result = self.run(code, timeout)
        if result.error:
            raise AssertionError(f"cell raised {result.error}\n--- cell ---\n{code}\n--- stderr ---\n{result.stderr}")
        return result

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
