"""`@step(packages_to_install=[...])`: try a dependency without building an image, on every backend.

The step process installs the requirements with pip before it imports the step's module, into a
cache shared by every step and run that asks for the same set. The packages here are wheels the
test builds itself, so no spec needs the network (PIP_NO_INDEX keeps pip off it).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import zipfile
from pathlib import Path

import pytest

import stackhop
from stackhop import RunStatus, StepStatus
from stackhop.errors import PipelineDefinitionError


def build_wheel(folder: Path, version: str) -> Path:
    """A wheel of the one-module package `tinyhop`, written as pip writes one (a zip with its dist-info)."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = f"tinyhop-{version}.dist-info"
    files = {
        "tinyhop/__init__.py": f'VERSION = "{version}"\n',
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: tinyhop\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: stackhop-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    path = folder / f"tinyhop-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return path


PIPELINE = """
from stackhop import pipeline, step


@step(packages_to_install=[{wheel!r}])
def which_version() -> str:
    import tinyhop

    return tinyhop.VERSION


@pipeline
def p():
    which_version()
"""


@pytest.fixture
def offline_pip(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = project / "package-cache"
    monkeypatch.setenv("STACKHOP_PACKAGE_CACHE", str(cache))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    return cache


def version_of(handle) -> str:
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    return handle.artifact("which_version", "output").value


def test_the_step_installs_its_packages_and_imports_them(offline_pip, project, write_pipeline) -> None:
    assert importlib.util.find_spec("tinyhop") is None, "the package is not installed where the pipeline is defined"
    module = write_pipeline(PIPELINE.format(wheel=str(build_wheel(project / "wheels", "1.0"))))

    assert version_of(stackhop.run(module.p)) == "1.0"
    assert module.p.build().step("which_version").python.packages == (str(project / "wheels/tinyhop-1.0-py3-none-any.whl"),)


def test_a_second_run_reuses_the_install(offline_pip, project, write_pipeline) -> None:
    wheel = build_wheel(project / "wheels", "1.0")
    module = write_pipeline(PIPELINE.format(wheel=str(wheel)))
    assert version_of(stackhop.run(module.p)) == "1.0"

    wheel.unlink()  # were it installed again, pip would find nothing to install
    assert version_of(stackhop.run(module.p, cache=False)) == "1.0"
    assert len([d for d in offline_pip.iterdir() if not d.name.startswith(".")]) == 1


def test_changing_the_packages_changes_the_cache_key(offline_pip, project, write_pipeline) -> None:
    first = write_pipeline(PIPELINE.format(wheel=str(build_wheel(project / "v1", "1.0"))))
    second = write_pipeline(PIPELINE.format(wheel=str(build_wheel(project / "v2", "2.0"))))
    assert version_of(stackhop.run(first.p)) == "1.0"

    again = stackhop.run(first.p)
    assert again.steps()["which_version"].status == StepStatus.CACHED, "the same code and packages: a cache hit"
    changed = stackhop.run(second.p)
    assert changed.steps()["which_version"].status == StepStatus.SUCCEEDED
    assert version_of(changed) == "2.0"


def test_a_requirement_pip_cannot_install_fails_the_step_naming_it(offline_pip, write_pipeline) -> None:
    module = write_pipeline("""
        from stackhop import pipeline, step

        @step(packages_to_install=["tinyhop-that-is-nowhere==9.9"])
        def needs() -> None:
            pass

        @pipeline
        def p():
            needs()
    """)
    handle = stackhop.run(module.p)

    assert handle.status == RunStatus.FAILED
    assert ("step 'needs': pip could not install 'tinyhop-that-is-nowhere==9.9' from packages_to_install"
            in handle.steps()["needs"].message)
    assert "bake it into the step's image" in handle.steps()["needs"].message


def test_compile_explain_warns_that_the_environment_is_not_reproducible(offline_pip, project, write_pipeline) -> None:
    module = write_pipeline(PIPELINE.format(wheel="tinyhop==1.0"))
    warning = ("pipeline 'p', step 'which_version' installs packages_to_install (tinyhop==1.0) when it starts, so its "
               "environment is not reproducible")

    assert any(line.startswith("warning: " + warning) and line.endswith("bake them into the step's image for production.")
               for line in stackhop.core.api.explain(module.p)["which_version"])
    assert any(str(note).startswith(warning) for note in stackhop.compile(module.p).notes)


@pytest.mark.parametrize("packages, message", [
    ('"pandas"', r"step 'f': packages_to_install must be a list of pip requirements, e\.g\. \[\"pandas==2\.2\.2\"\], "
                 r"got str 'pandas'\."),
    ('["--index-url=http://mirror"]', r"packages_to_install item '--index-url=http://mirror' is a pip option, not a "
                                      r"requirement; list packages only and configure the index with PIP_INDEX_URL"),
    ('["numpy\\nscipy"]', r"packages_to_install item 'numpy\\nscipy' is not a pip requirement; write one requirement "
                          r"per string"),
], ids=["a string", "a pip option", "two lines"])
def test_packages_that_are_not_requirements_are_refused_where_step_is_written(write_pipeline, packages, message) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):
        write_pipeline(f"""
            from stackhop import step

            @step(packages_to_install={packages})
            def f() -> None:
                pass
        """)
