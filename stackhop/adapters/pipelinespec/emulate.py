"""Run a compiled PipelineSpec on this machine, the way Vertex AI or Kubeflow Pipelines would.

This reads the document, not the IR, so it proves what we submit: for each task the scheduler
starts it resolves the task's inputs through the nested DAGs (`componentInputParameter`,
`taskOutputParameter`, `runtimeValue`, artifacts, DAG outputs, `parameterExpressionSelector`,
`taskFinalStatus`), picks the iteration's item from each enclosing `parameterIterator`,
evaluates every enclosing `triggerPolicy.condition` (CEL), and runs the executor's command and
args with their placeholders filled, against the stack's artifact store. Like the KFP driver and
launcher it resolves `{"IfPresent": ...}` arguments (and refuses `{"Concat": ...}`, which no
backend expands), downloads input artifacts a `.path` names, uploads output artifacts written
at one, and reads output parameters back from the files the placeholders named (our compiler
emits neither JSON form; only hand-edited documents hold them). A container step's command is
the user's own, so no stackhop writes its record: the emulator stores what the backend's
metadata store would hold (its output values and artifact URIs) where run readers look for
it. The core scheduler decides
when each task runs (dependencies, `ALL_UPSTREAM_TASKS_COMPLETED`, iteration parallelism,
retries, caching). Not emulated: the image (this Python stands in for the image's, and a plain
image's commands are this machine's).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from stackhop.adapters.pipelinespec.cel import CelError, evaluate
from stackhop.adapters.pipelinespec.compiler import CODE_PARAM, META_OUTPUT, PARAM_TYPES, task_name
from stackhop.core.artifacts import META, ArtifactStore, content_digest
from stackhop.core.emulation import Command, EmulatedRun, EmulationError, Emulator, Index

_PLACEHOLDER = re.compile(r"\{\{\$(?P<body>[^}]*)\}\}")
_IO = re.compile(r"^\.(?P<dir>inputs|outputs)\.(?P<kind>parameters|artifacts)\['(?P<name>[^']+)'\](?:\.(?P<attr>uri|output_file|path))?$")
SPEC_FILES = ("pipeline.json", "pipeline.yaml")


@dataclass(frozen=True)
class _Level:
    """A task in one DAG of the document, on the way from the root to an executor task."""

    dag: dict[str, Any]
    name: str
    task: dict[str, Any]


class SpecEmulator(Emulator):
    """One pipeline job of a PipelineSpec, a task at a time."""

    def __init__(self, files: dict[str, bytes], run: EmulatedRun):
        super().__init__(files, run)
        name = next((n for n in SPEC_FILES if n in files), None)
        if name is None:
            raise EmulationError(f"the compiled files hold no PipelineSpec ({' or '.join(SPEC_FILES)})")
        self.spec: dict[str, Any] = json.loads(files[name].split(b"\n---\n")[0])
        self.components = self.spec["components"]
        self.executors = self.spec["deploymentSpec"]["executors"]
        self.tasks = {task_name(s["name"]): s["name"] for s in run.pipeline["steps"]}
        self.plain = {task_name(s["name"]) for s in run.pipeline["steps"] if s["kind"] == "container"}
        self.paths: dict[str, list[_Level]] = {}
        self._walk(self.spec["root"]["dag"], [])
        self._root: dict[str, Any] | None = None
        self.outputs: dict[tuple[str, Index], dict[str, Any]] = {}
        self.states: dict[tuple[str, Index], tuple[str, str]] = {}
        self._files: dict[tuple[str, Index], dict[str, str]] = {}

    def _walk(self, dag: dict[str, Any], above: list[_Level]) -> None:
        for name, task in dag.get("tasks", {}).items():
            level = _Level(dag, name, task)
            comp = self.components[task["componentRef"]["name"]]
            if "dag" in comp:
                self._walk(comp["dag"], [*above, level])
            else:
                self.paths[name] = [*above, level]

    @property
    def parameters(self) -> dict[str, Any]:
        if self._root is None:
            given = {**self.run.parameters, CODE_PARAM: (f"{self.run.code['archive_uri']}#{self.run.code.get('digest') or ''}"
                                                          if self.run.code.get("archive_uri") else "")}
            declared = self.spec["root"].get("inputDefinitions", {}).get("parameters", {})
            unknown = sorted(set(given) - set(declared))
            if unknown:
                raise EmulationError(f"the pipeline declares no parameter {unknown[0]!r}")
            root: dict[str, Any] = {}
            for name, d in declared.items():
                if name in given:
                    root[name] = given[name]
                elif "defaultValue" in d:
                    root[name] = d["defaultValue"]
                elif not d.get("isOptional"):
                    raise EmulationError(f"pipeline parameter {name!r} has no default and no value was given")
            self._root = root
        return self._root

    def _path(self, step: str, index: Index) -> list[_Level]:
        name = task_name(step)
        if name not in self.paths:
            raise EmulationError(f"the compiled PipelineSpec has no executor task for step {step!r}")
        return self.paths[name]

    # -------------------------------------------------------------- scopes
    def _scope(self, path: list[_Level], depth: int, index: Index) -> tuple[dict[str, Any], dict[str, list[str]], int]:
        """Parameters and artifacts inside the DAG that `path[depth]` lives in, and how many loop indexes it used."""
        if depth == 0:
            return self.parameters, {}, 0
        parent = path[depth - 1]
        params, arts, used = self._scope(path, depth - 1, index)
        t_params, t_arts = self._inputs(parent, params, arts, index[:used])
        iterator = parent.task.get("parameterIterator")
        if iterator is not None:
            items = self._items(parent.name, iterator, t_params)
            if used >= len(index) or index[used] >= len(items):
                raise EmulationError(f"task {parent.name!r} iterates over {len(items)} items, which do not include "
                                     f"iteration {index} of the step")
            t_params = {**t_params, iterator["itemInput"]: items[index[used]]}
            used += 1
        return t_params, t_arts, used

    @staticmethod
    def _items(name: str, iterator: dict[str, Any], params: dict[str, Any]) -> list[Any]:
        spec = iterator["items"]
        items = json.loads(spec["raw"]) if "raw" in spec else params.get(spec.get("inputParameter", ""))
        if isinstance(items, str):
            try:
                items = json.loads(items)
            except ValueError:
                pass
        if not isinstance(items, list):
            raise EmulationError(f"task {name!r} iterates over {items!r}, which is not a list")
        return items

    def runtime_constant(self, value: Any, task: str, index: Index) -> Any:
        """A task input's constant as KFP's driver fills it: the run's name and id, and an id per task instance."""
        if value in ("{{$.pipeline_job_name}}", "{{$.pipeline_job_uuid}}"):
            return self.run.run_id
        if value == "{{$.pipeline_task_uuid}}":
            return "-".join([task, *map(str, index)])
        return value

    def _inputs(self, level: _Level, params: dict[str, Any], arts: dict[str, list[str]],
                prefix: Index) -> tuple[dict[str, Any], dict[str, list[str]]]:
        name, task = level.name, level.task
        t_params: dict[str, Any] = {}
        for key, spec in task.get("inputs", {}).get("parameters", {}).items():
            if "runtimeValue" in spec:
                value = self.runtime_constant(spec["runtimeValue"]["constant"], name, prefix)
            elif "componentInputParameter" in spec:
                source = spec["componentInputParameter"]
                if source not in params:
                    raise EmulationError(f"task {name!r} reads {source!r}, which its DAG does not have")
                value = params[source]
            elif "taskOutputParameter" in spec:
                src = spec["taskOutputParameter"]
                value = self._output_parameter(level.dag, src["producerTask"], src["outputParameterKey"], prefix, name,
                                               (params, arts))
            elif "taskFinalStatus" in spec:
                value = self._final_status(level.dag, spec["taskFinalStatus"]["producerTask"], prefix)
            else:
                raise EmulationError(f"task {name!r}: input {key!r} has a source the emulator does not know: {spec}")
            selector = spec.get("parameterExpressionSelector")
            if selector:
                value = _select(selector, value, name)
            t_params[key] = value
        t_arts: dict[str, list[str]] = {}
        for key, spec in task.get("inputs", {}).get("artifacts", {}).items():
            if "componentInputArtifact" in spec:
                source = spec["componentInputArtifact"]
                if source not in arts:
                    raise EmulationError(f"task {name!r} reads artifact {source!r}, which its DAG does not have")
                t_arts[key] = arts[source]
            elif "taskOutputArtifact" in spec:
                src = spec["taskOutputArtifact"]
                t_arts[key] = self._output_artifact(level.dag, src["producerTask"], src["outputArtifactKey"], prefix, name,
                                                    (params, arts))
            else:
                raise EmulationError(f"task {name!r}: artifact input {key!r} has an unknown source: {spec}")
        return t_params, t_arts

    def _producer(self, dag: dict[str, Any], producer: str, consumer: str) -> tuple[dict[str, Any], dict[str, Any]]:
        task = dag.get("tasks", {}).get(producer)
        if task is None:
            raise EmulationError(f"task {consumer!r} reads task {producer!r}, which is not in its DAG")
        return task, self.components[task["componentRef"]["name"]]

    def _output_parameter(self, dag: dict[str, Any], producer: str, key: str, prefix: Index, consumer: str,
                          scope: tuple[dict[str, Any], dict[str, list[str]]]) -> Any:
        """`scope`: the parameters and artifacts of `dag`, which a loop DAG's items may come from."""
        task, comp = self._producer(dag, producer, consumer)
        if "dag" in comp:
            sel = comp["dag"].get("outputs", {}).get("parameters", {}).get(key)
            if sel is None:
                raise EmulationError(f"DAG {producer!r} has no output parameter {key!r}")
            inner_params, inner_arts = self._inputs(_Level(dag, producer, task), *scope, prefix)
            if "valueFromOneof" in sel:  # the branch that ran, as the KFP driver picks it
                ran = [x for x in sel["valueFromOneof"]["parameterSelectors"]
                       if self._ran(comp["dag"], x["producerSubtask"], prefix)]
                if len(ran) != 1:
                    raise EmulationError(f"task {consumer!r} reads OneOf output {key!r} of {producer!r}, and "
                                         f"{len(ran)} of its branches ran")
                src = ran[0]
                return self._output_parameter(comp["dag"], src["producerSubtask"], src["outputParameterKey"], prefix,
                                              producer, (inner_params, inner_arts))
            src = sel["valueFromParameter"]
            iterator = task.get("parameterIterator")
            if iterator is None:
                return self._output_parameter(comp["dag"], src["producerSubtask"], src["outputParameterKey"], prefix,
                                              producer, (inner_params, inner_arts))
            # fan-in, as the KFP driver gathers it: one value per iteration, in order; nested loops flatten
            inner = comp["dag"]["tasks"].get(src["producerSubtask"], {})
            collected: list[Any] = []
            for i, item in enumerate(self._items(producer, iterator, inner_params)):
                if not self._ran(comp["dag"], src["producerSubtask"], prefix + (i,)):
                    continue  # an iteration its If skipped gives no value, as the driver leaves it out
                value = self._output_parameter(comp["dag"], src["producerSubtask"], src["outputParameterKey"],
                                               prefix + (i,), producer,
                                               ({**inner_params, iterator["itemInput"]: item}, inner_arts))
                if inner.get("parameterIterator") is not None:
                    collected.extend(value)
                else:
                    collected.append(value)
            return collected
        produced = self.outputs.get((producer, prefix))
        if produced is None:  # served from cache, so never collected: its committed record holds the value
            produced = self._committed(producer, prefix).get("scalars", {})
        if key not in produced:
            raise EmulationError(f"task {consumer!r} reads output {key!r} of task {producer!r}, which it did not produce")
        return produced[key]

    def _committed(self, producer: str, prefix: Index) -> dict[str, Any]:
        uri = self.output_uri(producer, prefix, META_OUTPUT) + "/outputs.json"
        try:
            return dict(ArtifactStore.for_uri(uri).read_json(uri))
        except Exception:
            return {}

    def _output_artifact(self, dag: dict[str, Any], producer: str, key: str, prefix: Index, consumer: str,
                         scope: tuple[dict[str, Any], dict[str, list[str]]]) -> list[str]:
        task, comp = self._producer(dag, producer, consumer)
        importer = self.executors.get(comp.get("executorLabel", ""), {}).get("importer")
        if importer is not None:  # the driver registers the URI the importer names: nothing ran, nothing moved
            source = importer["artifactUri"]
            if "constant" in source:
                return [source["constant"]]
            params, _ = self._inputs(_Level(dag, producer, task), *scope, prefix)
            return [params[source["runtimeParameter"]]]
        if "dag" in comp:
            sel = comp["dag"].get("outputs", {}).get("artifacts", {}).get(key)
            if sel is None:
                raise EmulationError(f"DAG {producer!r} has no output artifact {key!r}")
            inner = self._inputs(_Level(dag, producer, task), *scope, prefix)
            iterator = task.get("parameterIterator")
            if iterator is not None:  # fan-in: every iteration's artifacts, in order
                (x,) = sel["artifactSelectors"]
                return [uri for i, item in enumerate(self._items(producer, iterator, inner[0]))
                        if self._ran(comp["dag"], x["producerSubtask"], prefix + (i,))
                        for uri in self._output_artifact(comp["dag"], x["producerSubtask"], x["outputArtifactKey"],
                                                         prefix + (i,), producer,
                                                         ({**inner[0], iterator["itemInput"]: item}, inner[1]))]
            selectors = sel["artifactSelectors"]
            if "-oneof-" in key:  # kfp writes OneOf over artifacts as one selector per branch: the one that ran
                selectors = [x for x in selectors if self._ran(comp["dag"], x["producerSubtask"], prefix)]
            return [uri for s in selectors
                    for uri in self._output_artifact(comp["dag"], s["producerSubtask"], s["outputArtifactKey"], prefix,
                                                     producer, inner)]
        if key not in comp.get("outputDefinitions", {}).get("artifacts", {}):
            raise EmulationError(f"task {consumer!r} reads artifact {key!r} of task {producer!r}, which it does not declare")
        if key != META_OUTPUT and (producer, prefix) not in self.outputs:  # served from cache: the cached execution's
            cached = self._committed(producer, prefix).get("artifacts", {}).get(key, {}).get("uri")
            if cached:
                return [cached]
        return [self.output_uri(producer, prefix, key)]

    def _ran(self, dag: dict[str, Any], task: str, prefix: Index) -> bool:
        """Whether some executor under `task` (a task of `dag`) succeeded or was served from cache."""
        under = [t for t, path in self.paths.items() if any(lv.dag is dag and lv.name == task for lv in path)]
        return any(state in ("SUCCEEDED", "CACHED") for (t, index), (state, _) in self.states.items()
                   if t in under and index[: len(prefix)] == prefix)

    def _final_status(self, dag: dict[str, Any], producer: str, prefix: Index) -> dict[str, Any]:
        """What the backend hands an exit task: how the tasks under `producer` ended."""
        under = [t for t, path in self.paths.items() if any(lv.dag is dag and lv.name == producer for lv in path)]
        ended = [(state, message) for (t, index), (state, message) in sorted(self.states.items())
                 if t in under and index[: len(prefix)] == prefix]
        failed = [m for state, m in ended if state in ("FAILED", "CANCELLED")]
        return {"state": "FAILED" if failed else "SUCCEEDED", "pipelineJobResourceName": self.run.run_id,
                "pipelineTaskName": producer, "error": {"message": failed[0]} if failed else {}}

    # -------------------------------------------------------------- the emulator contract
    def condition(self, step: str, index: Index) -> bool | None:
        path = self._path(step, index)
        found = False
        for depth, level in enumerate(path):
            condition = level.task.get("triggerPolicy", {}).get("condition")
            if not condition:
                continue
            found = True
            params, arts, used = self._scope(path, depth, index)
            t_params, _ = self._inputs(level, params, arts, index[:used])
            try:
                if not evaluate(condition, t_params):
                    return False
            except CelError as exc:
                raise EmulationError(f"task {level.name!r}: {exc}") from None
        return True if found else None

    def command(self, step: str, index: Index, workdir: str) -> Command:
        path = self._path(step, index)
        level = path[-1]
        params, arts, used = self._scope(path, len(path) - 1, index)
        if used != len(index):
            raise EmulationError(f"task {level.name!r} is inside {used} loops in the document, but the step has "
                                 f"iteration {index}")
        t_params, t_arts = self._inputs(level, params, arts, index)
        comp = self.components[level.task["componentRef"]["name"]]
        executor = self.executors[comp["executorLabel"]]
        if "container" not in executor:
            raise EmulationError(f"task {level.name!r}: only container executors are emulated")
        container = executor["container"]
        declared = comp.get("inputDefinitions", {}).get("parameters", {})
        out_defs = comp.get("outputDefinitions", {})
        outputs = {k: self.output_uri(level.name, index, k) for k in out_defs.get("artifacts", {})}
        files = {k: os.path.join(workdir, "outputs", k) for k in out_defs.get("parameters", {})}
        os.makedirs(os.path.join(workdir, "outputs"), exist_ok=True)
        fill = _Filler(self, level.name, index, t_params, declared, t_arts, outputs, files, workdir)
        present = {k for k, v in t_params.items() if v is not None}
        argv = [fill(x) for x in _expand([*container.get("command", []), *container.get("args", [])], present, level.name)]
        env = {e["name"]: fill(e["value"]) for e in container.get("env", [])}
        self._files[(level.name, index)] = {"parameters": files, "artifacts": fill.staged_outputs}
        return Command(argv, env)

    def collect(self, step: str, index: Index, workdir: str) -> None:
        name = task_name(step)
        comp = self.components[self._path(step, index)[-1].task["componentRef"]["name"]]
        staged = self._files.pop((name, index), {})
        files = staged.get("parameters", {})
        values: dict[str, Any] = {}
        for key, d in comp.get("outputDefinitions", {}).get("parameters", {}).items():
            path = files.get(key)
            if path is None or not os.path.exists(path):
                raise EmulationError(f"task {name!r} wrote no value for output parameter {key!r}")
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            values[key] = _parse_plain(step, key, text, d["parameterType"]) if name in self.plain else _parse(
                text, d["parameterType"])
        artifacts: dict[str, Any] = {}
        for key, d in comp.get("outputDefinitions", {}).get("artifacts", {}).items():
            if key == META_OUTPUT:
                continue
            uri = self.output_uri(name, index, key)
            store = ArtifactStore.for_uri(uri)
            local = staged.get("artifacts", {}).get(key)
            if local is not None:
                if not os.path.exists(local):
                    raise EmulationError(f"task {name!r} wrote nothing at the path of output artifact {key!r}")
                digest = content_digest(local)
                store.commit(local, uri)
            elif name in self.plain:
                if not store.exists(uri):
                    raise EmulationError(f"task {name!r} wrote nothing at the URI of output artifact {key!r}, {uri}")
                with store.local_copy(uri) as copy:
                    digest = content_digest(copy)
            else:
                continue
            artifacts[key] = {"uri": uri, "type": d["artifactType"]["schemaTitle"].removeprefix("system."),
                              "digest": digest, "metadata": {}, "materializer": None}
        self.outputs[(name, index)] = values
        if name in self.plain:  # what the backend's metadata store would hold, where run readers look for a record
            meta = self.output_uri(name, index, META_OUTPUT) + "/outputs.json"
            ArtifactStore.for_uri(meta).write_json(meta, {"scalars": values, "artifacts": artifacts})

    def settled(self, step: str, index: Index, status: str, message: str) -> None:
        self.states[(task_name(step), index)] = (status, message)

    def output_uri(self, task: str, index: Index, output: str) -> str:
        """Where an output goes; the layout of a local run, so run readers find meta, logs and artifacts."""
        base = "/".join([self.run.run_prefix, self.tasks.get(task, task), *(str(i) for i in index)])
        return f"{base}/{META}" if output == META_OUTPUT else f"{base}/{output}"


@dataclass
class _Filler:
    """Fills one task's placeholders, as the backend's launcher would."""

    emulator: SpecEmulator
    task: str
    index: Index
    params: dict[str, Any]
    declared: dict[str, Any]
    arts: dict[str, list[str]]
    outputs: dict[str, str]
    files: dict[str, str]
    workdir: str
    staged_outputs: dict[str, str] = field(default_factory=dict)
    staged_inputs: dict[str, str] = field(default_factory=dict)

    def __call__(self, text: str) -> str:
        return _PLACEHOLDER.sub(self.one, text)

    def one(self, m: re.Match[str]) -> str:
        body, task = m.group("body"), self.task
        if body in (".pipeline_job_name", ".pipeline_job_uuid", ".pipeline_task_uuid"):
            return str(self.emulator.runtime_constant(m.group(0), task, self.index))
        if body == ".pipeline_root":
            return self.emulator.run.artifact_root.rstrip("/")
        if body == ".pipeline_task_name":
            return task
        if body == "":  # {{$}}: the ExecutorInput, as the launcher hands it over
            return json.dumps({"inputs": {
                "parameterValues": dict(self.params),
                "artifacts": {k: {"artifacts": [{"uri": u, "metadata": {}} for u in uris]} for k, uris in self.arts.items()},
            }, "outputs": {"artifacts": {k: {"artifacts": [{"uri": u}]} for k, u in self.outputs.items()},
                           "parameters": {k: {"outputFile": f} for k, f in self.files.items()}}}, sort_keys=True)
        io = _IO.match(body)
        if not io:
            raise EmulationError(f"task {task!r}: placeholder {m.group(0)!r} is not emulated")
        direction, kind, key, attr = io.group("dir", "kind", "name", "attr")
        if direction == "inputs" and kind == "parameters" and attr is None:
            declared = self.declared.get(key, {})
            if key not in self.params:
                if "defaultValue" in declared:
                    return _render(declared["defaultValue"], declared.get("parameterType", "STRING"))
                if declared.get("isOptional"):
                    return ""
                raise EmulationError(f"task {task!r} has no input parameter {key!r}")
            return _render(self.params[key], declared.get("parameterType", "STRING"))
        if direction == "inputs" and kind == "artifacts" and attr in ("uri", "path"):
            if not self.arts.get(key):
                raise EmulationError(f"task {task!r} has no input artifact {key!r}")
            return self.arts[key][0] if attr == "uri" else self.input_path(key, self.arts[key][0])
        if direction == "outputs" and kind == "artifacts" and attr == "uri" and key in self.outputs:
            return self.outputs[key]
        if direction == "outputs" and kind == "artifacts" and attr == "path" and key in self.outputs:
            return self.output_path(key)
        if direction == "outputs" and kind == "parameters" and attr == "output_file" and key in self.files:
            return self.files[key]
        raise EmulationError(f"task {task!r}: placeholder {m.group(0)!r} is not emulated")

    def input_path(self, key: str, uri: str) -> str:
        """The artifact downloaded to this machine, as the launcher stages it before the command starts."""
        if key not in self.staged_inputs:
            store = ArtifactStore.for_uri(uri)
            if not store.exists(uri):
                raise EmulationError(f"task {self.task!r}: input artifact {key!r} does not exist at {uri}")
            path = os.path.join(self.workdir, "inputs", key, os.path.basename(uri.rstrip("/")) or key)
            store.get(uri, path)
            self.staged_inputs[key] = path
        return self.staged_inputs[key]

    def output_path(self, key: str) -> str:
        """A local path the command writes the artifact at; `collect` uploads it to the output's URI."""
        if key not in self.staged_outputs:
            store = ArtifactStore.for_uri(self.outputs[key])
            if store.is_local:  # beside its target, so the upload is a rename
                self.staged_outputs[key] = store.staging_path(self.outputs[key])
            else:
                folder = os.path.join(self.workdir, "artifacts", key)
                os.makedirs(folder, exist_ok=True)
                self.staged_outputs[key] = os.path.join(folder, key)
        return self.staged_outputs[key]


def _expand(items: list[Any], present: set[str], task: str) -> list[str]:
    """The command as the Kubeflow Pipelines driver (2.17 and later) resolves it: a top-level
    `{"IfPresent": ...}` argument becomes its branch, by whether the task is given that input parameter.

    No backend expands `{"Concat": ...}` (and Vertex AI has been reported to pass IfPresent through
    too, googleapis/python-aiplatform#4164), so a document relying on Concat would not run as written;
    the emulator refuses it rather than run it."""
    out: list[str] = []
    for item in items:
        text = item.strip() if isinstance(item, str) else ""
        if text.startswith('{"Concat":'):
            raise EmulationError(f"task {task!r}: argument {item!r} is a Concat placeholder, which Vertex AI and "
                                 "Kubeflow Pipelines pass to the command unexpanded; join its parts into one argument")
        if not text.startswith('{"IfPresent":'):
            out.append(item)
            continue
        try:
            branch = json.loads(text)["IfPresent"]
            chosen = branch.get("Then" if branch["InputName"] in present else "Else")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise EmulationError(f"task {task!r}: argument {item!r} is not an IfPresent placeholder KFP can read") from None
        chosen = [] if chosen is None else [chosen] if isinstance(chosen, str) else chosen
        if "$.outputs" in text or not all(isinstance(x, str) for x in chosen):
            raise EmulationError(f"task {task!r}: IfPresent argument {item!r} holds an output placeholder or a nested "
                                 "placeholder, which the Kubeflow Pipelines driver does not resolve")
        out += chosen
    return out


def _parse_plain(step: str, key: str, text: str, ptype: str) -> Any:
    """A plain command's output file, read as every stackhop backend reads it (see the entrypoint)."""
    from stackhop.core.wiring import StepError
    from stackhop.entrypoint import _parse_scalar

    type_name = {v: k for k, v in PARAM_TYPES.items()}.get(ptype, "str")
    try:
        return _parse_scalar(step, key, type_name, text)
    except StepError as exc:
        raise EmulationError(str(exc)) from None


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
