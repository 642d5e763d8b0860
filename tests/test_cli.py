"""Specifications of the `stackhop` command line.

Most tests run the CLI as a user would, `python -m stackhop ...` in the project directory;
a few call `stackhop.cli.main.main([...])` in-process where capturing output is simpler.
Exit codes: 0 success, 1 a failed run, 2 a user error (one `error: ...` line, no traceback),
130 a run cancelled with Ctrl-C.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest


from stackhop.cli.main import main

VENV_PYTHON = sys.executable  # the tests run under /work/main/.venv/bin/python
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Not bare "google.cloud": google-cloud-aiplatform's nspkg .pth creates that empty namespace at start-up.
HEAVY = ("boto3", "botocore", "kubernetes", "google.cloud.aiplatform", "google.cloud.storage", "google.api_core",
         "google.auth", "sagemaker", "kfp", "kfp_server_api", "s3fs", "gcsfs", "pandas", "sklearn", "pydantic")
RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")


def clean_env(project: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKHOP_")}
    env["STACKHOP_CODE_CACHE"] = str(project / ".code-cache")
    env.update(extra)
    return env


def stackhop(project: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None,
             python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VENV_PYTHON, *python_flags, "-m", "stackhop", *args],
        cwd=project, capture_output=True, text=True, timeout=timeout, env=env or clean_env(project),
    )


def json_out(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_user_error(result: subprocess.CompletedProcess[str], *mentions: str) -> str:
    """Exit 2, a single `error: ...` line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in mentions:
        assert text in lines[0]
    return lines[0]


def copy_example(project: Path, name: str = "training_pipeline.py") -> Path:
    """Copy an example into the project, so its runs, artifacts and deployments stay in tmp."""
    target = project / name
    shutil.copyfile(EXAMPLES / name, target)
    return target


def module_file(module: Any) -> str:
    return Path(module.__file__).name


QUICK = """
    from stackhop import pipeline, step

    @step
    def hello(name: str) -> str:
        print(f"hello {name}")
        return "hi " + name

    @pipeline
    def quick(name: str = "world", threshold: float = 0.5):
        hello(name=name)
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The training example run twice in one project: as written, then with a threshold it cannot meet."""
    project = tmp_path_factory.mktemp("trained")
    copy_example(project)
    first = stackhop(project, "run", "training_pipeline.py", timeout=240)
    second = stackhop(project, "run", "training_pipeline.py", "-p", "min_accuracy=0.999", timeout=240)
    runs = json.loads(stackhop(project, "runs", "list", "--json").stdout or "[]")
    return SimpleNamespace(project=project, first=first, second=second, runs=runs)


def run_with(trained: SimpleNamespace, min_accuracy: float) -> dict[str, Any]:
    """The recorded run of the training example that used this threshold."""
    (record,) = [r for r in trained.runs if r["parameters"]["min_accuracy"] == min_accuracy]
    return record


def show(project: Path, run_id: str) -> dict[str, Any]:
    return json_out(stackhop(project, "runs", "show", run_id, "--json"))


# --------------------------------------------------------------------------- help and import cost


def test_help_lists_the_commands(project):
    result = stackhop(project, "--help", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    for command in ("run", "compile", "graph", "logs", "runs", "stacks", "schema"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command


def test_help_in_process(capsys):
    assert main(["--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_import_stackhop_loads_no_heavy_dependency(project):
    code = "import json, sys, stackhop; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([VENV_PYTHON, "-c", code], cwd=project, capture_output=True, text=True, timeout=30,
                            env=clean_env(project))
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    heavy = sorted(m for m in loaded for h in HEAVY if m == h or m.startswith(h + "."))
    assert heavy == []


def test_stackhop_help_loads_no_heavy_dependency(project):
    result = stackhop(project, "--help", timeout=30, python_flags=("-X", "importtime"))
    assert result.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "stackhop.cli.main" in imported  # the measurement saw the CLI itself
    heavy = sorted(m for m in imported for h in HEAVY if m == h or m.startswith(h + "."))
    assert heavy == []


# --------------------------------------------------------------------------- run


def test_run_the_training_example_succeeds(trained):
    assert trained.first.returncode == 0, trained.first.stderr
    assert "SUCCEEDED" in trained.first.stdout


def test_an_unreachable_threshold_skips_deploy_and_still_exits_0(trained):
    assert trained.second.returncode == 0, trained.second.stderr
    shown = show(trained.project, run_with(trained, 0.999)["run_id"])
    assert shown["status"] == "SUCCEEDED"
    steps = shown["state"]["steps"]
    assert steps["deploy_model"]["status"] == "SKIPPED"
    assert steps["evaluate_model"]["status"] == "SUCCEEDED"


FAILING = """
    from stackhop import pipeline, step

    @step
    def boom() -> int:
        raise RuntimeError("kaboom")

    @pipeline
    def failing():
        boom()
"""


def test_a_failing_pipeline_exits_1(project, write_pipeline):
    module = write_pipeline(FAILING)
    result = stackhop(project, "run", module_file(module))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "FAILED" in result.stdout
    assert "Traceback" not in result.stderr


def test_a_failing_pipeline_exits_1_in_process(project, write_pipeline):
    module = write_pipeline(FAILING)
    assert main(["run", module_file(module)]) == 1


TWO_PIPELINES = """
    from stackhop import pipeline, step

    @step
    def one() -> int:
        return 1

    @pipeline
    def first():
        one()

    @pipeline
    def second():
        one()
"""

USER_ERRORS = {  # pipeline source, CLI arguments ({file} is the pipeline file), what the message must name
    "bad -p value": (QUICK, ["run", "{file}", "-p", "threshold=high"], ["threshold", "float"]),
    "-p without =": (QUICK, ["run", "{file}", "-p", "threshold"], ["name=value"]),
    "unknown parameter": (QUICK, ["run", "{file}", "-p", "colour=red"], ["colour", "threshold"]),
    "missing file": (QUICK, ["run", "no_such_pipeline.py"], ["no_such_pipeline.py"]),
    "unknown pipeline in FILE:NAME": (QUICK, ["run", "{file}:nope"], ["'nope'", "quick"]),
    "two pipelines and no name": (TWO_PIPELINES, ["run", "{file}"], ["first", "second"]),
    "unknown stack": (QUICK, ["run", "{file}", "--stack", "nope"], ["'nope'", "local"]),
}


@pytest.mark.parametrize("source, args, mentions", USER_ERRORS.values(), ids=USER_ERRORS.keys())
def test_user_errors_exit_2_with_one_error_line_and_no_traceback(project, write_pipeline, source, args, mentions):
    file = module_file(write_pipeline(source))
    result = stackhop(project, *(a.format(file=file) for a in args), timeout=60)
    assert_user_error(result, *mentions)
    assert not (project / ".stackhop" / "runs.db").exists() or json_out(stackhop(project, "runs", "list", "--json")) == []


def test_debug_shows_the_traceback_of_a_user_error(project, write_pipeline):
    module = write_pipeline(QUICK)
    result = stackhop(project, "--debug", "run", module_file(module), "--stack", "nope", timeout=60)
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "ConfigError" in result.stderr and "'nope'" in result.stderr


# --------------------------------------------------------------------------- compile and graph


def test_compile_writes_the_local_document_byte_identically_every_time(project):
    copy_example(project)
    first = stackhop(project, "compile", "training_pipeline.py", "-o", "out1", timeout=60)
    second = stackhop(project, "compile", "training_pipeline.py", "-o", "out2", timeout=60)
    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    doc1, doc2 = project / "out1" / "pipeline.local.json", project / "out2" / "pipeline.local.json"
    assert doc1.read_bytes() == doc2.read_bytes()
    assert json.loads(doc1.read_bytes())["pipeline"]["name"] == "training-pipeline"
    assert str(Path("out1") / "pipeline.local.json") in first.stdout


def test_compile_json_reports_adapter_files_and_digest(project):
    copy_example(project)
    data = json_out(stackhop(project, "compile", "training_pipeline.py", "-o", "out", "--json", timeout=60))
    assert data["adapter"] == "local"
    assert data["files"] == ["pipeline.local.json"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", data["digest"])
    assert (project / "out" / "pipeline.local.json").is_file()


def test_graph_prints_mermaid_with_a_subgraph_for_the_if_block(project):
    copy_example(project)
    result = stackhop(project, "graph", "training_pipeline.py", timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart TD"
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("subgraph"))
    assert "If evaluate_model" in lines[start]
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "end")
    inside = "\n".join(lines[start:end])
    assert "deploy_model" in inside and "train_model" not in inside
    assert any("-->" in line and "deploy_model" in line for line in lines)


def test_graph_svg_without_graphviz_is_a_clear_error(project):
    if shutil.which("dot"):
        pytest.skip("graphviz `dot` is installed here, so the missing-graphviz error cannot be observed")
    copy_example(project)
    result = stackhop(project, "graph", "training_pipeline.py", "--svg", "pipeline.svg", timeout=60)
    assert_user_error(result, "graphviz", "dot")
    assert not (project / "pipeline.svg").exists()


def test_graph_svg_is_written_by_dot(project):
    """With the real `dot` when installed, otherwise with a stand-in `dot` first on PATH."""
    copy_example(project)
    env = clean_env(project)
    if not shutil.which("dot"):
        bin_dir = project / "fake-bin"
        bin_dir.mkdir()
        fake = bin_dir / "dot"
        fake.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            "src = sys.stdin.read()\n"
            "assert sys.argv[1] == '-Tsvg' and sys.argv[2] == '-o' and src.startswith('digraph')\n"
            "open(sys.argv[3], 'w').write('<svg xmlns=\"http://www.w3.org/2000/svg\"><!--' + src + '--></svg>')\n"
        )
        fake.chmod(0o755)
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    result = stackhop(project, "graph", "training_pipeline.py", "--svg", "pipeline.svg", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    svg = (project / "pipeline.svg").read_text()
    assert "<svg" in svg and "deploy_model" in svg


# --------------------------------------------------------------------------- runs, logs


def test_runs_list_json_is_newest_first(trained):
    assert [r["status"] for r in trained.runs] == ["SUCCEEDED", "SUCCEEDED"]
    assert trained.runs[0]["parameters"]["min_accuracy"] == 0.999  # the second run
    assert trained.runs[1]["parameters"]["min_accuracy"] == 0.85
    assert trained.runs[0]["created_at"] > trained.runs[1]["created_at"]


def test_runs_show_json_includes_steps_and_outputs(trained):
    run_id = run_with(trained, 0.85)["run_id"]
    shown = show(trained.project, run_id)
    assert shown["run_id"] == run_id
    assert shown["pipeline"] == "training-pipeline"
    assert shown["state"]["status"] == "SUCCEEDED"
    assert {k: v["status"] for k, v in shown["state"]["steps"].items()} == {
        "load_data": "SUCCEEDED", "train_model": "SUCCEEDED", "evaluate_model": "SUCCEEDED",
        "deploy_model": "SUCCEEDED",
    }
    outputs = {(o["step"], o["output"]): o for o in shown["outputs"]}
    assert outputs[("evaluate_model", "output")]["value"] == "yes"
    assert outputs[("load_data", "output")]["value"] == 1000
    assert outputs[("train_model", "model")]["type"] == "Model"
    assert outputs[("evaluate_model", "metrics")]["metadata"]["accuracy"] >= 0.85


def test_logs_prints_a_steps_stdout(trained):
    run_id = run_with(trained, 0.85)["run_id"]
    result = stackhop(trained.project, "logs", run_id, "evaluate_model", timeout=60)
    assert result.returncode == 0, result.stderr
    assert re.search(r"accuracy=0\.\d{4} threshold=0\.85", result.stdout)


def test_logs_for_an_unknown_step_is_a_user_error(trained):
    run_id = run_with(trained, 0.85)["run_id"]
    result = stackhop(trained.project, "logs", run_id, "no_such_step", timeout=60)
    assert_user_error(result, "no_such_step", "evaluate_model")


def test_runs_show_for_an_unknown_run_is_a_user_error(project):
    assert_user_error(stackhop(project, "runs", "show", "20000101-000000-abcdef", "--json", timeout=60),
                      "20000101-000000-abcdef")


# --------------------------------------------------------------------------- stacks and schema


STACKS = """\
    default_stack: prod
    stacks:
      dev:
        adapter: local
      prod:
        adapter: local
        artifact_root: prod-artifacts
    """


def test_stacks_list_json_marks_the_default(project, write_config):
    write_config(STACKS)
    rows = json_out(stackhop(project, "stacks", "list", "--json", timeout=60))
    assert {r["name"] for r in rows} == {"local", "dev", "prod"}
    assert [r["name"] for r in rows if r["default"]] == ["prod"]

    rows = json_out(stackhop(project, "stacks", "list", "--json", env=clean_env(project, STACKHOP_STACK="dev")))
    assert [r["name"] for r in rows if r["default"]] == ["dev"]


def test_stacks_show_json_for_the_builtin_local_stack(project):
    data = json_out(stackhop(project, "stacks", "show", "--json", timeout=60))
    assert data["name"] == "local"
    assert data["source"] == "built-in"
    assert data["artifact_root"] == (project / ".stackhop" / "artifacts").resolve().as_uri()
    assert data["config"]["adapter"] == "local"
    assert "max_workers" in data["adapter_settings"]


def test_stacks_show_json_for_a_named_stack(project, write_config):
    path = write_config(STACKS)
    data = json_out(stackhop(project, "stacks", "show", "prod", "--json", timeout=60))
    assert data["name"] == "prod"
    assert data["source"] == str(path.resolve())
    assert data["artifact_root"] == (project / "prod-artifacts").resolve().as_uri()


def test_schema_prints_the_json_schema_of_stackhop_yaml(project, capsys):
    schema = json_out(stackhop(project, "schema", timeout=60))
    assert "stacks" in schema["properties"]
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == schema


# --------------------------------------------------------------------------- detach and Ctrl-C


def wait_for(predicate, timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_run_detach_prints_the_run_id_and_the_run_finishes(project, write_pipeline):
    module = write_pipeline(QUICK)
    result = stackhop(project, "run", module_file(module), "--detach", "-p", "name=detached", timeout=60)
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    assert RUN_ID.match(run_id), result.stdout

    shown = wait_for(lambda: (s := show(project, run_id))["status"] == "SUCCEEDED" and s, 60, "the detached run")
    assert shown["state"]["steps"]["hello"]["status"] == "SUCCEEDED"
    assert stackhop(project, "logs", run_id, "hello").stdout == "hello detached\n"


SLEEPY = """
    import os
    import time

    from stackhop import pipeline, step

    @step
    def nap(marker: str) -> int:
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(30)
        return 1

    @pipeline
    def sleepy(marker: str):
        nap(marker=marker)
"""


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def test_ctrl_c_cancels_the_run_and_exits_130(project, write_pipeline):
    module = write_pipeline(SLEEPY)
    marker = project / "nap.pid"
    cli = subprocess.Popen(
        [VENV_PYTHON, "-m", "stackhop", "run", module_file(module), "-p", f"marker={marker}"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(project),
    )
    step_pid = None
    try:
        def nap_running() -> str | None:
            runs = json.loads(stackhop(project, "runs", "list", "--json", timeout=30).stdout or "[]")
            if runs and runs[0]["steps"].get("nap", {}).get("status") == "RUNNING" and marker.is_file() \
                    and marker.read_text():
                return runs[0]["run_id"]
            return None

        run_id = wait_for(nap_running, 60, "step nap to be RUNNING")
        step_pid = int(marker.read_text())
        assert process_alive(step_pid)

        cli.send_signal(signal.SIGINT)
        _out, err = cli.communicate(timeout=60)
        assert cli.returncode == 130, err
        assert "Traceback" not in err
        assert f"interrupted; cancelling run {run_id}" in err and f"cancelled run {run_id}" in err

        shown = show(project, run_id)
        assert shown["status"] == "CANCELLED"
        assert shown["state"]["steps"]["nap"]["status"] == "CANCELLED"
        wait_for(lambda: not process_alive(step_pid), 15, f"the sleeping step (pid {step_pid}) to exit")
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(timeout=10)
        if step_pid is not None and process_alive(step_pid):
            os.kill(step_pid, signal.SIGKILL)


# --------------------------------------------------------------------------- where runs live


def test_runs_are_found_from_a_subfolder_of_the_project_and_the_store_is_named(project, write_pipeline):
    module = write_pipeline(QUICK)
    done = stackhop(project, "run", module_file(module))
    run_id = done.stderr.splitlines()[0].removeprefix("run ")
    (project / "notebooks" / "deep").mkdir(parents=True)

    listed = stackhop(project / "notebooks" / "deep", "runs", "list")

    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout
    assert listed.stderr.strip() == f"runs in {project / '.stackhop' / 'runs.db'}"
    assert not (project / "notebooks" / ".stackhop").exists()


def test_without_any_project_marker_the_git_root_holds_the_runs(project, write_pipeline):
    subprocess.run(["git", "init", "--quiet", str(project)], check=True)
    (project / "notebooks").mkdir()
    write_pipeline(QUICK, name="quick_flow")
    (project / "notebooks" / "flow.py").write_text((project / "quick_flow.py").read_text())

    done = stackhop(project / "notebooks", "run", "flow.py")

    assert done.returncode == 0, done.stderr
    assert (project / ".stackhop" / "runs.db").is_file() and not (project / "notebooks" / ".stackhop").exists()


def test_read_commands_create_nothing_where_there_are_no_runs(project):
    listed = stackhop(project, "runs", "list")
    shown = stackhop(project, "runs", "show", "20260101-000000-abcdef")
    logs = stackhop(project, "logs", "20260101-000000-abcdef")

    assert listed.returncode == 0 and listed.stderr.strip() == (
        f"no runs yet: {project / '.stackhop' / 'runs.db'} does not exist")
    assert_user_error(shown, "there is no run store at", "run a pipeline from this project first")
    assert_user_error(logs, "there is no run store at")
    assert not (project / ".stackhop").exists()


def test_config_before_the_command_applies_to_release_diff_and_promote(project, write_pipeline):
    module = write_pipeline(QUICK)
    elsewhere = project / "ops"
    elsewhere.mkdir()
    (elsewhere / "stackhop.yaml").write_text(
        "promotion: [dev, staging]\nstacks:\n  dev: {adapter: local}\n"
        "  staging: {adapter: local, promotion: {gates: {successful_run: false}}}\n")
    config = ("--config", str(elsewhere / "stackhop.yaml"))

    released = stackhop(project, *config, "release", module_file(module), "--stack", "dev")
    diffed = stackhop(project, *config, "diff", module_file(module), "--stack", "dev", "--stack", "staging")
    promoted = stackhop(project, *config, "promote", released.stdout.strip(), "--to", "staging")

    assert released.returncode == 0, released.stderr
    assert diffed.returncode == 0, diffed.stderr
    assert promoted.returncode == 0, promoted.stderr
    assert "promoted" in promoted.stdout and "dev -> staging" in promoted.stdout


def test_version_prints_the_version(project):
    from stackhop import __version__

    result = stackhop(project, "--version")

    assert result.returncode == 0 and result.stdout.strip() == f"stackhop {__version__}"


def test_shell_completion_is_offered(project):
    result = stackhop(project, "--help")

    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_runs_list_never_cuts_a_run_id_on_an_80_column_terminal(project, write_pipeline):
    module = write_pipeline(QUICK.replace("def quick(", "def a_pipeline_with_a_rather_long_descriptive_name("))
    stackhop(project, "run", module_file(module))
    run_id = json.loads(stackhop(project, "runs", "list", "--json").stdout)[0]["run_id"]

    listed = stackhop(project, "runs", "list", env=clean_env(project, COLUMNS="80"))

    assert run_id in listed.stdout
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80


def test_a_followed_run_names_its_id_first_and_last(project, write_pipeline):
    module = write_pipeline(QUICK)

    done = stackhop(project, "run", module_file(module))

    lines = done.stderr.splitlines()
    assert RUN_ID.match(lines[0].removeprefix("run ")), lines
    assert done.stdout.strip() == f"{lines[0]} SUCCEEDED"


def test_outside_a_repository_projects_under_home_do_not_share_the_home_folders_runs(tmp_path, monkeypatch):
    from stackhop.core.stack import find_project_dir

    home = tmp_path / "home"
    (home / ".stackhop").mkdir(parents=True)
    (home / "code" / "proj-a" / "notebooks").mkdir(parents=True)
    (home / "code" / "proj-a" / ".stackhop").mkdir()
    (home / "code" / "proj-b").mkdir()
    monkeypatch.setenv("HOME", str(home))

    assert find_project_dir(home / "code" / "proj-b") == home / "code" / "proj-b"
    assert find_project_dir(home / "code" / "proj-a" / "notebooks") == home / "code" / "proj-a"
    assert find_project_dir(home) == home


def test_a_pipeline_file_that_parses_its_arguments_at_import_loads_under_stackhop_run(project):
    (project / "train.py").write_text(
        "import argparse\nfrom stackhop import pipeline, step\n"
        "args = argparse.ArgumentParser().parse_args()\n\n"
        "@step\ndef a() -> int:\n    return 1\n\n@pipeline\ndef p():\n    a()\n")

    done = stackhop(project, "run", "train.py")

    assert done.returncode == 0, done.stderr
