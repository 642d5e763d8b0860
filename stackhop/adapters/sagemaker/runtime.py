"""What a SageMaker step process needs beyond the run layout; imported at step start, so it stays light.

The definition shares one run spec among all executions, so each step's command passes this
execution's id, parameters and code through SageMaker expressions, and points at upstream
steps' processing outputs (`Steps.<name>.ProcessingOutputConfig...`), which stay right when
SageMaker serves a step from its cache. A Processing step also writes `outputs.json` into its
processing output directory, which SageMaker uploads and reads as the step's PropertyFile, and
each scalar output as text in `values/<name>` there, the S3 object a container step's
InputPath of that scalar downloads.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Any

from stackhop.core.wiring import SharedSpecWiring

if TYPE_CHECKING:
    from stackhop.core.resolve import Index, RunView


class SageMakerWiring(SharedSpecWiring):
    name = "sagemaker"

    def __init__(self, *, property_dir: str | None = None, **shared: Any) -> None:
        super().__init__(**shared)
        self.property_dir = property_dir

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--property-dir", help="also write outputs.json here (a directory SageMaker uploads)")

    def deliver(self, view: "RunView", step: dict[str, Any], index: "Index", record: dict[str, Any]) -> None:
        if not self.property_dir:
            return
        os.makedirs(self.property_dir, exist_ok=True)
        with open(os.path.join(self.property_dir, "outputs.json"), "w") as f:
            json.dump(record, f, sort_keys=True)
        values = os.path.join(self.property_dir, "values")
        for name, value in record.get("scalars", {}).items():
            os.makedirs(values, exist_ok=True)
            with open(os.path.join(values, name), "w") as f:
                f.write(value if isinstance(value, str) else json.dumps(value))
