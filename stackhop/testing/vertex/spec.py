"""The PipelineSpec checks Vertex AI Pipelines applies on create, and the spec's task index.

The spec is parsed strictly with kfp-pipeline-spec's `PipelineSpec` (and its
`PipelineDeploymentConfig` for `deploymentSpec`, a Struct in the spec), then the references
between its parts are resolved the way the service must before it can schedule anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

from google.protobuf import json_format

from .wire import parse_error_text

SCHEMA_VERSIONS = ("2.0.0", "2.1.0")
PIPELINE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,127}$")
ROOT = "root"

# Keys of a PipelineSpec bundled with its PlatformSpec (KFP's "pipeline_spec + platform_spec"
# form, or a PlatformSpec document itself): Vertex takes a bare PipelineSpec only.
_PLATFORM_KEYS = frozenset({"pipelineSpec", "pipeline_spec", "platformSpec", "platform_spec", "platforms"})


def _pb2() -> Any:
    from kfp.pipeline_spec import pipeline_spec_pb2  # a test dependency, imported on first use

    return pipeline_spec_pb2


def check_pipeline_spec(spec: Any) -> list[str]:
    """Why the service would refuse `spec`, one sentence each; empty when it is acceptable."""
    if not isinstance(spec, dict):
        return ["pipelineSpec must be a JSON object holding a PipelineSpec."]
    bundled = sorted(_PLATFORM_KEYS & spec.keys())
    if bundled:
        return [
            f"pipelineSpec carries {', '.join(bundled)}, i.e. a platform spec: Vertex AI Pipelines "
            "accepts a single PipelineSpec document and no platform spec."
        ]
    pb2 = _pb2()
    try:
        json_format.ParseDict(spec, pb2.PipelineSpec())
    except json_format.ParseError as exc:
        return [f"pipelineSpec is not a valid PipelineSpec: {parse_error_text(exc)}."]
    problems: list[str] = []
    version = spec.get("schemaVersion")
    if version not in SCHEMA_VERSIONS:
        problems.append(f"pipelineSpec.schemaVersion {version!r} is not supported; it must be 2.0.0 or 2.1.0.")
    name = spec.get("pipelineInfo", {}).get("name")
    if not name:
        problems.append("pipelineSpec.pipelineInfo.name is required.")
    elif not PIPELINE_NAME.match(name):
        problems.append(
            f"pipelineSpec.pipelineInfo.name {name!r} must be 1-128 lowercase letters, digits or hyphens, "
            "starting with a letter or digit."
        )
    executors, deployment_problems = _executors(spec)
    problems += deployment_problems
    problems += _check_components(spec, executors)
    for dag_name, dag in dags(spec):
        problems += _check_dag(spec, dag_name, dag)
    return problems


def dags(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """("root", root dag), then (component name, dag) for every component implemented by a DAG."""
    if "dag" in spec.get("root", {}):
        yield ROOT, spec["root"]["dag"]
    for name, component in spec.get("components", {}).items():
        if "dag" in component:
            yield name, component["dag"]


def _executors(spec: dict[str, Any]) -> tuple[set[str], list[str]]:
    deployment = spec.get("deploymentSpec")
    if deployment is None:
        return set(), []
    try:
        json_format.ParseDict(deployment, _pb2().PipelineDeploymentConfig())
    except json_format.ParseError as exc:
        return set(), [f"pipelineSpec.deploymentSpec is not a valid PipelineDeploymentConfig: {parse_error_text(exc)}."]
    return set(deployment.get("executors", {})), []


def _check_components(spec: dict[str, Any], executors: set[str]) -> list[str]:
    problems = []
    if "dag" not in spec.get("root", {}):
        problems.append("pipelineSpec.root must be implemented by a DAG.")
    for name, component in spec.get("components", {}).items():
        label = component.get("executorLabel")
        if label is not None and label not in executors:
            problems.append(
                f"Component {name!r} names executor {label!r}, which pipelineSpec.deploymentSpec.executors "
                "does not define."
            )
        elif label is None and "dag" not in component:
            problems.append(f"Component {name!r} has neither an executorLabel nor a dag.")
    return problems


def _check_dag(spec: dict[str, Any], dag_name: str, dag: dict[str, Any]) -> list[str]:
    problems = []
    components = spec.get("components", {})
    tasks: dict[str, Any] = dag.get("tasks", {})
    where = "the root DAG" if dag_name == ROOT else f"the DAG of component {dag_name!r}"
    for task_name, task in tasks.items():
        ref = task.get("componentRef", {}).get("name")
        if not ref:
            problems.append(f"Task {task_name!r} in {where} has no componentRef.name.")
        elif ref not in components:
            problems.append(
                f"Task {task_name!r} in {where} refers to component {ref!r}, which pipelineSpec.components "
                "does not define."
            )
        for dependency in task.get("dependentTasks", []):
            if dependency not in tasks:
                problems.append(
                    f"Task {task_name!r} in {where} depends on task {dependency!r}, which is not in the same DAG."
                )
        inputs = task.get("inputs", {})
        for kind, source in (("parameters", "taskOutputParameter"), ("artifacts", "taskOutputArtifact")):
            for input_name, input_spec in inputs.get(kind, {}).items():
                producer = input_spec.get(source, {}).get("producerTask")
                if producer is not None and producer not in tasks:
                    problems.append(
                        f"Input {input_name!r} of task {task_name!r} in {where} comes from task {producer!r}, "
                        "which is not in the same DAG."
                    )
    for output_name, producer in _dag_output_producers(dag):
        if producer not in tasks:
            problems.append(
                f"Output {output_name!r} of {where} comes from task {producer!r}, which is not in that DAG."
            )
    cycle = _cycle(tasks)
    if cycle:
        problems.append(f"Tasks {', '.join(repr(t) for t in cycle)} in {where} depend on each other in a cycle.")
    return problems


def _dag_output_producers(dag: dict[str, Any]) -> Iterator[tuple[str, str]]:
    outputs = dag.get("outputs", {})
    for name, spec in outputs.get("parameters", {}).items():
        if "valueFromParameter" in spec:
            yield name, spec["valueFromParameter"].get("producerSubtask", "")
        for selector in spec.get("valueFromOneof", {}).get("parameterSelectors", []):
            yield name, selector.get("producerSubtask", "")
    for name, spec in outputs.get("artifacts", {}).items():
        for selector in spec.get("artifactSelectors", []):
            yield name, selector.get("producerSubtask", "")


def _cycle(tasks: dict[str, Any]) -> list[str]:
    """Tasks on a dependentTasks cycle (sorted), or [] when the DAG is acyclic."""
    edges = {name: [d for d in task.get("dependentTasks", []) if d in tasks] for name, task in tasks.items()}
    done: set[str] = set()
    for start in edges:
        if start in done:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        path = [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                done.add(node)
            elif child in path:
                return sorted(path[path.index(child):])
            elif child not in done:
                stack.append((child, iter(edges[child])))
                path.append(child)
    return []


# -- the task index used to script task details ---------------------------------------------------


@dataclass(frozen=True)
class TaskInfo:
    """Where a task name occurs in a spec: its DAG, its component, and what it can output."""

    name: str
    dag: str
    component: str
    parent_task: str | None  # the task that runs `dag`, or the root entry's name for root tasks

    def output_artifacts(self, spec: dict[str, Any]) -> dict[str, tuple[str, str]]:
        """Declared output artifact name -> (schemaTitle, schemaVersion)."""
        component = spec["root"] if self.component == ROOT else spec.get("components", {}).get(self.component, {})
        declared = component.get("outputDefinitions", {}).get("artifacts", {})
        result = {}
        for name, definition in declared.items():
            kind = definition.get("artifactType", {})
            result[name] = (kind.get("schemaTitle", "system.Artifact"), kind.get("schemaVersion", "0.0.1"))
        return result


def task_index(spec: dict[str, Any]) -> dict[str, list[TaskInfo]]:
    """Every task name in the spec (root DAG, sub-DAGs and the pipeline's own root entry)."""
    pipeline_name = spec.get("pipelineInfo", {}).get("name", "")
    runner: dict[str, str] = {}  # component -> first task that runs it
    for _, dag in dags(spec):
        for task_name, task in dag.get("tasks", {}).items():
            runner.setdefault(task.get("componentRef", {}).get("name", ""), task_name)
    index: dict[str, list[TaskInfo]] = {pipeline_name: [TaskInfo(pipeline_name, "", ROOT, None)]}
    for dag_name, dag in dags(spec):
        parent = pipeline_name if dag_name == ROOT else runner.get(dag_name)
        for task_name, task in dag.get("tasks", {}).items():
            info = TaskInfo(task_name, dag_name, task.get("componentRef", {}).get("name", ""), parent)
            index.setdefault(task_name, []).append(info)
    return index
