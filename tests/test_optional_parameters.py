"""`Optional[...]` pipeline parameters with `None` defaults, as kfp users declare them."""

from __future__ import annotations

import json

import pytest
import yaml

import stackhop
from stackhop import RunStatus
from stackhop.errors import PipelineDefinitionError

from conftest import emulated_stacks

GREET = """
from typing import Optional

from stackhop import pipeline, step


@step
def greet(name: Optional[str] = None) -> str:
    return f"hello {name or 'nobody'}"


@pipeline
def greeting(name: Optional[str] = None, times: int | None = None):
    greet(name=name)
"""

STACKS = emulated_stacks("opt")


@pytest.fixture
def greeting(write_pipeline, write_config):
    write_config(STACKS)
    return write_pipeline(GREET).greeting


def test_an_optional_parameter_left_out_is_none_and_given_is_its_value(greeting) -> None:
    ir = greeting.build()
    assert [(p.name, p.type, p.default, p.has_default) for p in ir.parameters] == [
        ("name", "str", None, True), ("times", "int", None, True)]
    assert stackhop.run(greeting).artifact("greet", "output").load() == "hello nobody"
    given = stackhop.run(greeting, parameters={"name": "ada"})
    assert given.status == RunStatus.SUCCEEDED and given.artifact("greet", "output").load() == "hello ada"


def test_pipeline_spec_marks_it_optional_with_no_default_as_kfp_does(greeting) -> None:
    from kfp.components import load_component_from_text  # kfp's own loader reads what stackhop wrote

    compiled = stackhop.compile(greeting, "vertex")
    (name,) = [n for n in compiled.files if n.endswith((".json", ".yaml"))][:1]
    text = compiled.files[name].decode()
    spec = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["name"] == {"parameterType": "STRING", "isOptional": True}
    assert params["times"] == {"parameterType": "NUMBER_INTEGER", "isOptional": True}
    assert load_component_from_text(text).name


def test_sagemaker_refuses_a_none_default_in_one_sentence(greeting) -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        stackhop.compile(greeting, "sm")
    message = str(caught.value)
    assert "parameter 'name' defaults to None" in message and message.count(". ") == 0
