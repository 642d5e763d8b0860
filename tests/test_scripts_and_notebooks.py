"""Pipelines written the way ML engineers write them: a script run with `python`, a notebook, a REPL.

Steps defined in `__main__` travel by value (their source, or a pickle when no source exists),
so no step process imports the script or needs the notebook. Importing a module that calls
`run()` at import never starts another run. Notebook specs drive a real Jupyter kernel
(ipykernel through jupyter_client), cell by cell.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stackhop.core.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
STACKHOP = str(Path(sys.executable).with_name("stackhop"))


def readme_tour() -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split("## A tour", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    return block


def without_main_guard(source: str) -> str:
    """The tour as someone pastes it without the guard: its body at module level."""
    head, guard, body = source.partition('if __name__ == "__main__":')
    assert guard, "the README tour shows the main guard"
    body = body.split("\n", 1)[1]
    return head + textwrap.dedent(body)


def runs(project: Path) -> list:
    return RunStore(project / ".stackhop" / "runs.db", create=False).list()


def stray_processes(project: Path) -> list[str]:
    """Live processes whose command line mentions the project: runners, fork servers, steps."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(project) in cmdline and state != "Z":
            found.append(f"{pid}: {cmdline[:200]}")
    return found


def wait_for_no_stray_processes(project: Path, seconds: float = 10) -> list[str]:
    deadline = time.time() + seconds
    while (left := stray_processes(project)) and time.time() < deadline:
        time.sleep(0.1)
    return left


def python(project: Path, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKHOP_")}
    env["STACKHOP_CODE_CACHE"] = str(project / ".code-cache")
    return subprocess.run([sys.executable, *args], cwd=project, input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env)


# ----------------------------------------------------------------------------- scripts


def test_the_readme_tour_without_its_main_guard_ends_with_one_run_and_no_stray_process(project: Path) -> None:
    (project / "tour.py").write_text(without_main_guard(readme_tour()))

    done = python(project, "tour.py")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["RunStatus.SUCCEEDED", "StepStatus.SUCCEEDED"]
    assert [r.status for r in runs(project)] == ["SUCCEEDED"]
    assert wait_for_no_stray_processes(project) == []


def test_the_readme_tour_as_written_runs_from_python_and_from_the_cli(project: Path) -> None:
    (project / "tour.py").write_text(readme_tour())

    direct = python(project, "tour.py")
    cli = subprocess.run([STACKHOP, "run", "tour.py", "-p", "min_accuracy=0.9"], cwd=project, capture_output=True,
                         text=True, timeout=120)

    assert direct.returncode == 0, direct.stderr
    assert "yes" in direct.stdout.splitlines()
    assert cli.returncode == 0, cli.stderr
    assert [r.status for r in runs(project)] == ["SUCCEEDED", "SUCCEEDED"]
    cli_run = runs(project)[0]
    assert {k: s["status"] for k, s in cli_run.steps.items()} == {
        "load_data": "CACHED", "train_model": "CACHED", "evaluate_model": "CACHED", "deploy_model": "CACHED",
        "fail": "SKIPPED"}, "imported or run as a script, the same code is the same step"


def test_a_run_call_at_import_is_refused_by_stackhop_run_in_one_sentence(project: Path) -> None:
    (project / "tour.py").write_text(without_main_guard(readme_tour()))

    done = subprocess.run([STACKHOP, "run", "tour.py"], cwd=project, capture_output=True, text=True, timeout=60)

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert re.search(r"stackhop.run\(\) was called while `stackhop` \(loading the pipeline file\) imported module "
                     r"'tour'; call run\(\) under `if __name__ == \"__main__\":`", done.stderr), done.stderr
    assert runs(project) == []


def test_a_step_module_that_starts_a_run_at_import_fails_its_steps_with_the_fix_and_starts_nothing_else(
        project: Path) -> None:
    (project / "flows.py").write_text(textwrap.dedent("""
        from stackhop import pipeline, run, step

        @step
        def hello() -> str:
            return "hi"

        @pipeline
        def flow():
            hello()

        handle = run(flow)   # no main guard: every importer starts a run
    """))
    (project / "main.py").write_text("import flows\nprint(flows.handle.status.value)\n")

    done = python(project, "main.py")

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "FAILED"
    (only,) = runs(project)
    assert "stackhop.run() was called while a step process imported module 'flows'" in only.message
    assert 'if __name__ == "__main__":' in only.message
    assert wait_for_no_stray_processes(project) == []


STEP_SOURCE = """
from stackhop import pipeline, run, step

OFFSET = 40

def helper(x):
    return x + OFFSET

@step
def answer(n: int = 2) -> int:
    return helper(n)

@pipeline
def asked(n: int = 2):
    answer(n=n)

h = run(asked, progress=False)
print(h.status.value, h.artifact("answer", "output").value)
"""


@pytest.mark.parametrize("how", ["-c", "stdin"])
def test_steps_defined_where_no_source_exists_are_pickled_and_run_locally(project: Path, how: str) -> None:
    done = python(project, "-c", STEP_SOURCE) if how == "-c" else python(project, "-", stdin=STEP_SOURCE)

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["SUCCEEDED", "42"]
    (record,) = runs(project)
    assert record.status == "SUCCEEDED"


def test_a_pickled_step_is_refused_by_a_python_of_another_minor_version_in_one_sentence() -> None:
    from stackhop.core.code_by_value import load
    from stackhop.errors import StackhopError

    with pytest.raises(StackhopError, match=r"step 'answer' was pickled by Python 2\.7 .* use an image with Python 2\.7"):
        load({"pickled": "gA==", "python": "2.7", "qualname": "answer"}, "step 'answer'")


def test_a_script_step_reading_a_value_that_cannot_be_shipped_recomputes_it_as_an_import_would(project: Path) -> None:
    (project / "script.py").write_text(textwrap.dedent("""
        from stackhop import pipeline, run, step

        handle = open(__file__)

        @step
        def peek() -> str:
            return handle.read(6)

        @pipeline
        def p():
            peek()

        h = run(p, progress=False)
        print(h.artifact("peek", "output").value)
    """))

    done = python(project, "script.py")

    assert done.returncode == 0, done.stderr
    assert done.stdout == "\nfrom \n"
    assert [r.status for r in runs(project)] == ["SUCCEEDED"]


def test_a_script_step_ships_its_helpers_constants_classes_and_project_imports(project: Path) -> None:
    (project / "helpers.py").write_text("def shout(s):\n    return s.upper() + '!'\n")
    (project / "script.py").write_text(textwrap.dedent("""
        import dataclasses
        import functools
        from helpers import shout
        from stackhop import pipeline, run, step

        GREETING = "hello"
        WORDS = {"b", "a"}

        @dataclasses.dataclass
        class Style:
            repeat: int = 2

        STYLE = Style(repeat=3)

        @functools.lru_cache(maxsize=None)
        def render(word):
            return " ".join([shout(word)] * STYLE.repeat)

        @step
        def greet(name: str = "world") -> str:
            return render(GREETING) + " " + name + " " + ",".join(sorted(WORDS))

        @pipeline
        def greeting():
            greet()

        if __name__ == "__main__":
            h = run(greeting, progress=False)
            print(h.artifact("greet", "output").value)
            print(json.dumps(greeting.build().step("greet").python.model_dump()))
    """).replace("import dataclasses\n", "import dataclasses\nimport json\n"))

    done = python(project, "script.py")

    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "HELLO! HELLO! HELLO! world a,b"
    call = json.loads(out[1])
    assert call["module"] == "__main__" and call["imports_project"] is True
    assert "from helpers import shout" in call["source"] and "STYLE = Style(repeat=3)" in call["source"]
    assert 'WORDS = {"b", "a"}' in call["source"], "a script ships its own lines"
    assert "run(greeting" not in call["source"]
    assert set(call["code_parts"]) >= {"function greet", "function render", "class Style", "value STYLE",
                                       "value GREETING", "module helpers.py"}


# ----------------------------------------------------------------------------- notebooks


@pytest.fixture
def kernel(project: Path):
    from jupyter import Kernel

    k = Kernel(project, env={"STACKHOP_CODE_CACHE": str(project / ".code-cache")})
    yield k
    k.close()


NOTEBOOK = [
    "import json\nfrom stackhop import Dataset, Input, Output, pipeline, run, step",
    "SCALE = 3",
    "def helper(x):\n    return x * SCALE",
    "class Tally:\n    def total(self, values):\n        return sum(values)",
    "@step\ndef produce(data: Output[Dataset]) -> int:\n    with open(data.path, 'w') as f:\n"
    "        json.dump([1, 2, 3], f)\n    return helper(1)",
    "@step\ndef consume(data: Input[Dataset], k: int) -> int:\n    return Tally().total(json.load(open(data.path))) * k",
    "@pipeline\ndef notebook(k: int = 2):\n    made = produce()\n    consume(data=made.outputs['data'], k=made.output)",
]


def statuses(kernel, run_var: str = "h") -> dict[str, str]:
    out = kernel.check(f"print(json.dumps({{k: v.status.value for k, v in {run_var}.steps().items()}}))").stdout
    return json.loads(out)


def test_notebook_steps_run_locally_and_an_edited_helper_cell_reruns_them(kernel, project: Path) -> None:
    for cell in NOTEBOOK:
        kernel.check(cell)

    first = kernel.check("h = run(notebook, stack='local')\nprint(h.status.value, h.artifact('consume', 'output').value)")
    assert first.stdout.split() == ["SUCCEEDED", "18"]

    kernel.check("SCALE = 4")
    second = kernel.check("h = run(notebook, stack='local', progress=False)\nprint(h.artifact('consume', 'output').value)")
    assert second.stdout.split() == ["24"]
    assert statuses(kernel) == {"produce": "SUCCEEDED", "consume": "SUCCEEDED"}

    kernel.check("h = run(notebook, stack='local', progress=False)")
    assert statuses(kernel) == {"produce": "CACHED", "consume": "CACHED"}

    kernel.check("def helper(x):\n    # a comment changes nothing that runs\n    return x * SCALE")
    kernel.check("h = run(notebook, stack='local', progress=False)")
    assert statuses(kernel) == {"produce": "CACHED", "consume": "CACHED"}


def test_a_notebook_shows_live_progress_and_a_handle_renders_as_html(kernel) -> None:
    for cell in NOTEBOOK:
        kernel.check(cell)

    cell = kernel.check("h = run(notebook)")
    run_id = kernel.check("print(h.run_id)").stdout.strip()
    shown = kernel.check("h")
    as_result = kernel.check("run(notebook)")

    assert cell.html and run_id in cell.html[0], "one display, updated in place, titled with the run id"
    assert cell.updates >= 1 and "SUCCEEDED" in cell.html[-1] and "consume" in cell.html[-1]
    assert shown.html and run_id in shown.html[-1] and "produce" in shown.html[-1]
    assert "stackhop-run" in as_result.html[0] and "text/html" not in as_result.result, \
        "a run() as the cell's last line shows its table once, live, and its value as one line"
    assert as_result.result["text/plain"].startswith("<RunHandle ")


def test_notebook_steps_run_on_the_fake_kubernetes_api_server(kernel, project: Path, write_config) -> None:
    from conftest import k8s_stack
    from stackhop.testing.kubernetes import FakeKubernetes

    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        for cell in NOTEBOOK:
            kernel.check(cell)

        done = kernel.check("h = run(notebook, stack='k8s', progress=False)\n"
                            "print(h.status.value, h.artifact('consume', 'output').value)", timeout=240)

        assert done.stdout.split() == ["SUCCEEDED", "18"], done.stderr
        jobs = kube.objects("Job", "ml")
        assert sorted(j["metadata"]["labels"]["stackhop.dev/step"] for j in jobs) == ["consume", "produce"]


def test_a_notebook_variable_that_cannot_travel_is_refused_naming_it(kernel) -> None:
    kernel.check("from stackhop import pipeline, run, step\nimport threading\nlock = threading.Lock()")
    kernel.check("@step\ndef guarded() -> int:\n    with lock:\n        return 1")
    kernel.check("@pipeline\ndef p():\n    guarded()")

    refused = kernel.run("run(p)")

    assert refused.error and refused.error.startswith("PipelineDefinitionError: step 'guarded' of pipeline 'p' uses 'lock'")
    assert "create it inside the step, pass it in as a step input, or define the step in a module file" in refused.error


# ----------------------------------------------------------------------------- progress from Python


PROGRESS = """
from stackhop import pipeline, run, step

@step
def hello() -> str:
    return "hi"

@pipeline
def greet():
    hello()

if __name__ == "__main__":
    import sys
    h = run(greet, progress=sys.argv[1] == "on")
    print(h.run_id)
"""


def test_run_from_python_shows_a_live_table_titled_with_the_run_id_in_a_terminal(project: Path) -> None:
    import pty

    (project / "greet.py").write_text(PROGRESS)
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKHOP_")}
    proc = subprocess.Popen([sys.executable, "greet.py", "on"], cwd=project, stdout=subprocess.PIPE, stderr=follower,
                            env={**env, "COLUMNS": "100", "TERM": "xterm"})
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        seen += chunk
    run_id = proc.communicate(timeout=60)[0].decode().strip()
    os.close(leader)
    screen = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", seen).decode(errors="replace")

    assert proc.returncode == 0
    assert f"run {run_id} SUCCEEDED" in screen and "hello" in screen


def test_run_from_python_prints_one_line_per_change_off_a_terminal_and_nothing_with_progress_off(project: Path) -> None:
    (project / "greet.py").write_text(PROGRESS)

    on = python(project, "greet.py", "on")
    off = python(project, "greet.py", "off")

    run_id = on.stdout.strip()
    lines = on.stderr.splitlines()
    assert lines[0] == f"run {run_id}" and lines[-1] == f"run {run_id} SUCCEEDED in " + lines[-1].rsplit(" in ", 1)[1]
    assert lines[1:-1] in (["hello: SUCCEEDED"], ["hello: RUNNING", "hello: SUCCEEDED"]), "each change once, in order"
    assert off.stderr == ""


def test_a_pickled_step_bound_for_an_image_of_another_python_is_refused_at_submit(project: Path) -> None:
    (project / "stackhop.yaml").write_text(
        "stacks:\n  k8s:\n    adapter: kubernetes\n    defaults: {image: 'python:3.9-slim'}\n")
    script = STEP_SOURCE.replace("run(asked, progress=False)", "run(asked, 'k8s', progress=False)")

    done = python(project, "-c", script)

    assert done.returncode == 1
    assert (f"CapabilityError: pipeline 'asked', step 'answer' travels as a Python {sys.version_info.major}."
            f"{sys.version_info.minor} pickle (it was defined where no source can be read), but its image "
            f"python:3.9-slim runs Python 3.9; define the step in a file or notebook") in done.stderr
    assert runs(project) == []


def test_a_script_step_ships_what_it_reaches_however_it_reaches_it(project: Path) -> None:
    (project / "helpers.py").write_text("def bump(x):\n    return x + 100\n")
    (project / "script.py").write_text(textwrap.dedent("""
        import json
        import sys
        from numpy import sum                       # shadows the builtin: the step must use numpy's
        from stackhop import Materializer, materializer, pipeline, run, step

        def inc(x):
            return x + 1

        OPS = {"inc": inc}                          # a dispatch table of __main__ functions

        if sys.version_info >= (3, 0):
            class Impl:
                def which(self):
                    return "new"
        else:
            class Impl:
                def which(self):
                    return "old"

        class Box:
            def __init__(self, v):
                self.v = v

        @materializer
        class BoxFile(Materializer):                # defined here: the steps need it registered too
            name = "box-json"
            types = (Box,)

            def save(self, value, path):
                open(path, "w").write(json.dumps(value.v))

            def load(self, path, expected, meta):
                return Box(json.load(open(path)))

        class Steps:
            @staticmethod
            def total() -> float:
                return float(sum([[1, 2], [3, 4]]))   # the builtin would raise TypeError

        @step
        def dispatch() -> int:
            from helpers import bump                # imported inside the body
            return bump(OPS["inc"](1))

        @step
        def boxed() -> Box:
            return Box(Impl().which())

        @step
        def unbox(b: Box) -> str:
            return b.v

        total = step(Steps.total)

        @pipeline
        def everything():
            dispatch()
            unbox(b=boxed().output)
            total()

        if __name__ == "__main__":
            h = run(everything, progress=False)
            print(h.status.value, h.state().message)
            print(json.dumps({s: h.artifact(s, "output").value for s in ("dispatch", "unbox", "total")}))
            print(json.dumps(everything.build().step("dispatch").python.model_dump()))
    """))

    done = python(project, "script.py")

    assert done.returncode == 0, done.stderr
    status, values, call = done.stdout.splitlines()
    assert status.strip() == "SUCCEEDED"
    assert json.loads(values) == {"dispatch": 102, "unbox": "new", "total": 10.0}
    call = json.loads(call)
    assert call["imports_project"] is True and "module helpers.py" in call["code_parts"]
    assert 'OPS = {"inc": inc}' in call["source"]


def test_a_notebook_step_importing_a_project_module_reruns_when_that_module_changes(kernel, project: Path) -> None:
    (project / "features.py").write_text("def scale(x):\n    return x * 2\n")
    kernel.check("import json\nfrom stackhop import pipeline, run, step\nfrom features import scale")
    kernel.check("@step\ndef scaled() -> int:\n    return scale(21)")
    kernel.check("@pipeline\ndef p():\n    scaled()")
    first = kernel.check("h = run(p, progress=False)\nprint(h.artifact('scaled', 'output').value)")

    (project / "features.py").write_text("def scale(x):\n    return x * 3\n")
    second = kernel.check("h = run(p, progress=False)\nprint(h.artifact('scaled', 'output').value)\n"
                          "print(json.dumps(p.build().step('scaled').python.code_parts))")

    assert first.stdout.split() == ["42"]
    assert second.stdout.splitlines()[0] == "63", "the step process imports the file as it is now: so does the key"
    assert "module features.py" in json.loads(second.stdout.splitlines()[1])


def test_the_live_table_shows_step_messages_as_written_never_as_markup() -> None:
    import io

    from stackhop.core.progress import TerminalView
    from stackhop.core.runs import RunState, RunStatus, StepState, StepStatus

    from rich.console import Console

    out = io.StringIO()
    view = TerminalView(out, "20260101-000000-abcdef")
    view.console = Console(file=out, force_terminal=True, width=120)  # rich's live redraw, into a string
    state = RunState(RunStatus.FAILED, steps={"[bold]train": StepState(
        "[bold]train", StepStatus.FAILED, message="FileNotFoundError: [/data/train.csv] is missing")})

    view.update(state)
    view.close()

    assert "[/data/train.csv]" in out.getvalue() and "[bold]train" in out.getvalue()


def test_a_script_step_sees_the_command_line_and_environment_the_script_was_started_with(project: Path) -> None:
    (project / "train.py").write_text(textwrap.dedent("""
        import argparse
        import os
        from stackhop import pipeline, run, step

        parser = argparse.ArgumentParser()
        parser.add_argument("--epochs", type=int, default=1)
        args = parser.parse_args()
        SCALE = int(os.environ.get("SCALE", "1"))

        @step
        def train() -> int:
            return args.epochs * SCALE

        @pipeline
        def p():
            train()

        if __name__ == "__main__":
            h = run(p, progress=False)
            print(h.steps()["train"].status.value, h.artifact("train", "output").value)
    """))

    five = python(project, "train.py", "--epochs", "5")
    seven = python(project, "train.py", "--epochs", "7")
    again = python(project, "train.py", "--epochs", "7")

    assert five.stdout.split() == ["SUCCEEDED", "5"], five.stderr
    assert seven.stdout.split() == ["SUCCEEDED", "7"], seven.stderr
    assert again.stdout.split() == ["CACHED", "7"]


def test_a_notebook_run_that_failed_resumes_when_given_its_pipeline(kernel, project: Path) -> None:
    for cell in NOTEBOOK:
        kernel.check(cell)
    kernel.check("import os\nos.environ['BREAK'] = '1'")
    kernel.check("@step\ndef consume(data: Input[Dataset], k: int) -> int:\n    import os\n"
                 "    if os.environ.get('BREAK'):\n        raise ValueError('not yet')\n"
                 "    return Tally().total(json.load(open(data.path))) * k")
    kernel.check("h = run(notebook, stack='local', progress=False)\nos.environ.pop('BREAK')")
    assert statuses(kernel) == {"produce": "SUCCEEDED", "consume": "FAILED"}

    no_file = kernel.check("try:\n    h.resume(progress=False)\nexcept Exception as e:\n    print(type(e).__name__, e)")
    kernel.check("h = h.resume(notebook, progress=False)")

    assert no_file.stdout.startswith("StackhopError run ") and "resume(pipeline=...), as a notebook must." in no_file.stdout
    assert statuses(kernel) == {"produce": "CACHED", "consume": "SUCCEEDED"}
    assert kernel.check("print(h.steps()['produce'].native)").stdout.strip() == "resumed"
