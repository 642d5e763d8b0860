"""The checks SageMaker applies to a pipeline definition when a pipeline is created or updated.

moto stores whatever text it is given, so a definition that the real service would refuse (bad
JSON, a step name with a dot, a `DependsOn` naming a step that does not exist, a `Get` reading a
step that is not there) would pass our tests and fail the first real submission. These checks
close that gap for the structural rules; they do not replace the published schema, which the
adapter's own tests apply to what it compiles.

Pure functions over text and dicts: no moto, no botocore, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "MAX_INLINE_DEFINITION_CHARS",
    "DefinitionError",
    "check_definition",
    "parameter_names",
    "step_names",
]

#: `PipelineDefinition` is a string of at most 1,048,576 characters (botocore's shape, "1 MB" in
#: the docs); larger definitions must go through `PipelineDefinitionS3Location`.
MAX_INLINE_DEFINITION_CHARS = 1_048_576

_STEP_NAME = re.compile(r"[A-Za-z0-9\-_]{1,64}")
# "Steps.Train.Properties.X", "Steps.Prep.ProcessingOutputConfig.Outputs['train']...": the step
# name runs up to the first "." or "[" (neither may appear in a step name).
_STEP_REFERENCE = re.compile(r"Steps\.([^.\[]*)")


class DefinitionError(ValueError):
    """A definition the service would reject; the message is what the caller is told."""


def check_definition(text: str, *, inline: bool) -> dict[str, Any]:
    """Parse `text` and apply SageMaker's structural rules; return the parsed document.

    `inline` is true for `PipelineDefinition` (subject to the 1 MB limit) and false for a
    definition read from `PipelineDefinitionS3Location`.
    """
    if inline and len(text) > MAX_INLINE_DEFINITION_CHARS:
        raise DefinitionError(
            f"PipelineDefinition is {len(text):,} characters; the limit for an inline definition is "
            f"{MAX_INLINE_DEFINITION_CHARS:,}. Upload it to S3 and pass PipelineDefinitionS3Location."
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(f"PipelineDefinition is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DefinitionError("PipelineDefinition must be a JSON object.")
    if not isinstance(document.get("Steps"), list):
        raise DefinitionError("PipelineDefinition must have a 'Steps' list.")

    steps = list(_all_steps(document))
    names: list[str] = []
    for step, _parent in steps:
        name = step.get("Name")
        if not isinstance(name, str) or not _STEP_NAME.fullmatch(name):
            raise DefinitionError(
                f"Step name {name!r} is invalid: step names must match ^[A-Za-z0-9\\-_]{{1,64}}$."
            )
        if name in names:
            raise DefinitionError(f"Step name {name!r} is used by more than one step; step names must be unique.")
        names.append(name)
    known = set(names)

    # Edges of the step graph: explicit DependsOn, data dependencies through Get, and a
    # condition's branch steps on the condition itself. Every target must exist; no cycles.
    edges: dict[str, set[str]] = {name: set() for name in names}
    for step, parent in steps:
        name = step["Name"]
        depends_on = step.get("DependsOn", [])
        if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
            raise DefinitionError(f"Step {name!r}: DependsOn must be a list of step names.")
        for target in depends_on:
            if target not in known:
                raise DefinitionError(f"Step {name!r} DependsOn {target!r}, which is not a step of this pipeline.")
            edges[name].add(target)
        for reference in _step_references(_own_body(step)):
            target = _STEP_REFERENCE.match(reference)
            assert target is not None  # _step_references only yields "Steps." strings
            if target.group(1) not in known:
                raise DefinitionError(
                    f"Step {name!r} reads {{'Get': {reference!r}}}, but {target.group(1)!r} is not a step of this pipeline."
                )
            edges[name].add(target.group(1))
        if parent is not None:
            edges[name].add(parent)
    cycle = _find_cycle(edges)
    if cycle:
        raise DefinitionError("The pipeline's steps depend on each other in a cycle: " + " -> ".join(cycle) + ".")
    return document


def dependency_graph(document: dict[str, Any]) -> dict[str, set[str]]:
    """Step -> the steps that depend on it (DependsOn, Get, or being in its branches), for a checked definition."""
    graph: dict[str, set[str]] = {step["Name"]: set() for step, _ in _all_steps(document)}
    for step, parent in _all_steps(document):
        ups = set(step.get("DependsOn", [])) | ({parent} if parent is not None else set())
        for reference in _step_references(_own_body(step)):
            target = _STEP_REFERENCE.match(reference)
            if target is not None:
                ups.add(target.group(1))
        for up in ups:
            graph.setdefault(up, set()).add(step["Name"])
    return graph


def step_names(document: dict[str, Any]) -> set[str]:
    """Every step name in a (checked) definition, including the branches of condition steps."""
    return {step["Name"] for step, _ in _all_steps(document) if isinstance(step.get("Name"), str)}


def parameter_names(document: dict[str, Any]) -> set[str]:
    """The names of the pipeline parameters a definition declares."""
    parameters = document.get("Parameters") or []
    return {p["Name"] for p in parameters if isinstance(p, dict) and isinstance(p.get("Name"), str)}


def _all_steps(document: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Yield (step, enclosing condition step's name or None), depth first.

    SageMaker nests a condition's branch steps inside it (`Arguments.IfSteps` / `ElseSteps`);
    they share the pipeline's one namespace of step names.
    """

    def walk(steps: Any, parent: str | None) -> Iterator[tuple[dict[str, Any], str | None]]:
        if not isinstance(steps, list):
            raise DefinitionError("Steps, IfSteps and ElseSteps must be lists of step objects.")
        for step in steps:
            if not isinstance(step, dict):
                raise DefinitionError(f"Every step must be a JSON object, not {type(step).__name__}.")
            yield step, parent
            arguments = step.get("Arguments")
            if step.get("Type") == "Condition" and isinstance(arguments, dict):
                name = step.get("Name") if isinstance(step.get("Name"), str) else None
                for branch in ("IfSteps", "ElseSteps"):
                    yield from walk(arguments.get(branch, []), name)

    yield from walk(document["Steps"], None)


def _own_body(step: dict[str, Any]) -> dict[str, Any]:
    """The step without its nested branch steps, whose references belong to them."""
    arguments = step.get("Arguments")
    if step.get("Type") != "Condition" or not isinstance(arguments, dict):
        return step
    own = {k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")}
    return {**step, "Arguments": own}


def _step_references(value: Any) -> Iterator[str]:
    """Every `{"Get": "Steps.…"}` expression anywhere in `value`."""
    if isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            yield get
        for item in value.values():
            yield from _step_references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _step_references(item)


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A dependency cycle as a list of names (first == last), or None.

    Iterative depth-first search: a 1,000-step chain must not hit Python's recursion limit.
    """
    done: set[str] = set()
    for root in sorted(edges):
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        pending: list[list[str]] = [sorted(edges[root])]
        while pending:
            if not pending[-1]:
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                pending.pop()
                continue
            target = pending[-1].pop()
            if target in on_path:
                return path[path.index(target):] + [target]
            if target not in done:
                path.append(target)
                on_path.add(target)
                pending.append(sorted(edges[target]))
    return None
