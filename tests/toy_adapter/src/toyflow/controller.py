"""The toy orchestrator itself: it runs one job's tasks in order and speaks its own words.

    python -m toyflow.controller JOB_DIR

A job is `job.json` ({"tasks": [{"name", "argv", "after"}], "values": {...}}) in its own
directory; the controller writes `status.json` ({"phase": queued|working|done|broken|halted,
"tasks": {name: waiting|working|ok|broken|halted}}) and one `<task>.log` per task, and halts
when `halt` appears. It knows nothing of stackhop: it fills `{{name}}` from `values` and runs argv.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def _write(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def run(job_dir: str) -> int:
    with open(os.path.join(job_dir, "job.json")) as f:
        job = json.load(f)
    status = {"phase": "working", "tasks": {t["name"]: "waiting" for t in job["tasks"]}}
    status_path = os.path.join(job_dir, "status.json")
    _write(status_path, status)
    for task in job["tasks"]:
        if any(status["tasks"][a] != "ok" for a in task["after"]):
            status["tasks"][task["name"]] = "broken"
            continue
        argv = [job["values"].get(a[2:-2], a) if a.startswith("{{") else a for a in task["argv"]]
        if argv[0] == "python":
            argv[0] = sys.executable
        status["tasks"][task["name"]] = "working"
        _write(status_path, status)
        with open(os.path.join(job_dir, f"{task['name']}.log"), "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            while proc.poll() is None:
                if os.path.exists(os.path.join(job_dir, "halt")):
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait()
                    status["tasks"][task["name"]] = "halted"
                    status["phase"] = "halted"
                    _write(status_path, status)
                    return 1
                time.sleep(0.05)
        status["tasks"][task["name"]] = "ok" if proc.returncode == 0 else "broken"
        _write(status_path, status)
    status["phase"] = "done" if all(v == "ok" for v in status["tasks"].values()) else "broken"
    _write(status_path, status)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
