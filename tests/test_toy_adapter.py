"""A backend plugs in from its own distribution, with no edit to stackhop.

`tests/toy_adapter` is a whole third-party package: a toy orchestrator (a spool directory and a
controller process with its own status words) and its adapter, laid out the way
docs/adapters.md says. It is pip-installed into a directory of its own, so stackhop finds it
the way it finds any plugin, through the `stackhop` entry point in its dist-info, and then
compiles, emulates on the core scheduler, and runs a pipeline on the toy backend.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TOY = Path(__file__).resolve().parent / "toy_adapter"
ROOT = Path(__file__).resolve().parent.parent

PIPELINE = """
    from stackhop import pipeline, step

    @step
    def numbers(n: int) -> list:
        return list(range(n))

    @step
    def total(xs: list) -> int:
        print("adding", xs)
        return sum(xs)

    @pipeline
    def adder(n: int = 4):
        total(xs=numbers(n=n).output)
"""

SLOW = """
    from stackhop import pipeline, step

    @step
    def wait_for(path: str) -> int:
        import os, time
        open(path + ".started", "w").close()
        while not os.path.exists(path):
            time.sleep(0.05)
        return 1

    @pipeline
    def slow(path: str):
        wait_for(path=path)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy package, built and installed from its own pyproject into a directory nobody else uses."""
    work = tmp_path_factory.mktemp("toy")
    shutil.copytree(TOY, work / "src")
    target = work / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                           str(work / "src")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (next(target.glob("stackhop_toyflow-*.dist-info")) / "entry_points.txt").read_text().count("toyflow.plugin")
    return target


@pytest.fixture
def toy_project(project: Path, site: Path, write_config) -> dict[str, str]:
    write_config("""
        default_stack: toy
        stacks:
          toy:
            adapter: toyflow
            artifact_root: ./artifacts
    """)
    (project / "adder.py").write_text(textwrap.dedent(PIPELINE))
    (project / "slow.py").write_text(textwrap.dedent(SLOW))
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def stackhop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stackhop.cli.main", *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_installed_adapter_takes_its_stack_settings_and_compiles_a_pipeline(toy_project, project: Path) -> None:
    shown = stackhop(toy_project, "stacks", "show", "toy", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["adapter_settings"] == {"spool": ".toyflow"}
    compiled = stackhop(toy_project, "compile", "adder.py", "-o", "compiled")
    assert compiled.returncode == 0, compiled.stderr
    job = json.loads((project / "compiled" / "toyflow.json").read_text())
    assert [t["name"] for t in job["tasks"]] == ["numbers", "total"]
    assert job["tasks"][1]["after"] == ["numbers"]


def test_a_pipeline_runs_on_the_toy_backend_and_reads_back_through_the_one_vocabulary(toy_project) -> None:
    ran = stackhop(toy_project, "run", "adder.py", "-p", "n=5")
    assert ran.returncode == 0, ran.stderr
    run_id = next(line.split()[1] for line in ran.stderr.splitlines() if line.startswith("run "))
    shown = stackhop(toy_project, "runs", "show", run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    state = json.loads(shown.stdout)
    assert state["status"] == "SUCCEEDED"
    assert {k: v["native"] for k, v in state["steps"].items()} == {"numbers": "ok", "total": "ok"}
    assert "adding [0, 1, 2, 3, 4]" in stackhop(toy_project, "logs", run_id, "total").stdout


def test_the_toy_document_emulates_on_the_core_scheduler(toy_project, project: Path) -> None:
    ran = stackhop(toy_project, "run", "adder.py", "-p", "n=3", "--emulate")
    assert ran.returncode == 0, ran.stderr
    run_id = next(line.split()[1] for line in ran.stderr.splitlines() if line.startswith("run "))
    state = json.loads((next(project.glob(f"artifacts/adder/{run_id}/_stackhop/state.json"))).read_text())
    assert {k: v["status"] for k, v in state["steps"].items()} == {"numbers": "SUCCEEDED", "total": "SUCCEEDED"}
    assert not (project / ".toyflow" / run_id).exists(), "emulation never submits to the toy backend"


def test_cancel_reaches_the_toy_backend(toy_project, project: Path) -> None:
    gate = project / "gate"
    started = subprocess.Popen([sys.executable, "-m", "stackhop.cli.main", "run", "slow.py", "-p", f"path={gate}",
                                "--detach"], env=toy_project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = started.communicate(timeout=120)
    assert started.returncode == 0, err
    run_id = next(w for w in (out + err).split() if w[:8].isdigit() and "-" in w)
    deadline = time.time() + 60
    while not Path(str(gate) + ".started").exists():
        assert time.time() < deadline
        time.sleep(0.05)
    assert stackhop(toy_project, "cancel", run_id).returncode == 0
    while True:
        shown = json.loads(stackhop(toy_project, "runs", "show", run_id, "--json").stdout)
        if shown["status"] in ("CANCELLED", "FAILED", "SUCCEEDED"):
            break
        assert time.time() < deadline, shown
        time.sleep(0.1)
    assert shown["status"] == "CANCELLED", shown
    assert shown["steps"]["wait_for"]["native"] == "halted"


def test_core_names_no_third_party_backend() -> None:
    core = ROOT / "stackhop" / "core"
    assert not [p for p in core.rglob("*.py") if "toyflow" in p.read_text()]
