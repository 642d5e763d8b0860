"""`--emulate` for toyflow: each task's argv from the compiled job, run by stackhop's scheduler."""

from __future__ import annotations

import json

from stackhop.core.emulation import Command, EmulationError, Emulator, Index


class ToyflowEmulator(Emulator):
    def command(self, step: str, index: Index, workdir: str) -> Command:
        job = json.loads(self.files["toyflow.json"])
        task = next((t for t in job["tasks"] if t["name"] == step), None)
        if task is None:
            raise EmulationError(f"the compiled toyflow job has no task {step!r}")
        values = {"run_spec": f"{self.run.run_prefix}/_stackhop/toyflow-spec.json"}
        return Command([values.get(a[2:-2], a) if a.startswith("{{") else a for a in task["argv"]])
