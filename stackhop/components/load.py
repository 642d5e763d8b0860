"""Read a KFP component document (v1 component YAML, or a v2 single-component PipelineSpec) into a component.

Everything in the file is checked before a pipeline uses it: a file from elsewhere may hold
anything, so each problem is one sentence naming the file, the line, the field and the fix.
What comes out is the same `ContainerComponent` an `@container_component` makes: placeholders
become stackhop's, types become the IR's, and nothing of KFP is needed at run time.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from stackhop.core.containers import (
    ComponentParam,
    Concat,
    ContainerComponent,
    ContainerSpec,
    IfPresent,
    InputPath,
    InputUri,
    InputValue,
    OutputPath,
    OutputUri,
)
from stackhop.core.ir import ARTIFACT_TYPES
from stackhop.core.tracing import Task
from stackhop.core.yaml_files import Located, load_file, load_text
from stackhop.errors import ConfigError

SCALARS = ("str", "int", "float", "bool", "list", "dict")

V1_TYPES = {"String": "str", "Integer": "int", "Float": "float", "Boolean": "bool", "Bool": "bool",
            "JsonArray": "list", "List": "list", "JsonObject": "dict", "Dict": "dict",
            "str": "str", "int": "int", "float": "float", "bool": "bool", "list": "list", "dict": "dict"}
V2_PARAMETER_TYPES = {"STRING": "str", "NUMBER_INTEGER": "int", "NUMBER_DOUBLE": "float", "BOOLEAN": "bool",
                      "LIST": "list", "STRUCT": "dict"}
V1_PLACEHOLDERS = {"inputValue": InputValue, "inputPath": InputPath, "inputUri": InputUri,
                   "outputPath": OutputPath, "outputUri": OutputUri}
_V2_TOKEN = re.compile(r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^'\]]+)'\](?:\.(path|uri|output_file))?\}\}")
_STEP_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_MAX_ITEMS = 1_000
MAX_BYTES = 4 * 1024 * 1024


class LoadedComponent(ContainerComponent):
    """A component read from a file: called like a step, exported back as it was read."""

    def __init__(self, name: str, params: list[ComponentParam], spec: ContainerSpec, *, description: str = "",
                 display_name: str | None = None, source: str = ""):
        self.fn = None
        self.name = name
        self.display_name = display_name or name
        self.description = description
        self.source = source
        self.__doc__ = description or None
        self._params = params
        self._spec = spec

    def __call__(self, *args: Any, **kwargs: Any) -> Task:
        task = super().__call__(*args, **kwargs)
        if self.display_name != self.name:
            task.set_display_name(self.display_name)
        return task

    def __repr__(self) -> str:
        return f"<component {self.name} from {self.source or 'text'}>"


def load_component(path: str | Path) -> LoadedComponent:
    """A component from a KFP component file (v1 `component.yaml`, or a v2 document kfp compiled)."""
    if not isinstance(path, (str, Path)):
        raise ConfigError(f"load_component takes the path of a component YAML file, got {type(path).__name__} {path!r}.")
    path = _located(path, sys._getframe(1).f_globals.get("__file__"))
    try:
        size = Path(path).stat().st_size
    except OSError:
        size = 0  # the loader says why it cannot be read
    if size > MAX_BYTES:
        raise ConfigError(f"{path}: the file is {size:,} bytes, more than a component holds ({MAX_BYTES:,}); "
                          "load the component's own YAML file.")
    located = load_file(path)
    assert isinstance(located, Located)
    return _component(located, str(path), Path(path).stem)


def _located(path: str | Path, caller: str | None) -> str | Path:
    """A relative path as the user meant it: from the working directory, else beside the calling module,
    else from the root of the shipped code, which is where a step process far from that directory finds it."""
    if Path(path).is_absolute() or Path(path).exists():
        return path
    for base in (os.path.dirname(caller) if caller else None, os.environ.get("STACKHOP_CODE_ROOT")):
        if base and Path(base, path).exists():
            return Path(base, path)
    return path


def load_component_from_text(text: str | bytes) -> LoadedComponent:
    """A component from the text of a KFP component file."""
    if not isinstance(text, (str, bytes)):
        raise ConfigError(f"load_component_from_text takes the YAML text of a component, got {type(text).__name__}.")
    if len(text) > MAX_BYTES:
        raise ConfigError(f"<component text>: the text is {len(text):,} characters, more than a component holds "
                          f"({MAX_BYTES:,}); pass the component's own YAML.")
    located = load_text(text, "<component text>")
    assert isinstance(located, Located)
    return _component(located, "<component text>", None)


class _Reader:
    """Where a value came from, for sentences that name the file, the line and the field."""

    def __init__(self, located: Located, where: str):
        self.located, self.where = located, where

    def fail(self, loc: tuple[Any, ...], problem: str, fix: str) -> ConfigError:
        return ConfigError(f"{self.where}:{self.located.line(*loc)}: {_dotted(loc) or 'the document'} {problem}; {fix}.")

    def mapping(self, loc: tuple[Any, ...], value: Any, allowed: tuple[str, ...], required: tuple[str, ...] = ()
                ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(loc, f"must be a mapping, not {_kind(value)}", f"write it as keys: {', '.join(allowed)}")
        for key in value:
            if key not in allowed:
                raise self.fail(loc + (key,), "is not a field this format has",
                                f"use {', '.join(allowed)}" + _did_you_mean(str(key), allowed))
        for key in required:
            if key not in value:
                raise self.fail(loc, f"has no {key!r}", f"add {key}: ...")
        return value

    def text(self, loc: tuple[Any, ...], value: Any, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(loc, f"must be {what}, not {_kind(value)}", f"write {what}")
        if "\n" in value.strip() and what != "text":
            raise self.fail(loc, "spans several lines", f"write {what} on one line")
        return value

    def items(self, loc: tuple[Any, ...], value: Any, what: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(loc, f"must be a list of {what}, not {_kind(value)}", "write it as [..] or one `- ` item a line")
        if len(value) > _MAX_ITEMS:
            raise self.fail(loc, f"holds {len(value):,} items", f"a component keeps under {_MAX_ITEMS:,}")
        return value


def _component(located: Located, where: str, stem: str | None) -> LoadedComponent:
    doc = located.data
    r = _Reader(located, where)
    if not isinstance(doc, dict):
        raise r.fail((), f"is {_kind(doc)}, not a component",
                     "a KFP component file is a mapping with name, inputs, outputs and implementation.container")
    if "deploymentSpec" in doc or "pipelineInfo" in doc or "root" in doc:
        return _v2(r, doc, where)
    return _v1(r, doc, where, stem)


# ---------------------------------------------------------------------------- KFP v1 component YAML


def _v1(r: _Reader, doc: dict[str, Any], where: str, stem: str | None) -> LoadedComponent:
    r.mapping((), doc, ("name", "description", "metadata", "inputs", "outputs", "implementation"), ("implementation",))
    raw_name = r.text(("name",), doc["name"], "the component's name") if "name" in doc else stem
    if raw_name is None:
        raise r.fail((), "has no 'name'", "add name: <component name>")
    name = _step_name(r, ("name",), raw_name)
    description = r.text(("description",), doc["description"], "text") if doc.get("description") is not None else ""
    impl = r.mapping(("implementation",), doc["implementation"], ("container", "graph"))
    if "graph" in impl:
        raise r.fail(("implementation", "graph"), "is a graph component (a pipeline of other components)",
                     "load each of its components, and call them from a @pipeline")
    if "container" not in impl:
        raise r.fail(("implementation",), "has no 'container'", "add implementation.container with image and command")
    c_loc = ("implementation", "container")
    container = r.mapping(c_loc, impl["container"], ("image", "command", "args", "env", "fileOutputs"), ("image",))
    for unsupported, fix in (("env", "set the variables on the task with .set_env(NAME=value)"),
                             ("fileOutputs", "write the outputs with {outputPath: name} placeholders")):
        if unsupported in container:
            raise r.fail(c_loc + (unsupported,), "is not supported by stackhop", fix)
    image = r.text(c_loc + ("image",), container["image"], "an image reference")

    declared_in: dict[str, tuple[str, Any, tuple[Any, ...]]] = {}  # file name -> (python name, entry, loc)
    for i, entry in enumerate(r.items(("inputs",), doc.get("inputs") or [], "inputs")):
        loc = ("inputs", i)
        entry = r.mapping(loc, entry, ("name", "type", "default", "optional", "description", "annotations"), ("name",))
        _declare(r, declared_in, loc, entry)
    declared_out: dict[str, tuple[str, Any, tuple[Any, ...]]] = {}
    for i, entry in enumerate(r.items(("outputs",), doc.get("outputs") or [], "outputs")):
        loc = ("outputs", i)
        entry = r.mapping(loc, entry, ("name", "type", "description", "annotations"), ("name",))
        _declare(r, declared_out, loc, entry, others=declared_in)

    uses: dict[str, set[str]] = {}
    parts = {}
    for field in ("command", "args"):
        value = container.get(field) or []
        parts[field] = [_v1_arg(r, c_loc + (field, i), item, declared_in, declared_out, uses, 0)
                        for i, item in enumerate(r.items(c_loc + (field,), value, "strings and placeholders"))]

    params: list[ComponentParam] = []
    for key, (py, entry, loc) in declared_in.items():
        how = uses.get(f"in:{key}", set())
        kind = _v1_type(r, loc, entry.get("type"), artifact_if_untyped=bool(how & {"input_path", "input_uri"}))
        optional = _flag(r, loc + ("optional",), entry.get("optional", False))
        has_default = "default" in entry and entry["default"] is not None
        default = _v1_default(r, loc + ("default",), kind, entry["default"]) if has_default else None
        if has_default and kind not in SCALARS:
            raise r.fail(loc + ("default",), f"is a default for {kind} input {key!r}, and artifacts have none",
                         "remove the default, or mark the input optional: true")
        params.append(ComponentParam(py, kind, "in", default, has_default, optional or has_default))
    for key, (py, entry, loc) in declared_out.items():
        params.append(ComponentParam(py, _v1_type(r, loc, entry.get("type"), artifact_if_untyped=True), "out"))
    shown = raw_name if raw_name != name else None
    return LoadedComponent(name, params, ContainerSpec(image, parts["command"], parts["args"]),
                           description=description, display_name=shown, source=where)


def _declare(r: _Reader, pool: dict[str, tuple[str, Any, tuple[Any, ...]]], loc: tuple[Any, ...], entry: dict[str, Any],
             others: dict[str, tuple[str, Any, tuple[Any, ...]]] | None = None) -> None:
    key = r.text(loc + ("name",), entry["name"], "a name")
    py = _python_name(r, loc + ("name",), key)
    for existing, (other_py, _e, other_loc) in [*pool.items(), *((others or {}).items())]:
        if existing == key or other_py == py:
            raise r.fail(loc + ("name",), f"{key!r} is the name of {_dotted(other_loc)} too (as an argument: {py!r})",
                         "give every input and output its own name")
    pool[key] = (py, entry, loc)


def _v1_type(r: _Reader, loc: tuple[Any, ...], value: Any, *, artifact_if_untyped: bool) -> str:
    if value is None:
        return "Artifact" if artifact_if_untyped else "str"
    if isinstance(value, dict) and len(value) == 1:  # a typed type, e.g. {GCSPath: {data_type: CSV}}
        value = next(iter(value))
    if not isinstance(value, str) or not value.strip():
        raise r.fail(loc + ("type",), f"must be a type name, not {_kind(value)}",
                     "write String, Integer, Float, Boolean, JsonArray, JsonObject or an artifact type such as Dataset")
    value = value.strip()
    return V1_TYPES.get(value) or (value if value in ARTIFACT_TYPES else "Artifact")


def _v1_default(r: _Reader, loc: tuple[Any, ...], kind: str, value: Any) -> Any:
    """v1 files write defaults as text ('3', 'True', '[1, 2]'); YAML may also have typed them."""
    try:
        if kind == "str":
            if isinstance(value, (dict, list)):
                raise ValueError
            return value if isinstance(value, str) else json.dumps(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            raise ValueError
        parsed = json.loads(value) if isinstance(value, str) else value
        if kind == "int" and isinstance(parsed, int) and not isinstance(parsed, bool):
            return parsed
        if kind == "float" and isinstance(parsed, (int, float)) and not isinstance(parsed, bool):
            return float(parsed)
        if (kind == "list" and isinstance(parsed, list)) or (kind == "dict" and isinstance(parsed, dict)):
            return parsed
        raise ValueError
    except (ValueError, RecursionError):
        raise r.fail(loc, f"is {value!r}, which is not a {kind}",
                     f"write a {kind} default, or change the input's type") from None


def _flag(r: _Reader, loc: tuple[Any, ...], value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise r.fail(loc, f"must be true or false, not {_kind(value)}", "write optional: true")


def _v1_arg(r: _Reader, loc: tuple[Any, ...], item: Any, ins: dict[str, Any], outs: dict[str, Any],
            uses: dict[str, set[str]], depth: int) -> Any:
    if depth > 16:
        raise r.fail(loc, "nests concat and if more than 16 levels deep", "flatten the argument")
    if isinstance(item, str):
        if "{{stackhop:" in item:
            raise r.fail(loc, "holds stackhop's own placeholder syntax as text", "write a placeholder mapping instead")
        return item
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return str(item)
    allowed = (*V1_PLACEHOLDERS, "concat", "if")
    if not isinstance(item, dict) or len(item) != 1:
        raise r.fail(loc, f"is {_kind(item)}", "write a string or one placeholder mapping such as {inputValue: name}, "
                                               "{outputPath: name}, {concat: [...]} or {if: {cond: ..., then: [...]}}")
    (key, value), = item.items()
    if key in V1_PLACEHOLDERS:
        output = key.startswith("output")
        pool = outs if output else ins
        name = r.text(loc + (key,), value, "the name of a declared " + ("output" if output else "input"))
        if name not in pool:
            declared = ", ".join(pool) or "none"
            raise r.fail(loc + (key,), f"names {name!r}, which is not a declared {'output' if output else 'input'} "
                                       f"(declared: {declared})", f"declare it under {'outputs' if output else 'inputs'}")
        placeholder = V1_PLACEHOLDERS[key](pool[name][0])
        uses.setdefault(("out:" if output else "in:") + name, set()).add(placeholder.kind)
        return placeholder
    if key == "concat":
        return Concat([_v1_arg(r, loc + ("concat", i), x, ins, outs, uses, depth + 1)
                       for i, x in enumerate(r.items(loc + ("concat",), value, "strings and placeholders"))])
    if key == "if":
        body = r.mapping(loc + ("if",), value, ("cond", "then", "else"), ("cond",))
        cond = r.mapping(loc + ("if", "cond"), body["cond"], ("isPresent",), ("isPresent",)) if isinstance(
            body["cond"], dict) else None
        if cond is None:
            raise r.fail(loc + ("if", "cond"), "is not {isPresent: <input>}",
                         "stackhop resolves `if` only on whether an input is given; write cond: {isPresent: name}")
        name = r.text(loc + ("if", "cond", "isPresent"), cond["isPresent"], "the name of a declared input")
        if name not in ins:
            raise r.fail(loc + ("if", "cond", "isPresent"), f"names {name!r}, which is not a declared input "
                                                            f"(declared: {', '.join(ins) or 'none'})",
                         "declare it under inputs, with optional: true")
        branches = []
        for branch in ("then", "else"):
            raw = body.get(branch) or []
            raw = raw if isinstance(raw, list) else [raw]
            branches.append([_v1_arg(r, loc + ("if", branch, i), x, ins, outs, uses, depth + 1)
                             for i, x in enumerate(r.items(loc + ("if", branch), raw, "strings and placeholders"))])
        return IfPresent(ins[name][0], branches[0], branches[1])
    raise r.fail(loc + (key,), "is not a placeholder KFP component files have",
                 f"use one of {', '.join(allowed)}" + _did_you_mean(str(key), allowed))


# ---------------------------------------------------------------------------- KFP v2 (a compiled component)


def _v2(r: _Reader, doc: dict[str, Any], where: str) -> LoadedComponent:
    r.mapping((), doc, ("components", "deploymentSpec", "pipelineInfo", "root", "schemaVersion", "sdkVersion",
                        "defaultPipelineRoot", "platforms"), ("components", "deploymentSpec", "root"))
    components = doc["components"]
    if not isinstance(components, dict):
        raise r.fail(("components",), f"must be a mapping of component name -> component, not {_kind(components)}",
                     "load the document kfp's compiler wrote, unedited")
    if len(components) != 1:
        raise r.fail(("components",), f"holds {len(components)} components",
                     "load_component reads one component; compile a single @dsl.container_component with kfp")
    (comp_key, comp), = components.items()
    c_loc: tuple[Any, ...] = ("components", comp_key)
    comp = r.mapping(c_loc, comp, ("executorLabel", "inputDefinitions", "outputDefinitions", "dag"))
    if "dag" in comp or "executorLabel" not in comp:
        raise r.fail(c_loc, "is a pipeline, not a container component", "compile a single @dsl.container_component")
    executors = r.mapping(("deploymentSpec",), doc["deploymentSpec"], ("executors",), ("executors",))["executors"]
    label = comp["executorLabel"]
    if not isinstance(executors, dict) or label not in executors:
        raise r.fail(("deploymentSpec", "executors"), f"has no executor {label!r}, which {_dotted(c_loc)} names",
                     "load the document kfp's compiler wrote, unedited")
    e_loc = ("deploymentSpec", "executors", label)
    executor = r.mapping(e_loc, executors[label], ("container", "importer", "resolver"))
    if "container" not in executor:
        raise r.fail(e_loc, "is not a container executor (an importer or resolver)", "load a container component")
    k_loc = e_loc + ("container",)
    container = r.mapping(k_loc, executor["container"], ("image", "command", "args", "env", "resources"), ("image",))
    for unsupported, fix in (("env", "set the variables on the task with .set_env(NAME=value)"),
                             ("resources", "set them on the task with .set_resources(...)")):
        if unsupported in container:
            raise r.fail(k_loc + (unsupported,), "is not supported by stackhop", fix)
    image = r.text(k_loc + ("image",), container["image"], "an image reference")

    params: list[ComponentParam] = []
    names: dict[tuple[str, str, str], str] = {}  # (inputs|outputs, parameters|artifacts, name) -> python name
    seen: dict[str, tuple[Any, ...]] = {}
    for direction in ("inputDefinitions", "outputDefinitions"):
        d_loc = c_loc + (direction,)
        defs = r.mapping(d_loc, comp.get(direction) or {}, ("parameters", "artifacts"))
        for group in ("parameters", "artifacts"):
            g_loc = d_loc + (group,)
            entries = defs.get(group) or {}
            if not isinstance(entries, dict):
                raise r.fail(g_loc, f"must be a mapping of name -> definition, not {_kind(entries)}",
                             "load the document kfp's compiler wrote, unedited")
            for key, entry in entries.items():
                loc = g_loc + (key,)
                key = r.text(loc, key, "a name")
                py = _python_name(r, loc, key)
                if py in seen:
                    raise r.fail(loc, f"is named like {_dotted(seen[py])}", "give every input and output its own name")
                seen[py] = loc
                names[("inputs" if direction == "inputDefinitions" else "outputs", group, key)] = py
                params.append(_v2_param(r, loc, py, group, direction == "outputDefinitions", entry))

    parts = {field: [_v2_arg(r, k_loc + (field, i), item, names, 0)
                     for i, item in enumerate(r.items(k_loc + (field,), container.get(field) or [], "strings"))]
             for field in ("command", "args")}
    info = doc.get("pipelineInfo") if isinstance(doc.get("pipelineInfo"), dict) else {}
    raw_name = info.get("name") or comp_key.removeprefix("comp-")
    name = _step_name(r, ("pipelineInfo", "name"), str(raw_name))
    description = info.get("description") if isinstance(info.get("description"), str) else ""
    return LoadedComponent(name, params, ContainerSpec(image, parts["command"], parts["args"]),
                           description=description, display_name=None if raw_name == name else str(raw_name),
                           source=where)


def _v2_param(r: _Reader, loc: tuple[Any, ...], py: str, group: str, output: bool, entry: Any) -> ComponentParam:
    if group == "parameters":
        entry = r.mapping(loc, entry, ("parameterType", "defaultValue", "isOptional", "description"), ("parameterType",))
        kind = V2_PARAMETER_TYPES.get(entry["parameterType"]) if isinstance(entry["parameterType"], str) else None
        if kind is None:
            raise r.fail(loc + ("parameterType",), f"is {entry['parameterType']!r}",
                         f"use one of {', '.join(V2_PARAMETER_TYPES)}")
    else:
        entry = r.mapping(loc, entry, ("artifactType", "isOptional", "isArtifactList", "description"), ("artifactType",))
        if entry.get("isArtifactList"):
            raise r.fail(loc + ("isArtifactList",), "is a list of artifacts", "take one artifact per input")
        atype = r.mapping(loc + ("artifactType",), entry["artifactType"],
                          ("schemaTitle", "schemaVersion", "instanceSchema"), ("schemaTitle",))
        title = r.text(loc + ("artifactType", "schemaTitle"), atype["schemaTitle"], "a schema title like system.Dataset")
        short = title.removeprefix("system.")
        kind = short if short in ARTIFACT_TYPES else "Artifact"
    if output:
        return ComponentParam(py, kind, "out")
    optional = _flag(r, loc + ("isOptional",), entry.get("isOptional", False))
    has_default = entry.get("defaultValue") is not None
    default = _v2_default(r, loc + ("defaultValue",), kind, entry.get("defaultValue")) if has_default else None
    return ComponentParam(py, kind, "in", default, has_default, optional or has_default)


def _v2_default(r: _Reader, loc: tuple[Any, ...], kind: str, value: Any) -> Any:
    """PipelineSpec stores every number as a double (3 is 3.0); give an integer input its int back."""
    ok = {"str": isinstance(value, str), "bool": isinstance(value, bool), "list": isinstance(value, list),
          "dict": isinstance(value, dict),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool),
          "int": isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer()}
    if not ok.get(kind, False):
        raise r.fail(loc, f"is {value!r}, which is not a {kind}", f"write a {kind} default, or change the parameterType")
    return int(value) if kind == "int" else float(value) if kind == "float" else value


def _v2_arg(r: _Reader, loc: tuple[Any, ...], item: Any, names: dict[tuple[str, str, str], str], depth: int) -> Any:
    if depth > 16:
        raise r.fail(loc, "nests Concat and IfPresent more than 16 levels deep", "flatten the argument")
    if isinstance(item, str) and item.lstrip().startswith("{") and ('"Concat"' in item or '"IfPresent"' in item):
        try:
            item = json.loads(item)
        except (ValueError, RecursionError):
            raise r.fail(loc, "looks like a Concat or IfPresent placeholder but is not valid JSON",
                         "load the document kfp's compiler wrote, unedited") from None
    if isinstance(item, str):
        return _v2_text(r, loc, item, names)
    if isinstance(item, dict) and len(item) == 1 and "Concat" in item:
        parts = item["Concat"]
        return Concat([_v2_arg(r, loc, x, names, depth + 1) for x in r.items(loc, parts, "strings")])
    if isinstance(item, dict) and len(item) == 1 and "IfPresent" in item:
        body = item["IfPresent"]
        if not isinstance(body, dict) or not isinstance(body.get("InputName"), str) or set(body) - {"InputName", "Then", "Else"}:
            raise r.fail(loc, "is an IfPresent without a valid InputName/Then/Else", "load the document kfp wrote, unedited")
        key = body["InputName"]
        py = names.get(("inputs", "parameters", key)) or names.get(("inputs", "artifacts", key))
        if py is None:
            raise r.fail(loc, f"asks whether input {key!r} is present, which the component does not declare",
                         "declare it in inputDefinitions")
        branches = []
        for branch in ("Then", "Else"):
            raw = body.get(branch) or []
            raw = raw if isinstance(raw, list) else [raw]
            branches.append([_v2_arg(r, loc, x, names, depth + 1) for x in r.items(loc, raw, "strings")])
        return IfPresent(py, branches[0], branches[1])
    if isinstance(item, (int, float)) and not isinstance(item, bool):
        return str(item)
    raise r.fail(loc, f"is {_kind(item)}", "write a string, or a Concat or IfPresent placeholder")


def _v2_text(r: _Reader, loc: tuple[Any, ...], text: str, names: dict[tuple[str, str, str], str]) -> Any:
    parts: list[Any] = []
    at = 0
    for m in _V2_TOKEN.finditer(text):
        if m.start() > at:
            parts.append(text[at:m.start()])
        parts.append(_v2_placeholder(r, loc, m, names))
        at = m.end()
    if at < len(text):
        parts.append(text[at:])
    for part in parts:
        if isinstance(part, str) and "{{$" in part:
            token = part[part.index("{{$"):][:60]
            raise r.fail(loc, f"uses the placeholder {token!r}, which stackhop cannot fill",
                         "a container component's command may use inputs.parameters['x'], inputs.artifacts['x'].path/.uri "
                         "and outputs.parameters['x'].output_file or outputs.artifacts['x'].path/.uri (a KFP Python "
                         "component needs kfp inside its image: write it as a @step instead)")
        if isinstance(part, str) and "{{stackhop:" in part:
            raise r.fail(loc, "holds stackhop's own placeholder syntax as text", "write a KFP placeholder instead")
    if not parts:
        return ""
    return parts[0] if len(parts) == 1 else Concat(parts)


def _v2_placeholder(r: _Reader, loc: tuple[Any, ...], m: re.Match[str], names: dict[tuple[str, str, str], str]) -> Any:
    direction, group, key, attr = m.groups()
    py = names.get((direction, group, key))
    if py is None:
        raise r.fail(loc, f"uses {m.group(0)!r}, which names no declared {direction[:-1]} {group[:-1]} {key!r}",
                     f"declare it in {'inputDefinitions' if direction == 'inputs' else 'outputDefinitions'}")
    table = {("inputs", "parameters", None): InputValue, ("inputs", "artifacts", "path"): InputPath,
             ("inputs", "artifacts", "uri"): InputUri, ("outputs", "parameters", "output_file"): OutputPath,
             ("outputs", "artifacts", "path"): OutputPath, ("outputs", "artifacts", "uri"): OutputUri}
    cls = table.get((direction, group, attr))
    if cls is None:
        raise r.fail(loc, f"uses {m.group(0)!r}, which stackhop cannot fill",
                     "use a parameter's value or output_file, or an artifact's .path or .uri")
    return cls(py)


# ---------------------------------------------------------------------------- names


def _python_name(r: _Reader, loc: tuple[Any, ...], name: str) -> str:
    """File names ("Input data") become argument names ("input_data") the way kfp's own loader makes them."""
    py = re.sub(r"[^_0-9a-z]+", "_", name.lower()).strip("_")
    if py and py[0].isdigit():
        py = "n" + py
    if not py or not py.isidentifier():
        raise r.fail(loc, f"{name!r} cannot be an argument name", "name it with letters, digits and underscores")
    return py


def _step_name(r: _Reader, loc: tuple[Any, ...], name: str) -> str:
    if _STEP_NAME.match(name):
        return name
    step = re.sub(r"[^A-Za-z0-9_-]+", "-", name.strip()).strip("-_").lower()[:63].rstrip("-_")
    if not _STEP_NAME.match(step):
        raise r.fail(loc, f"{name!r} cannot name a step", "start it with a letter, e.g. name: train-model")
    return step


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    shown = repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 40 else shown[:37] + '...'}"


def _did_you_mean(key: str, allowed: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
