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
        "code (module flow); its cache key covers: function uses_module, module helpers.py, module deep.py, "
        "from stackhop import step")


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


# ----------------------------------------------------------------------------- code a step reaches less directly

REACHED = {
    "a module-level call that configures what the step reads": ({
        "flow.py": "from stackhop import pipeline, step\nCONFIG = {}\n\ndef configure():\n    CONFIG['lr'] = 0.1\n\n"
                   "configure()\n\n@step\ndef s() -> float:\n    return CONFIG['lr']\n\n@pipeline\ndef p():\n    s()\n",
    }, ("flow.py", "0.1", "0.5")),
    "a registry filled by decorated functions": ({
        "flow.py": "from stackhop import pipeline, step\nREGISTRY = {}\n\ndef register(fn):\n    REGISTRY[fn.__name__] = fn\n"
                   "    return fn\n\n@register\ndef plugin_a():\n    return 1\n\n@step\ndef s() -> int:\n"
                   "    return sum(f() for f in REGISTRY.values())\n\n@pipeline\ndef p():\n    s()\n",
    }, ("flow.py", "return 1", "return 2")),
    "a helper module that imports the step's own module back": ({
        "flow.py": "import helpers\nfrom stackhop import pipeline, step\nSCALE = 2\n\n@step\ndef s() -> int:\n"
                   "    return helpers.scaled(1)\n\n@pipeline\ndef p():\n    s()\n",
        "helpers.py": "def scaled(x):\n    import flow\n    return x * flow.SCALE\n",
    }, ("flow.py", "SCALE = 2", "SCALE = 3")),
    "a field type of a returned model under postponed annotations": ({
        "flow.py": "from __future__ import annotations\nfrom dataclasses import dataclass\nfrom stackhop import pipeline, step\n\n"
                   "class Unit:\n    def name(self):\n        return 'kg'\n\n@dataclass\nclass Reading:\n    unit: Unit\n\n"
                   "@step\ndef s() -> str:\n    return Reading.__annotations__['unit']\n\n@pipeline\ndef p():\n    s()\n",
    }, ("flow.py", "'kg'", "'lb'")),
    "the arguments a factory made the step with": ({
        "flow.py": "from stackhop import pipeline, step\n\ndef add_one(x):\n    return x + 1\n\ndef add_two(x):\n"
                   "    return x + 2\n\ndef make(fn, tags):\n    @step(name='made')\n    def made() -> int:\n"
                   "        return fn(1) + len(tags)\n    return made\n\nmade = make(add_one, {'b', 'a'})\n\n"
                   "@pipeline\ndef p():\n    made()\n",
    }, ("flow.py", "make(add_one", "make(add_two")),
    "a project that lives in a folder named build": ({
        "build/app/flow.py": "import helpers\nfrom stackhop import pipeline, step\n\n@step\ndef s() -> int:\n"
                             "    return helpers.k()\n\n@pipeline\ndef p():\n    s()\n",
        "build/app/helpers.py": "def k():\n    return 1\n",
    }, ("build/app/helpers.py", "return 1", "return 2")),
}


@pytest.mark.parametrize("case", list(REACHED), ids=list(REACHED))
def test_code_a_step_reaches_indirectly_is_part_of_its_key(case: str, tmp_path: Path, monkeypatch) -> None:
    files, (edited, old, new) = REACHED[case]
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write(tmp_path / name, text)
    root = (tmp_path / next(iter(files))).parent
    code = ("import json, sys; sys.path.insert(0, '.'); import flow; "
            "print(json.dumps([s.python.code_digest for s in flow.p.build().steps]))")

    def digest() -> list[str]:
        done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    before, again = digest(), digest()
    write(tmp_path / edited, (tmp_path / edited).read_text().replace(old, new, 1))
    after = digest()

    assert before == again, "the same code gives the same key in every process"
    assert after != before


def test_a_module_outside_the_project_on_the_python_path_is_part_of_the_key(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "libs").mkdir()
    write(tmp_path / "app" / "flow.py", "import mylib\nfrom stackhop import pipeline, step\n\n@step\ndef s() -> int:\n"
                                        "    return mylib.k\n\n@pipeline\ndef p():\n    s()\n")
    write(tmp_path / "libs" / "mylib.py", "k = 1\n")
    code = "import sys; sys.path.insert(0, '.'); import flow; print(flow.p.build().steps[0].python.model_dump_json())"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "libs")}

    def call() -> dict:
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "app", capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    before = call()
    write(tmp_path / "libs" / "mylib.py", "k = 2\n")
    after = call()

    assert "module mylib.py (outside the project, under libs)" in before["code_parts"]
    assert after["code_digest"] != before["code_digest"]


def test_a_module_value_computed_from_the_environment_is_keyed_by_its_value(tmp_path: Path) -> None:
    write(tmp_path / "flow.py", "import os\nfrom stackhop import pipeline, step\nN = int(os.environ.get('N_ITEMS', '5'))\n\n"
                                "@step\ndef uses_n() -> int:\n    return N\n\n@step\ndef plain() -> int:\n    return 1\n\n"
                                "@pipeline\ndef p():\n    uses_n()\n    plain()\n")
    code = ("import json, sys; sys.path.insert(0, '.'); import flow; "
            "print(json.dumps({s.name: s.python.code_digest for s in flow.p.build().steps}))")

    def digests(n: str) -> dict[str, str]:
        done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "N_ITEMS": n})
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    five, six = digests("5"), digests("6")

    assert five["uses_n"] != six["uses_n"], "the step returns N, so N's value is part of its key"
    assert five["plain"] == six["plain"], "a value only other steps read changes nothing here"
