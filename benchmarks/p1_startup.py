"""P1: how long `stackhop --help` and `import stackhop` take (median of 7 fresh processes).

    python benchmarks/p1_startup.py [--zenml-python /path/to/zenml-venv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from _common import emit, median_wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--zenml-python", default=os.environ.get("STACKHOP_BENCH_ZENML_PYTHON"))
    args = parser.parse_args()
    figures = {
        "benchmark": "P1 startup",
        "stackhop_help_s": round(median_wall([sys.executable, "-m", "stackhop", "--help"]), 3),
        "import_stackhop_s": round(median_wall([sys.executable, "-c", "import stackhop"]), 3),
        "python_startup_s": round(median_wall([sys.executable, "-c", "pass"]), 3),
        "target_help_s": 0.3,
    }
    if args.zenml_python:
        zenml = shutil.which("zenml", path=os.path.dirname(args.zenml_python))
        if zenml:
            env = {**os.environ, "ZENML_ANALYTICS_OPT_IN": "false"}
            figures["zenml_help_s"] = round(median_wall([zenml, "--help"], runs=3, env=env), 3)
    emit(figures)


if __name__ == "__main__":
    main()
