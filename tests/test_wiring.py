"""Specifications of the entrypoint's wiring seam: one backend-neutral step program, each backend's data
hand-over supplied by its adapter and chosen by the compiled command (`--wiring module:Class ARGS...`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackhop import entrypoint
from stackhop.core import plugins
from stackhop.core.resolve import RunView
from stackhop.core.wiring import SharedSpecWiring, Wiring, resolve_wiring, wiring_ref
from stackhop.errors import ConfigError

PIPELINESPEC = "stackhop.adapters.pipelinespec.runtime:PipelineSpecWiring"
SAGEMAKER = "stackhop.adapters.sagemaker.runtime:SageMakerWiring"

PIPE = """
    from stackhop import pipeline, step

    @step
    def make(n: int) -> int:
        return n + 1

    @step
    def double(x: int) -> int:
        return 2 * x

    @pipeline
    def chain(n: int = 1):
        double(make(n))
"""


@pytest.fixture
def spec(project: Path, write_pipeline) -> Path:
    module = write_pipeline(PIPE)
    pipeline = module.chain.build().model_dump(mode="json")
    path = project / "run.json"
    path.write_text(json.dumps({
        "run_id": "r1", "pipeline": pipeline, "parameters": {"n": 1}, "artifact_root": str(project / "artifacts"),
        "code": {"source_dir": str(project)},
    }))
    return path


def test_the_compilers_name_the_wirings_their_adapters_register() -> None:
    from stackhop.adapters.pipelinespec.compiler import WIRING as pipelinespec
    from stackhop.adapters.sagemaker.definition import WIRING as sagemaker

    registered = plugins.wirings()

    assert (pipelinespec, sagemaker) == (PIPELINESPEC, SAGEMAKER)
    assert registered["pipelinespec"] is resolve_wiring(PIPELINESPEC)
    assert registered["sagemaker"] is resolve_wiring(SAGEMAKER)
    assert wiring_ref(registered["sagemaker"]) == SAGEMAKER


def test_a_registered_wiring_name_resolves_through_the_plugin_hook() -> None:
    assert resolve_wiring("sagemaker") is plugins.wiring_class("sagemaker", where="test")


@pytest.mark.parametrize("ref,words", [
    ("stackhop.adapters.nowhere.runtime:Wiring", "cannot be imported"),
    ("stackhop.core.resolve:RunView", "is not a stackhop Wiring class"),
    ("json:JSONDecoder", "is not a stackhop Wiring class"),
    ("stackhop.core.wiring:SharedSpecWiring", "is not registered by any installed plugin"),
    ("sagemakr", "Did you mean 'sagemaker'?"),
])
def test_a_wiring_that_is_not_an_installed_adapters_is_a_config_error_naming_it(ref: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_wiring(ref)

    assert words in str(err.value)
    assert "--wiring" in str(err.value)


def test_a_step_starts_without_reading_entry_points_or_loading_heavy_modules(project: Path) -> None:
    code = (f"import json, sys\nfrom stackhop.entrypoint import main\nfrom stackhop.core.wiring import resolve_wiring\n"
            f"resolve_wiring({PIPELINESPEC!r}).from_argv(['--meta', 'x'])\n"
            f"resolve_wiring({SAGEMAKER!r}).from_argv(['--param', 'a=1'])\nprint(json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout))
    heavy = ("pluggy", "importlib.metadata", "pydantic", "fsspec", "boto3", "botocore", "google.cloud.storage",
             "google.auth", "kubernetes",
             "stackhop.core.plugins", "stackhop.core.ir", "stackhop.adapters.pipelinespec.compiler",
             "stackhop.adapters.sagemaker.definition")
    assert sorted(m for m in loaded for h in heavy if m == h or m.startswith(h + ".")) == []


def test_without_a_wiring_a_step_reads_and_writes_the_run_layout(spec: Path, project: Path) -> None:
    assert entrypoint.main(["--spec", str(spec), "--step", "make"]) == 0
    assert entrypoint.main(["--spec", str(spec), "--step", "double"]) == 0

    view = RunView(json.loads(spec.read_text()))
    assert type(view.wiring) is Wiring
    assert view.outputs("double", ())["scalars"] == {"output": 4}


def test_arguments_after_the_wiring_are_the_wirings(spec: Path, project: Path) -> None:
    elsewhere = project / "elsewhere"
    assert entrypoint.main(["--spec", str(spec), "--step", "make", "--wiring", SAGEMAKER,
                            "--run-id", "r2", "--param", "n=5", "--property-dir", str(elsewhere)]) == 0

    produced = json.loads((elsewhere / "outputs.json").read_text())
    assert produced["scalars"] == {"output": 6}
    view = RunView(dict(json.loads(spec.read_text()), run_id="r2"))
    assert view.outputs("make", ()) == produced
    up = Path(view.outputs_uri("make", ())).parent
    assert entrypoint.main(["--spec", str(spec), "--step", "double", "--wiring", SAGEMAKER, "--run-id", "r3",
                            "--upstream", f"make={up}"]) == 0
    assert RunView(dict(json.loads(spec.read_text()), run_id="r3")).outputs("double", ())["scalars"] == {"output": 12}


def test_an_argument_no_wiring_declares_is_a_usage_error(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        entrypoint.main(["--spec", str(spec), "--step", "make", "--meta", "gs://b/m"])
    assert exit_.value.code == 2
    assert "--meta" in capsys.readouterr().err

    with pytest.raises(SystemExit):
        entrypoint.main(["--spec", str(spec), "--step", "make", "--wiring", SAGEMAKER, "--param", "n"])
    assert "'n' is not NAME=VALUE" in capsys.readouterr().err


def test_an_unknown_wiring_exits_2_before_the_step_runs(spec: Path, project: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert entrypoint.main(["--spec", str(spec), "--step", "make", "--wiring", "acme.runtime:Wiring"]) == 2

    assert "acme.runtime:Wiring" in capsys.readouterr().err
    assert not (project / "artifacts").exists()


def test_run_view_reads_upstream_outputs_where_its_wiring_says(spec: Path, project: Path) -> None:
    class Elsewhere(SharedSpecWiring):
        pass

    (project / "up").mkdir()
    (project / "up" / "outputs.json").write_text(json.dumps({"scalars": {"output": 41}, "artifacts": {}}))
    view = RunView(json.loads(spec.read_text()), wiring=Elsewhere(upstream=[("make", str(project / "up"))]))
    double = view.steps["double"]

    assert view.input_value(double["inputs"][0], "double", ()) == 41
    assert view.output_uri("double", "model", ()) == view.store.output_uri("chain", "r1", "double", "model", ())


def test_the_driver_is_found_through_the_adapter_plugins(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    class Driven:
        @classmethod
        def drive(cls, spec_uri: str) -> int:
            seen.append(spec_uri)
            return 7

    monkeypatch.setattr(plugins, "adapter_class", lambda name, where: seen.append((name, where)) or Driven)

    assert entrypoint.main(["--spec", str(spec), "--driver", "kubernetes"]) == 7
    assert seen == [("kubernetes", "--driver"), str(spec)]
