"""Write a container component as a KFP v1 component file: the format every KFP version and stackhop read.

v1 rather than a compiled v2 document because it is what people share (kubeflow/pipelines'
`components/` tree), it is short enough to review, and kfp 2 still loads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from stackhop.core.containers import ContainerComponent, arg_ir
from stackhop.errors import PipelineDefinitionError, StackhopError

V1_TYPE_NAMES = {"str": "String", "int": "Integer", "float": "Float", "bool": "Boolean", "list": "JsonArray",
                 "dict": "JsonObject"}
_V1_KEYS = {"input_value": "inputValue", "input_path": "inputPath", "input_uri": "inputUri",
            "output_path": "outputPath", "output_uri": "outputUri"}


def export_component(component: Any, path: str | Path) -> Path:
    """Write `component` (from @container_component or load_component) to `path` as KFP v1 component YAML."""
    text = component_yaml(component)
    target = Path(path)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StackhopError(f"cannot write component {component.name!r} to {str(target)!r} ({exc.strerror}); "
                            "pass a path in a folder you can write.") from None
    return target


def component_yaml(component: Any) -> str:
    """The component file's text: the same component always gives the same bytes."""
    if not isinstance(component, ContainerComponent):
        from stackhop.core.dsl import StepDef

        if isinstance(component, StepDef):
            raise PipelineDefinitionError(
                f"step {component.name!r} is a Python @step, which needs stackhop inside its image; export_component "
                "writes container components, so write it as a @container_component to share it as a file.")
        raise PipelineDefinitionError(
            f"export_component takes a @container_component or a component from load_component, got "
            f"{type(component).__name__} {component!r}.")
    spec = component.spec()
    doc: dict[str, Any] = {"name": getattr(component, "display_name", None) or component.name}
    description = getattr(component, "description", None) or (component.fn.__doc__ if component.fn else None)
    if description:
        doc["description"] = " ".join(description.split())
    inputs, outputs = [], []
    for p in component.params:
        entry: dict[str, Any] = {"name": p.name, "type": V1_TYPE_NAMES.get(p.type, p.type)}
        if p.direction == "out":
            outputs.append(entry)
            continue
        if p.has_default and p.default is not None:
            entry["default"] = _default_text(p.default)
        if p.optional or p.has_default:
            entry["optional"] = True
        inputs.append(entry)
    if inputs:
        doc["inputs"] = inputs
    if outputs:
        doc["outputs"] = outputs
    container: dict[str, Any] = {"image": spec.image}
    for field in ("command", "args"):
        items = [_v1(arg_ir(component.name, x)) for x in getattr(spec, field)]
        if items:
            container[field] = items
    doc["implementation"] = {"container": container}
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Dumper(yaml.SafeDumper):
    """A script of several lines stays readable: written as a literal block, as people write them."""


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _text)


def _default_text(value: Any) -> str:
    """v1 files hold defaults as text, the way the command receives them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    return json.dumps(value, sort_keys=True)


def _v1(item: Any) -> Any:
    if isinstance(item, str):
        return item
    if "placeholder" in item:
        return {_V1_KEYS[item["placeholder"]]: item["name"]}
    if "concat" in item:
        return {"concat": [_v1(x) for x in item["concat"]]}
    branch: dict[str, Any] = {"cond": {"isPresent": item["if_present"]}, "then": [_v1(x) for x in item["then"]]}
    if item["otherwise"]:
        branch["else"] = [_v1(x) for x in item["otherwise"]]
    return {"if": branch}
