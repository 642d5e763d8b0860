"""Run a compiled PipelineSpec on this machine, the way Vertex AI or Kubeflow Pipelines would.

This walks the document, not the IR, so it proves what we submit: DAGs in dependency order,
task inputs from `componentInputParameter`/`taskOutputParameter`/`runtimeValue`/artifacts and
`parameterExpressionSelector`, `triggerPolicy.condition` (CEL) and `ALL_UPSTREAM_TASKS_COMPLETED`,
`parameterIterator` fan-out, DAG outputs, the task final status, and retries. Each executor's
command and args run as a local process with their placeholders filled, against the stack's
artifact store. Not emulated: the image (this Python stands in for the image's), caching,
iteration parallelism (iterations run one after another) and retry back-off delays.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from stackhop.adapters.pipelinespec.cel import CelError, evaluate
from stackhop.adapters.pipelinespec.compiler import META_OUTPUT
from stackhop.core.artifacts import META
from stackhop.core.graph import stable_topological

_PLACEHOLDER = re.compile(r"\{\{\$(?P<body>[^}]*)\}\}")
_IO = re.compile(r"^\.(?P<dir>inputs|outputs)\.(?P<kind>parameters|artifacts)\['(?P<name>[^']+)'\](?:\.(?P<attr>uri|output_file|path))?$")


class EmulationError(Exception):
    pass


@dataclass
class _Result:
    state: str  # SUCCEEDED, FAILED, SKIPPED, NOT_TRIGGERED
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, list[str]] = field(default_factory=dict)
    error: str = ""


@dataclass
class TaskRecord:
    """One executor run, for the state document: which IR step instance, how it ended."""

    task: str
    index: tuple[int, ...]
    state: str
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    message: str = ""
    outputs: dict[str, list[str]] = field(default_factory=dict)


class SpecEmulator:
    """One pipeline job of a PipelineSpec; `run()` returns SUCCEEDED or FAILED."""

    def __init__(self, spec: dict[str, Any], parameters: dict[str, Any], job_name: str, pipeline_root: str,
                 *, run_prefix: str, steps: dict[str, str] | None = None, env: dict[str, str] | None = None):
        self.spec = spec
        self.steps = dict(steps or {})
        self.job_name = job_name
        self.root = pipeline_root.rstrip("/")
        self.run_prefix = run_prefix.rstrip("/")
        self.env = dict(env or {})
        self.components = spec["components"]
        self.executors = spec["deploymentSpec"]["executors"]
        self.parameters = self._root_parameters(parameters)
        self.records: list[TaskRecord] = []

    def _root_parameters(self, given: dict[str, Any]) -> dict[str, Any]:
        declared = self.spec["root"].get("inputDefinitions", {}).get("parameters", {})
        out = {}
        for name in given:
            if name not in declared:
                raise EmulationError(f"the pipeline declares no parameter {name!r}")
        for name, d in declared.items():
            if name in given:
                out[name] = given[name]
            elif "defaultValue" in d:
                out[name] = d["defaultValue"]
            elif not d.get("isOptional"):
                raise EmulationError(f"pipeline parameter {name!r} has no default and no value was given")
        return out

    def run(self) -> str:
        result = self._dag(self.spec["root"]["dag"], self.parameters, {}, (), ())
        return "SUCCEEDED" if result.state == "SUCCEEDED" else "FAILED"

    # -------------------------------------------------------------- DAGs
    def _dag(self, dag: dict[str, Any], params: dict[str, Any], arts: dict[str, list[str]], index: tuple[int, ...],
             path: tuple[str, ...]) -> _Result:
        tasks = dag.get("tasks", {})
        edges = []
        for name, task in tasks.items():
            for dep in _producers(task):
                if dep not in tasks:
                    raise EmulationError(f"task {name!r} depends on {dep!r}, which is not in its DAG")
                edges.append((dep, name))
        results: dict[str, _Result] = {}
        for name in stable_topological(list(tasks), edges):
            results[name] = self._task(name, tasks[name], params, arts, results, index, path)
        failed = [n for n, r in results.items() if r.state == "FAILED"]
        out = _Result("FAILED" if failed else "SUCCEEDED", error=results[failed[0]].error if failed else "")
        for key, sel in dag.get("outputs", {}).get("parameters", {}).items():
            src = sel["valueFromParameter"]
            produced = results.get(src["producerSubtask"])
            if produced and src["outputParameterKey"] in produced.parameters:
                out.parameters[key] = produced.parameters[src["outputParameterKey"]]
        for key, sel in dag.get("outputs", {}).get("artifacts", {}).items():
            for s in sel["artifactSelectors"]:
                produced = results.get(s["producerSubtask"])
                if produced and s["outputArtifactKey"] in produced.artifacts:
                    out.artifacts.setdefault(key, []).extend(produced.artifacts[s["outputArtifactKey"]])
        return out

    def _task(self, name: str, task: dict[str, Any], params: dict[str, Any], arts: dict[str, list[str]],
              done: dict[str, _Result], index: tuple[int, ...], path: tuple[str, ...]) -> _Result:
        deps = _producers(task)
        waits_for_all = task.get("triggerPolicy", {}).get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED"
        if not waits_for_all and any(done[d].state != "SUCCEEDED" for d in deps):
            return self._not_run(name, task, index, path, "NOT_TRIGGERED")
        try:
            t_params, t_arts = self._inputs(name, task, params, arts, done)
        except EmulationError as exc:
            return _Result("FAILED", error=str(exc))
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition:
            try:
                if not evaluate(condition, t_params):
                    return self._not_run(name, task, index, path, "SKIPPED")
            except CelError as exc:
                return _Result("FAILED", error=f"task {name!r}: {exc}")
        comp = self.components[task["componentRef"]["name"]]
        iterator = task.get("parameterIterator")
        if iterator is not None:
            return self._loop(name, task, comp, iterator, t_params, t_arts, index, path)
        if "dag" in comp:
            return self._dag(comp["dag"], t_params, t_arts, index, (*path, name))
        return self._executor(name, task, comp, t_params, t_arts, index, path)

    def _not_run(self, name: str, task: dict[str, Any], index: tuple[int, ...], path: tuple[str, ...], state: str) -> _Result:
        comp = self.components[task["componentRef"]["name"]]
        if "executorLabel" in comp:
            self.records.append(TaskRecord(name, index, state))
        return _Result(state)

    def _loop(self, name: str, task: dict[str, Any], comp: dict[str, Any], iterator: dict[str, Any],
              params: dict[str, Any], arts: dict[str, list[str]], index: tuple[int, ...], path: tuple[str, ...]) -> _Result:
        items_spec = iterator["items"]
        items = json.loads(items_spec["raw"]) if "raw" in items_spec else params[items_spec["inputParameter"]]
        if isinstance(items, str):
            items = json.loads(items)
        if not isinstance(items, list):
            return _Result("FAILED", error=f"task {name!r} iterates over {items!r}, which is not a list")
        state, error = "SUCCEEDED", ""
        for i, item in enumerate(items):
            result = self._dag(comp["dag"], {**params, iterator["itemInput"]: item}, arts, (*index, i), (*path, name))
            if result.state == "FAILED" and state != "FAILED":
                state, error = "FAILED", result.error
        return _Result(state, error=error)

    # -------------------------------------------------------------- inputs
    def _inputs(self, name: str, task: dict[str, Any], params: dict[str, Any], arts: dict[str, list[str]],
                done: dict[str, _Result]) -> tuple[dict[str, Any], dict[str, list[str]]]:
        t_params: dict[str, Any] = {}
        for key, spec in task.get("inputs", {}).get("parameters", {}).items():
            if "runtimeValue" in spec:
                value = spec["runtimeValue"]["constant"]
            elif "componentInputParameter" in spec:
                source = spec["componentInputParameter"]
                if source not in params:
                    raise EmulationError(f"task {name!r} reads {source!r}, which its DAG does not have")
                value = params[source]
            elif "taskOutputParameter" in spec:
                src = spec["taskOutputParameter"]
                produced = done[src["producerTask"]]
                if src["outputParameterKey"] not in produced.parameters:
                    raise EmulationError(f"task {name!r} reads output {src['outputParameterKey']!r} of task "
                                         f"{src['producerTask']!r}, which it did not produce")
                value = produced.parameters[src["outputParameterKey"]]
            elif "taskFinalStatus" in spec:
                producer = spec["taskFinalStatus"]["producerTask"]
                result = done[producer]
                value = {"state": result.state, "pipelineJobResourceName": self.job_name, "pipelineTaskName": producer,
                         "error": {"message": result.error} if result.error else {}}
            else:
                raise EmulationError(f"task {name!r}: input {key!r} has a source the emulator does not know: {spec}")
            selector = spec.get("parameterExpressionSelector")
            if selector:
                value = _select(selector, value, name)
            t_params[key] = value
        t_arts: dict[str, list[str]] = {}
        for key, spec in task.get("inputs", {}).get("artifacts", {}).items():
            if "componentInputArtifact" in spec:
                t_arts[key] = arts[spec["componentInputArtifact"]]
            elif "taskOutputArtifact" in spec:
                src = spec["taskOutputArtifact"]
                produced = done[src["producerTask"]]
                if src["outputArtifactKey"] not in produced.artifacts:
                    raise EmulationError(f"task {name!r} reads artifact {src['outputArtifactKey']!r} of task "
                                         f"{src['producerTask']!r}, which it did not produce")
                t_arts[key] = produced.artifacts[src["outputArtifactKey"]]
            else:
                raise EmulationError(f"task {name!r}: artifact input {key!r} has an unknown source: {spec}")
        return t_params, t_arts

    # -------------------------------------------------------------- executors
    def output_uri(self, path: tuple[str, ...], task: str, index: tuple[int, ...], output: str) -> str:
        """Where an output goes; the layout of a local run, so run readers find meta, logs and artifacts."""
        step = self.step_of(task)
        base = "/".join([self.run_prefix, step, *(str(i) for i in index)])
        return f"{base}/{META}" if output == META_OUTPUT else f"{base}/{output}"

    def step_of(self, task: str) -> str:
        return self.steps.get(task, task)

    def _executor(self, name: str, task: dict[str, Any], comp: dict[str, Any], params: dict[str, Any],
                  arts: dict[str, list[str]], index: tuple[int, ...], path: tuple[str, ...]) -> _Result:
        executor = self.executors[comp["executorLabel"]]
        if "container" not in executor:
            return _Result("FAILED", error=f"task {name!r}: only container executors are emulated")
        container = executor["container"]
        declared = comp.get("inputDefinitions", {}).get("parameters", {})
        out_defs = comp.get("outputDefinitions", {})
        outputs = {k: self.output_uri(path, name, index, k) for k in out_defs.get("artifacts", {})}
        record = TaskRecord(name, index, "RUNNING", started_at=time.time())
        self.records.append(record)
        retries = int(task.get("retryPolicy", {}).get("maxRetryCount", 0))
        work = tempfile.mkdtemp(prefix=f"stackhop-{name}-")
        try:
            files = {k: os.path.join(work, "outputs", k) for k in out_defs.get("parameters", {})}
            argv = [self._fill(x, name, index, params, declared, arts, outputs, files)
                    for x in (*container.get("command", []), *container.get("args", []))]
            if argv and argv[0] in ("python", "python3"):
                argv = [sys.executable, *argv[1:]]
            env = {**os.environ, **self.env, **{e["name"]: e["value"] for e in container.get("env", [])}}
            code = 0
            for attempt in range(retries + 1):
                record.attempts = attempt + 1
                os.makedirs(os.path.join(work, "outputs"), exist_ok=True)
                code = subprocess.run(argv, env=env, cwd=work, stdin=subprocess.DEVNULL).returncode
                if code == 0:
                    break
            record.finished_at = time.time()
            if code != 0:
                record.state, record.message = "FAILED", self._error_message(outputs, name, code)
                return _Result("FAILED", error=record.message)
            result = _Result("SUCCEEDED", artifacts={k: [v] for k, v in outputs.items()})
            for key, d in out_defs.get("parameters", {}).items():
                if not os.path.exists(files[key]):
                    record.state, record.message = "FAILED", f"task {name!r} wrote no value for output parameter {key!r}"
                    return _Result("FAILED", error=record.message)
                result.parameters[key] = _parse(open(files[key]).read(), d["parameterType"])
            record.state, record.outputs = "SUCCEEDED", result.artifacts
            return result
        except EmulationError as exc:
            record.state, record.message, record.finished_at = "FAILED", str(exc), time.time()
            return _Result("FAILED", error=str(exc))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _error_message(self, outputs: dict[str, str], task: str, code: int) -> str:
        from stackhop.core.artifacts import ArtifactStore

        meta = outputs.get(META_OUTPUT)
        if meta:
            uri = f"{meta}/error.json"
            try:
                return str(ArtifactStore.for_uri(uri).read_json(uri)["message"])
            except Exception:
                pass
        return f"task {task!r} exited with code {code}"

    def _fill(self, text: str, task: str, index: tuple[int, ...], params: dict[str, Any], declared: dict[str, Any],
              arts: dict[str, list[str]], outputs: dict[str, str], files: dict[str, str]) -> str:
        def one(m: re.Match[str]) -> str:
            body = m.group("body")
            if body in (".pipeline_job_name", ".pipeline_job_uuid"):
                return self.job_name
            if body == ".pipeline_task_uuid":
                return "-".join([task, *map(str, index)])
            if body == ".pipeline_root":
                return self.root
            if body == ".pipeline_task_name":
                return task
            io = _IO.match(body)
            if not io:
                raise EmulationError(f"task {task!r}: placeholder {m.group(0)!r} is not emulated")
            direction, kind, key, attr = io.group("dir", "kind", "name", "attr")
            if direction == "inputs" and kind == "parameters" and attr is None:
                if key not in params:
                    if declared.get(key, {}).get("isOptional"):
                        return ""
                    raise EmulationError(f"task {task!r} has no input parameter {key!r}")
                return _render(params[key], declared.get(key, {}).get("parameterType", "STRING"))
            if direction == "inputs" and kind == "artifacts" and attr == "uri":
                if key not in arts or not arts[key]:
                    raise EmulationError(f"task {task!r} has no input artifact {key!r}")
                return arts[key][0]
            if direction == "outputs" and kind == "artifacts" and attr == "uri":
                return outputs[key]
            if direction == "outputs" and kind == "parameters" and attr == "output_file":
                return files[key]
            raise EmulationError(f"task {task!r}: placeholder {m.group(0)!r} is not emulated")

        return _PLACEHOLDER.sub(one, text)


def _producers(task: dict[str, Any]) -> list[str]:
    deps = list(task.get("dependentTasks", []))
    for spec in task.get("inputs", {}).get("parameters", {}).values():
        for key in ("taskOutputParameter", "taskFinalStatus"):
            if key in spec:
                deps.append(spec[key]["producerTask"])
    for spec in task.get("inputs", {}).get("artifacts", {}).values():
        if "taskOutputArtifact" in spec:
            deps.append(spec["taskOutputArtifact"]["producerTask"])
    return list(dict.fromkeys(deps))


def _select(selector: str, value: Any, task: str) -> Any:
    m = re.fullmatch(r'parseJson\(string_value\)\["([^"]+)"\]', selector)
    if not m:
        raise EmulationError(f"task {task!r}: parameterExpressionSelector {selector!r} is not emulated")
    data = json.loads(value) if isinstance(value, str) else value
    return data[m.group(1)]


def _render(value: Any, ptype: str) -> str:
    """How the backends render a parameter placeholder: strings verbatim, the rest as JSON."""
    if isinstance(value, str):
        return value
    if ptype == "NUMBER_INTEGER" and isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, sort_keys=True)


def _parse(text: str, ptype: str) -> Any:
    if ptype == "STRING":
        return text
    try:
        return json.loads(text)
    except ValueError:
        raise EmulationError(f"output parameter text {text[:60]!r} is not a valid {ptype}") from None
