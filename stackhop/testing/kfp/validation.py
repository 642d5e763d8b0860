"""What a create-run request's pipeline must satisfy before the API server accepts it.

Mirrors the checks ml-pipeline 2.x makes when it turns a run's `pipeline_spec` into a template
(`template/v2_template.go`) and compiles it for Argo (`v2/compiler`), plus the pipeline-input
check (`validatePipelineJobInputs`), with the server's wording where it has one. A few checks
go further than the server (it would fail the run later, or drop the content silently); the
package docstring lists them. Protobuf classes come from kfp-pipeline-spec, imported lazily so
that importing this package does not need it (`FakeKFP.start` checks it is there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import errors, kubernetes_config

__all__ = ["SCHEMA_VERSION", "PipelineSource", "check_pipeline_source", "check_parameters"]

#: The only schemaVersion the API server accepts (every 2.x release through 2.17 refuses 2.0.0).
SCHEMA_VERSION = "2.1.0"
# The server's (unanchored) name check: it only fails a name with no lowercase letter or digit.
_NAME_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_WRAPPER_KEYS = {"pipeline_spec", "platform_spec"}


@dataclass(frozen=True)
class PipelineSource:
    """A checked pipeline: the parsed PipelineSpec, and each task's component (for scripting tasks)."""

    spec: Any
    platform_spec: Any | None
    #: task name (a key of root's or any sub-DAG's `dag.tasks`) -> its ComponentSpec
    tasks: Mapping[str, Any] = field(default_factory=dict)

    def output_artifacts(self, task: str) -> list[str]:
        """Names of the output artifacts the task's component declares."""
        return sorted(self.tasks[task].output_definitions.artifacts)


def _pb2() -> Any:
    from kfp.pipeline_spec import pipeline_spec_pb2

    return pipeline_spec_pb2


def _parse_error(exc: Exception) -> str:
    """json_format's first line, without the list of available fields it appends."""
    return str(exc).splitlines()[0].rstrip(".")


def check_pipeline_source(pipeline_spec: Any) -> PipelineSource:
    """Parse and check a Run's `pipeline_spec`: a bare PipelineSpec, or {pipeline_spec, platform_spec}."""
    if not isinstance(pipeline_spec, dict):
        raise errors.invalid("A run's pipeline_spec must be a JSON object.")
    if not pipeline_spec:
        raise errors.invalid("Failed to fetch a template with an empty pipeline spec manifest.")
    if "pipeline_spec" in pipeline_spec:
        extra = sorted(set(pipeline_spec) - _WRAPPER_KEYS)
        if extra:
            raise errors.invalid(
                "A pipeline_spec wrapping pipeline_spec and platform_spec may hold nothing else, "
                f"got {', '.join(extra)}."
            )
        document, platform = pipeline_spec["pipeline_spec"], pipeline_spec.get("platform_spec")
    else:
        document, platform = pipeline_spec, None
    spec = _parse_pipeline_spec(document)
    tasks = _check_structure(spec)
    platform_spec = None if platform is None else _parse_platform_spec(platform, spec)
    return PipelineSource(spec, platform_spec, tasks)


def _parse_pipeline_spec(document: Any) -> Any:
    from google.protobuf import json_format

    pb2 = _pb2()
    if not isinstance(document, dict):
        raise errors.invalid("invalid v2 pipeline spec: the pipeline spec must be a JSON object.")
    try:
        spec = json_format.ParseDict(document, pb2.PipelineSpec())
    except json_format.ParseError as exc:
        raise errors.invalid(f"invalid v2 pipeline spec: {_parse_error(exc)}.") from None
    if spec.schema_version != SCHEMA_VERSION:
        raise errors.invalid(
            f"KFP only supports schema version {SCHEMA_VERSION}, but the pipeline spec has version "
            f"{spec.schema_version or '(none)'}."
        )
    name = spec.pipeline_info.name
    if not name:
        raise errors.invalid("invalid v2 pipeline spec: name is empty.")
    if not _NAME_PATTERN.search(name):
        raise errors.invalid(
            "invalid v2 pipeline spec: name should consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character."
        )
    if not spec.HasField("root"):
        raise errors.invalid("invalid v2 pipeline spec: root component is empty.")
    return spec


def _deployment_config(spec: Any) -> Any:
    """deploymentSpec as PipelineDeploymentConfig, unknown fields ignored as the backend compiler does."""
    from google.protobuf import json_format

    try:
        document = json_format.MessageToDict(spec.deployment_spec)
        return json_format.ParseDict(document, _pb2().PipelineDeploymentConfig(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise errors.invalid(f"invalid v2 pipeline spec: deploymentSpec: {_parse_error(exc)}.") from None


def _check_structure(spec: Any) -> dict[str, Any]:
    """Walk the DAGs from root as the backend compiler does; return every task's component."""
    executors = _deployment_config(spec).executors
    components = spec.components
    tasks: dict[str, Any] = {}
    visited: set[str] = set()

    def visit(name: str, component: Any) -> None:
        if name in visited:
            return
        visited.add(name)
        kind = component.WhichOneof("implementation")
        if kind == "executor_label":
            label = component.executor_label
            if label not in executors:
                raise errors.invalid(
                    f'Component "{name}" uses executor "{label}", which deploymentSpec.executors does not define.'
                )
            if executors[label].WhichOneof("spec") not in ("container", "importer"):
                raise errors.invalid(
                    f'Executor "{label}" is neither a container nor an importer, which KFP cannot run.'
                )
            return
        if kind != "dag":
            raise errors.invalid(f'Component "{name}" has neither an executorLabel nor a dag.')
        dag = component.dag
        for task_name in sorted(dag.tasks):
            task = dag.tasks[task_name]
            ref = task.component_ref.name
            if not ref:
                raise errors.invalid(f'Task "{task_name}" of component "{name}" has no componentRef.')
            if ref not in components:
                raise errors.invalid(
                    f'Task "{task_name}" refers to component "{ref}", which components does not define.'
                )
            for other in _upstream(task):
                if other not in dag.tasks:
                    raise errors.invalid(
                        f'Task "{task_name}" of component "{name}" depends on "{other}", '
                        "which is not a task of the same DAG."
                    )
            tasks.setdefault(task_name, components[ref])
        for producer in _dag_output_producers(dag):
            if producer not in dag.tasks:
                raise errors.invalid(
                    f'An output of component "{name}" comes from "{producer}", which is not a task of its DAG.'
                )
        _check_acyclic(name, {task_name: _upstream(dag.tasks[task_name]) for task_name in dag.tasks})
        for task_name in sorted(dag.tasks):
            ref = dag.tasks[task_name].component_ref.name
            visit(ref, components[ref])

    visit("root", spec.root)
    return tasks


def _upstream(task: Any) -> list[str]:
    """Tasks this one names: dependentTasks and the producers of its inputs."""
    names = list(task.dependent_tasks)
    for parameter in task.inputs.parameters.values():
        if parameter.HasField("task_output_parameter"):
            names.append(parameter.task_output_parameter.producer_task)
        elif parameter.HasField("task_final_status"):
            names.append(parameter.task_final_status.producer_task)
    for artifact in task.inputs.artifacts.values():
        if artifact.HasField("task_output_artifact"):
            names.append(artifact.task_output_artifact.producer_task)
    return list(dict.fromkeys(names))


def _dag_output_producers(dag: Any) -> list[str]:
    names: list[str] = []
    for parameter in dag.outputs.parameters.values():
        if parameter.HasField("value_from_parameter"):
            names.append(parameter.value_from_parameter.producer_subtask)
        for selector in parameter.value_from_oneof.parameter_selectors:
            names.append(selector.producer_subtask)
    for artifact in dag.outputs.artifacts.values():
        names.extend(selector.producer_subtask for selector in artifact.artifact_selectors)
    return names


def _check_acyclic(component: str, upstream: Mapping[str, list[str]]) -> None:
    """Argo refuses a DAG whose dependencies loop; say which tasks form the loop."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(task: str, path: list[str]) -> None:
        state[task] = 1
        path = path + [task]
        for other in upstream[task]:
            if state.get(other) == 1:
                loop = path[path.index(other) :] + [other]
                raise errors.invalid(
                    f'Tasks of component "{component}" depend on each other in a cycle: {" -> ".join(loop)}.'
                )
            if state.get(other) is None:
                walk(other, path)
        state[task] = 2

    for task in sorted(upstream):
        if task not in state:
            walk(task, [])


def _parse_platform_spec(platform: Any, spec: Any) -> Any:
    from google.protobuf import json_format

    if not isinstance(platform, dict):
        raise errors.invalid("cannot unmarshal platform specific configs: the platform spec must be a JSON object.")
    try:
        parsed = json_format.ParseDict(platform, _pb2().PlatformSpec())
    except json_format.ParseError as exc:
        raise errors.invalid(f"cannot unmarshal platform specific configs: {_parse_error(exc)}.") from None
    if "kubernetes" not in parsed.platforms:
        return parsed
    executors = set(json_format.MessageToDict(spec.deployment_spec).get("executors", {}))
    config_class = kubernetes_config.executor_config_class()
    for label, config in sorted(parsed.platforms["kubernetes"].deployment_spec.executors.items()):
        if label not in executors:
            raise errors.invalid(
                f'The kubernetes platform spec configures executor "{label}", which the pipeline spec does not define.'
            )
        try:
            json_format.ParseDict(json_format.MessageToDict(config), config_class())
        except json_format.ParseError as exc:
            raise errors.invalid(f'Invalid kubernetes config for executor "{label}": {_parse_error(exc)}.') from None
    return parsed


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ParameterType -> (accepts the JSON value, what the server says when it does not)
_TYPE_CHECKS: dict[int, tuple[Any, str]] = {
    1: (_is_number, "requires type double or integer, but the parameter value is not of number value type"),
    2: (_is_number, "requires type double or integer, but the parameter value is not of number value type"),
    3: (lambda v: isinstance(v, str), "requires type string, but the input parameter is not of string value type"),
    4: (lambda v: isinstance(v, bool), "requires type bool, but the input parameter is not of bool value type"),
    5: (lambda v: isinstance(v, list), "requires type list, but the input parameter is not of list value type"),
    6: (lambda v: isinstance(v, dict), "requires type struct, but the input parameter is not of struct value type"),
}


def check_parameters(spec: Any, parameters: Mapping[str, Any]) -> None:
    """runtime_config.parameters against root's inputDefinitions, as validatePipelineJobInputs does."""
    declared = spec.root.input_definitions.parameters
    for name in sorted(declared):
        parameter = declared[name]
        if name not in parameters:
            if not parameter.is_optional and not parameter.HasField("default_value"):
                raise errors.invalid(
                    f"parameter {name} is not optional, yet has neither default value nor user provided value."
                )
            continue
        kind = parameter.parameter_type
        if kind == 0:
            raise errors.invalid(f"input parameter {name} has unspecified type.")
        if kind == 7:
            raise errors.invalid(
                f"input parameter {name} requires type TASK_FINAL_STATUS, which is invalid for root component."
            )
        if kind not in _TYPE_CHECKS:
            raise errors.invalid(f"input parameter {name} requires type unknown.")
        accepts, complaint = _TYPE_CHECKS[kind]
        if not accepts(parameters[name]):
            raise errors.invalid(f"input parameter {name} {complaint}.")
    extra = sorted(set(parameters) - set(declared))
    if extra:
        raise errors.invalid(f"parameter(s) provided are not required by pipeline: {', '.join(extra)}.")
