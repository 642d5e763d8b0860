"""A cache key covers all the code a step runs, and nothing else: no stale result after an edit,
no needless re-run after an edit elsewhere.

A project as users lay one out: steps in `flow.py` with a helper and a constant beside them,
a `helpers` module that imports a `deep` one, and a module nothing imports. Each spec edits one
file on disk and says which steps' keys change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest

import stackhop
from stackhop import StepStatus

FLOW = '''
"""Three independent steps: each reaches different code."""
import helpers
from stackhop import pipeline, step

SCALE = 2


def double(x):
    return x * SCALE


@step
def uses_helper_and_constant() -> int:
    return double(1)


@step
def uses_module() -> int:
    return helpers.inc(1)


@step
def uses_nothing() -> int:
    return 7


@pipeline
def flow():
    uses_helper_and_constant()
    uses_module()
    uses_nothing()
'''
HELPERS = "import deep\n\n\ndef inc(x):\n    return deep.k(x) + 1\n"
DEEP = "def k(x):\n    return x\n"
UNRELATED = "def other():\n    return 0\n"
STEPS = ("uses_helper_and_constant", "uses_module", "uses_nothing")


def write(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()  # a later mtime even within one clock tick: the parse cache keys on it
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@pytest.fixture
def flow(project: Path, write_pipeline: Callable[..., Any]) -> Any:
    for name, text in (("helpers", HELPERS), ("deep", DEEP), ("unrelated", UNRELATED)):
        write(project / f"{name}.py", text)
    return write_pipeline(FLOW, name="flow")


def digests(module: Any) -> dict[str, str]:
    return {s.name: s.python.code_digest for s in module.flow.build().steps}


EDITS = [
    # (what the user edits, file, old text, new text, steps whose key changes)
    ("the body of a helper in the step's module", "flow.py", "return x * SCALE", "return x * SCALE + 0",
     {"uses_helper_and_constant"}),
    ("a constant the helper reads", "flow.py", "SCALE = 2", "SCALE = 3", {"uses_helper_and_constant"}),
    ("a function in an imported project module", "helpers.py", "+ 1", "+ 2", {"uses_module"}),
    ("a module that module imports", "deep.py", "return x", "return x * 1", {"uses_module"}),
    ("a module no step imports", "unrelated.py", "return 0", "return 1", set()),
    ("a comment and blank lines beside a step", "flow.py", "SCALE = 2\n", "SCALE = 2  # tuned by hand\n\n\n", set()),
    ("the step itself", "flow.py", "return 7", "return 8", {"uses_nothing"}),
    ("module-level code that runs on import", "flow.py", "SCALE = 2\n",
     "SCALE = 2\nimport os\nos.environ.setdefault('MODE', 'fast')\n", set(STEPS)),
]


@pytest.mark.parametrize("what,file,old,new,changed", EDITS, ids=[e[0] for e in EDITS])
def test_an_edit_changes_exactly_the_keys_of_the_steps_whose_code_reaches_it(
        flow: Any, project: Path, what: str, file: str, old: str, new: str, changed: set[str]) -> None:
    before = digests(flow)
    path = project / file
    assert old in path.read_text()
    write(path, path.read_text().replace(old, new, 1))

    after = digests(flow)

    assert {s for s in STEPS if after[s] != before[s]} == changed


def test_each_step_key_names_the_parts_it_covers(flow: Any) -> None:
    parts = {s.name: set(s.python.code_parts) for s in flow.flow.build().steps}

    decorator = "from stackhop import step"  # @step runs when the module is imported
    assert parts["uses_helper_and_constant"] == {"function uses_helper_and_constant", "function double", "value SCALE", decorator}
    assert parts["uses_module"] == {"function uses_module", "module helpers.py", "module deep.py", decorator}
    assert parts["uses_nothing"] == {"function uses_nothing", decorator}


def test_a_step_that_imports_by_name_at_run_time_falls_back_to_the_whole_source_tree(
        project: Path, write_pipeline: Callable[..., Any]) -> None:
    write(project / "plugins_a.py", "VALUE = 1\n")
    module = write_pipeline("""
        import importlib
        from stackhop import pipeline, step

        @step
        def dynamic(name: str = "plugins_a") -> int:
            return importlib.import_module(name).VALUE

        @pipeline
        def p():
            dynamic()
    """)
    before = module.p.build().step("dynamic").python

    write(project / "plugins_a.py", "VALUE = 2\n")
    after = module.p.build().step("dynamic").python

    assert "source tree (the code imports by name at run time)" in after.code_parts
    assert after.code_digest != before.code_digest


def test_an_edited_helper_reruns_exactly_its_step_and_the_run_says_what_changed(
        flow: Any, project: Path) -> None:
    first = stackhop.run(flow.flow, progress=False)
    assert {k: s.status for k, s in first.steps().items()} == {s: StepStatus.SUCCEEDED for s in STEPS}

    write(project / "helpers.py", HELPERS.replace("+ 1", "+ 2"))
    second = stackhop.run(flow.flow, progress=False)

    steps = second.steps()
    assert {k: s.status.value for k, s in steps.items()} == {
        "uses_helper_and_constant": "CACHED", "uses_module": "SUCCEEDED", "uses_nothing": "CACHED"}
    assert second.artifact("uses_module", "output").value == 3
    assert steps["uses_module"].cache == {"result": "miss", "key": steps["uses_module"].cache["key"],
                                          "changed": ["code changed: module helpers.py"]}
    assert steps["uses_nothing"].cache["result"] == "hit" and steps["uses_nothing"].cache["from_run"] == first.run_id

    shown = subprocess.run([str(Path(sys.executable).with_name("stackhop")), "runs", "show", second.run_id, "--json"],
                           cwd=project, capture_output=True, text=True, check=True)
    state = json.loads(shown.stdout)["state"]["steps"]
    assert state["uses_module"]["cache"]["changed"] == ["code changed: module helpers.py"]


def test_a_changed_parameter_is_named_as_the_reason_for_a_miss(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import pipeline, step

        @step
        def scale(factor: int) -> int:
            return factor * 2

        @pipeline
        def p(factor: int = 1):
            scale(factor=factor)
    """)
    stackhop.run(module.p, progress=False)

    again = stackhop.run(module.p, parameters={"factor": 5}, progress=False)

    assert again.steps()["scale"].cache["changed"] == ["input factor: 1 -> 5"]


def test_compile_explain_says_what_each_key_covers(flow: Any, project: Path) -> None:
    explained = stackhop.core.api.explain(flow.flow, "local")

    assert explained["uses_module"][-1] == (
        "code (module flow); its cache key covers: function uses_module, from stackhop import step, "
        "module helpers.py, module deep.py")


def test_a_fingerprint_is_the_same_in_another_process(flow: Any, project: Path) -> None:
    code = textwrap.dedent("""
        import json, sys
        sys.path.insert(0, ".")
        import flow
        print(json.dumps({s.name: s.python.code_digest for s in flow.flow.build().steps}))
    """)
    other = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, check=True)

    assert json.loads(other.stdout) == digests(flow)


def test_every_call_of_one_step_definition_shares_its_fingerprint(project: Path, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import pipeline, step

        @step
        def inc(x: int) -> int:
            return x + 1

        @pipeline
        def chain():
            value = inc(x=0)
            for _ in range(999):
                value = inc(x=value.output)
    """)
    built = module.chain.build()

    assert len(built.steps) == 1000 and len({s.python.code_digest for s in built.steps}) == 1
