"""A scheduler whose steps finish the moment they start, for timing and testing the scheduler alone.

`value(view, inst)` gives what the step returns; it is stored as the step's `outputs.json` and the
attempt ends at once, so what costs time is scheduling, expansion and state writes, not processes.
"""

from __future__ import annotations

from typing import Any, Callable

from stackhop.core.resolve import RunView
from stackhop.core.scheduler import AttemptEnd, Instance, Scheduler


class InstantScheduler(Scheduler):
    def __init__(self, spec: dict[str, Any], value: Callable[[RunView, Instance], Any], max_running: int = 8):
        super().__init__(spec, max_running=max_running)
        self.value = value
        self.writes = 0
        """How many times state.json was written."""

    def start(self, inst: Instance) -> None:
        record = {"scalars": {"output": self.value(self.view, inst)}, "artifacts": {}}
        self.store.write_json(self.view.outputs_uri(inst.step, inst.index), record)
        inst.handle = inst.key
        self.events.put(AttemptEnd(inst.key, inst.attempts, True))

    def stop(self, inst: Instance) -> None:
        pass

    def wait_seconds(self) -> float:
        return 0.001

    def state(self, status: str) -> dict[str, Any]:  # made only to be written
        self.writes += 1
        return super().state(status)
