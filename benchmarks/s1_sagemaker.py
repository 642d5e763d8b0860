"""S1: SageMaker compile time for a 1,000-step chain (definition JSON, instance types resolved per step).

    python benchmarks/s1_sagemaker.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

from _common import HERE, emit


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="stackhop-s1-"))
    (root / "stackhop.yaml").write_text(yaml.safe_dump({"stacks": {"sm": {
        "adapter": "sagemaker", "artifact_root": "s3://bench/stackhop", "defaults": {"image": "img:1"},
        "settings": {"role_arn": "arn:aws:iam::123456789012:role/Bench"}}}}))
    os.chdir(root)
    sys.path.insert(0, str(HERE))
    import chain_pipelines
    import stackhop

    chain_pipelines.chain_1000.build()
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        compiled = stackhop.compile(chain_pipelines.chain_1000, "sm")
        timings.append(time.perf_counter() - start)
    definition = json.loads(compiled.files["sagemaker-pipeline.json"])
    emit({"benchmark": "S1 sagemaker compile", "steps": len(definition["Steps"]), "compile_s": round(min(timings), 2),
          "definition_bytes": len(compiled.files["sagemaker-pipeline.json"]),
          "uploaded_to_s3_at_submit": bool(compiled.notes)})


if __name__ == "__main__":
    main()
