"""Run every benchmark and print one JSON line per figure set.

    python benchmarks/run_all.py [--zenml-python /path/to/zenml-venv/bin/python]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in ("p1_startup.py", "p3_chain.py", "p4_fanout.py", "p5_cached.py", "k1_kubernetes.py", "s1_sagemaker.py",
               "v1_pipelinespec.py", "i1_image_reuse.py", "c1_container_steps.py", "l1_lifecycle.py"):
    subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], check=True)
