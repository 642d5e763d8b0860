"""Steps defined in `__main__` run on every stack: their code travels by value inside the run spec.

The steps here are executed as a `__main__` namespace would hold them (a script run directly, a
notebook), from a file so their source can be read, then run locally, on the fake Kubernetes API
server, and through the emulators of the compiled SageMaker definition and PipelineSpec.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

import stackhop
from stackhop import RunStatus

MAIN = textwrap.dedent("""
    import json
    from stackhop import Dataset, Input, Output, pipeline, step

    FACTOR = 7
    TAGS = {"b", "a"}

    def double(x):
        return 2 * x

    OPS = {"double": double}

    class Counter:
        def count(self, items):
            return len(items)

    def triple(x):
        return x * 3

    @step
    def make(data: Output[Dataset]) -> int:
        with open(data.path, "w") as f:
            json.dump(["a", "b"], f)
        return triple(2)

    @step
    def use(data: Input[Dataset], base: int) -> int:
        return Counter().count(json.load(open(data.path))) * FACTOR + OPS["double"](base) - base + len(TAGS) - 2

    @pipeline
    def by_value():
        made = make()
        use(data=made.outputs["data"], base=made.output)
""")


def as_main(project: Path) -> dict:
    """Execute the cells as `__main__`: functions defined there, source readable from the file."""
    path = project / "cells.py"
    path.write_text(MAIN)
    namespace: dict = {"__name__": "__main__"}
    exec(compile(MAIN, str(path), "exec"), namespace)
    return namespace


def answer(handle) -> int:
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    return handle.artifact("use", "output").value


def test_the_captured_source_is_what_travels(project: Path) -> None:
    call = as_main(project)["by_value"].build().step("use").python

    assert call.module == "__main__" and call.by_value and not call.imports_project
    assert "class Counter:" in call.source and "FACTOR = 7" in call.source and "def triple" not in call.source
    assert "TAGS = {'a', 'b'}" in call.source, "sets are written sorted, so the digest is stable"
    assert "OPS = {'double': double}" in call.source and "def double(x):" in call.source
    assert set(call.code_parts) == {"function use", "class Counter", "value FACTOR", "value TAGS", "value OPS",
                                    "function double", "import json", "from stackhop import Dataset",
                                    "from stackhop import Input", "from stackhop import step"}


def test_on_the_local_stack(project: Path) -> None:
    assert answer(stackhop.run(as_main(project)["by_value"], "local", progress=False)) == 20


def test_on_kubernetes(project: Path, write_config) -> None:
    from conftest import k8s_stack
    from stackhop.testing.kubernetes import FakeKubernetes

    with FakeKubernetes(version="1.37", time_scale=0.05) as kube:
        k8s_stack(write_config, kube, project)
        handle = stackhop.run(as_main(project)["by_value"], "k8s", progress=False)
        assert handle.wait(timeout=120) == RunStatus.SUCCEEDED, handle.state().message
        assert answer(handle) == 20


def test_on_sagemaker_emulated_against_moto(project: Path, write_config, monkeypatch) -> None:
    from stackhop.testing.sagemaker import FakeSageMaker

    with FakeSageMaker(region="us-east-1") as fake:
        for key, value in fake.env().items():
            monkeypatch.setenv(key, value)
        fake.create_bucket("ml-artifacts")
        write_config("""
            stacks:
              sm:
                adapter: sagemaker
                artifact_root: s3://ml-artifacts/by-value
                defaults: {image: "img:1"}
                settings: {region: us-east-1, role_arn: "arn:aws:iam::123456789012:role/SageMakerRole"}
        """)
        assert answer(stackhop.run(as_main(project)["by_value"], "sm", emulate=True, progress=False)) == 20


@pytest.mark.parametrize("adapter", ["vertex", "kfp"])
def test_on_pipeline_spec_emulated_against_cloud_storage(project: Path, write_config, gcs, adapter: str) -> None:
    settings = "{project: p}" if adapter == "vertex" else '{host: "http://kfp.invalid"}'
    write_config(f"""
        stacks:
          remote:
            adapter: {adapter}
            artifact_root: gs://ml-artifacts/by-value-{adapter}
            defaults: {{image: "python:3.11"}}
            settings: {settings}
    """)
    assert answer(stackhop.run(as_main(project)["by_value"], "remote", emulate=True, progress=False)) == 20
