"""IR -> KFP v2 PipelineSpec (schema 2.1.0), the document Vertex AI Pipelines and Kubeflow Pipelines both run.

Emitted as plain dicts in the protobuf JSON mapping, in one pass over steps and groups, so
compile cost is linear in steps and needs no protobuf runtime (the tests parse every document
strictly into `pipeline_spec_pb2.PipelineSpec`). Each step is one `comp-*`/`exec-*` pair; a Python
step's container runs `python -m stackhop.entrypoint` with `--wiring` naming `PipelineSpecWiring`
(runtime.py), which parses the arguments after it; data moves through KFP's own wiring and
placeholders, so the backend records lineage and chooses artifact URIs, and the entrypoint
does the reading and writing:

* scalar inputs arrive as `{{$.inputs.parameters['x']}}`, artifact inputs as
  `{{$.inputs.artifacts['x'].uri}}`;
* outputs go to `{{$.outputs.artifacts['y'].uri}}` and `{{$.outputs.parameters['z'].output_file}}`;
* a hidden output artifact, `stackhop_meta`, receives the step's `outputs.json` (digests,
  metadata, materializers), `error.json` and its log; a consumer of artifacts also receives
  its producers' `stackhop_meta`, so it loads a stored value exactly as the local runner does.

A container step is instead the plain component kfp compiles for `@dsl.container_component`:
its own image, the user's command and args with the launcher's placeholders (`.path` and `.uri`
of artifacts, parameter values, `output_file`s), no stackhop meta, nothing of stackhop inside.

Groups become sub-DAGs the way kfp builds them: `If` is a task whose `triggerPolicy.condition`
is CEL over `inputs.parameter_values[...]`, `ParallelFor` a task with a `parameterIterator`,
`ExitHandler` a sub-DAG followed by the exit task with `ALL_UPSTREAM_TASKS_COMPLETED`. Values
crossing DAG boundaries travel as `pipelinechannel--*` inputs (down) and DAG outputs (up).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from stackhop.adapters.pipelinespec.runtime import PipelineSpecWiring, mirror_uri  # noqa: F401  (readers import it here)
from stackhop.core import ir
from stackhop.core.canonical import canonical_json
from stackhop.core.container_args import present_inputs, resolve_presence
from stackhop.core.quantities import format_bytes, format_cpu
from stackhop.core.wiring import wiring_ref
from stackhop.errors import PipelineDefinitionError

SCHEMA_VERSION = "2.1.0"
SDK_VERSION = "stackhop-0.1.0"
META_OUTPUT = "stackhop_meta"
CODE_PARAM = "stackhop_code"
FINAL_STATUS_INPUT = "stackhop_final_status"
RESERVED = (META_OUTPUT, CODE_PARAM, FINAL_STATUS_INPUT)
WIRING = wiring_ref(PipelineSpecWiring)
PARAM_TYPES = {"str": "STRING", "int": "NUMBER_INTEGER", "float": "NUMBER_DOUBLE", "bool": "BOOLEAN",
               "list": "LIST", "dict": "STRUCT"}
SCHEMA = "0.0.1"
_CEL_OPS = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class Accelerator:
    """How one backend names a GPU request: the enum in `resources.accelerator`, plus node labels."""

    type: str
    node_selector: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """What differs between Vertex and Kubeflow Pipelines at compile time."""

    name: str
    artifact_root: str
    python: str = "python"
    limits_only: bool = False
    """Vertex honours only limits: a request with no limit becomes the limit."""
    platform: bool = False
    """Kubeflow Pipelines: Kubernetes-only settings go into a kfp-kubernetes platform spec."""
    accelerator: Callable[[str, str], Accelerator] | None = None
    image_pull_secrets: tuple[str, ...] = ()
    meta_mirror: bool = False
    """Kubeflow: also write each step's meta to a path derived from the run and task ids, because
    the KFP API reports no output URIs for a task."""
    settings: dict[str, Any] = field(default_factory=dict)


def task_name(name: str) -> str:
    """kfp's sanitising: lower case, `_` -> `-` (task and component names are DNS-like)."""
    return name.lower().replace("_", "-")


def pipeline_root(root: str, pipeline: str, run_id: str) -> str:
    """Each run's own pipeline root, inside its run layout: a step finds its run there (`--run-root`)."""
    return f"{root.rstrip('/')}/{pipeline}/{run_id}"


def artifact_type(type_name: str) -> dict[str, str]:
    title = type_name if type_name in ir.ARTIFACT_TYPES else "Artifact"
    return {"schemaTitle": f"system.{title}", "schemaVersion": SCHEMA}


def spec_document(p: ir.Pipeline, target: Target) -> tuple[str, str]:
    """The run spec every step reads (IR and settings), and the URI it is stored at, by content."""
    text = canonical_json({
        "run_id": "", "pipeline": json.loads(p.to_json()),
        "parameters": {x.name: x.default for x in p.parameters if x.has_default},
        "artifact_root": target.artifact_root, "code": {}, "caching": True, "settings": target.settings,
    })
    digest = hashlib.sha256(text.encode()).hexdigest()
    return text, f"{target.artifact_root}/_stackhop/specs/{digest}.json"


@dataclass
class _Dag:
    """One DAG being built: the root or a group's sub-DAG."""

    key: str | None  # group id, None for the root
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=lambda: {"parameters": {}, "artifacts": {}})
    outputs: dict[str, dict[str, Any]] = field(default_factory=lambda: {"parameters": {}, "artifacts": {}})
    out_defs: dict[str, dict[str, Any]] = field(default_factory=lambda: {"parameters": {}, "artifacts": {}})


class _Compiler:
    def __init__(self, p: ir.Pipeline, target: Target):
        self.p = p
        self.t = target
        self.groups = {g.id: g for g in p.groups}
        self.steps = {s.name: s for s in p.steps}
        self.spec_text, self.spec_uri = spec_document(p, target)
        self.components: dict[str, dict[str, Any]] = {}
        self.executors: dict[str, dict[str, Any]] = {}
        self.platform: dict[str, dict[str, Any]] = {}
        self.dags: dict[str | None, _Dag] = {None: _Dag(None)}
        self.names: dict[str, str] = {}  # step name or group id -> task name
        self.path_cache: dict[str | None, tuple[str | None, ...]] = {}
        for g in p.groups:
            self.dags[g.id] = _Dag(g.id)
        self._name_tasks()

    def where(self, step: str) -> str:
        return f"pipeline {self.p.name!r}, step {step!r}"

    def _name_tasks(self) -> None:
        group_names = {"condition": "condition", "parallel_for": "for-loop", "exit_handler": "exit-handler",
                       "branches": "condition-branches"}
        owner: dict[str, str] = {}
        for g in self.p.groups:  # a nested pipeline's DAG task is named after its call, as kfp names it
            self.names[g.id] = task_name(g.pipeline) if g.kind == "pipeline" and g.pipeline else (
                group_names.get(g.kind, g.kind) + "-" + g.id.rsplit("-", 1)[1])
        for s in self.p.steps:
            for name in (o.name for o in s.outputs):
                if name in RESERVED:
                    raise PipelineDefinitionError(
                        f"{self.where(s.name)}: output name {name!r} is reserved by stackhop on Vertex and Kubeflow; rename it.")
            for inp in s.inputs:
                if inp.name in RESERVED:
                    raise PipelineDefinitionError(
                        f"{self.where(s.name)}: input name {inp.name!r} is reserved by stackhop on Vertex and Kubeflow; rename it.")
            self.names[s.name] = task_name(s.name)
        for key, name in self.names.items():
            if name in owner:
                raise PipelineDefinitionError(
                    f"pipeline {self.p.name!r}: {key!r} and {owner[name]!r} both become task {name!r} in a PipelineSpec "
                    "(names are lower-cased and '_' becomes '-'); rename one of them.")
            owner[name] = key
        for x in self.p.parameters:
            if x.name in RESERVED:
                raise PipelineDefinitionError(
                    f"pipeline {self.p.name!r}: parameter name {x.name!r} is reserved by stackhop; rename it.")

    # -------------------------------------------------------------- DAG paths
    def path(self, group: str | None) -> tuple[str | None, ...]:
        """DAG keys from the root down to `group`: (None, outer, ..., group)."""
        if group not in self.path_cache:
            chain = [g.id for g in reversed(self.p.group_chain(group))]
            self.path_cache[group] = (None, *chain)
        return self.path_cache[group]

    def task_dag(self, key: str) -> str | None:
        """The DAG a step's or group's task sits in (`_ROOT`: the pipeline's own outputs, read at the root)."""
        if key == _ROOT:
            return None
        if key in self.steps:
            return self.steps[key].group
        return self.groups[key].parent

    # -------------------------------------------------------------- values into a task
    def bind(self, consumer: str, value: Any, type_name: str, *, artifact: bool) -> dict[str, Any]:
        """The task-input spec that hands `value` to task `consumer` (a step or a group) in its DAG."""
        dag = self.task_dag(consumer)
        nested = None if artifact else self.passed_as(dag, value)
        if nested is not None:  # inside a nested pipeline, a value its caller passed is that pipeline's parameter
            holder, name = nested
            return self.carry_down(dag, name, f"pipelinechannel--{name}", PARAM_TYPES.get(type_name, "STRING"),
                                   source={"componentInputParameter": name}, source_dag=holder, artifact=False)
        if isinstance(value, ir.Const):
            return {"runtimeValue": {"constant": value.value}}
        if isinstance(value, ir.ParamRef):
            return self.carry_down(dag, value.name, f"pipelinechannel--{value.name}", PARAM_TYPES[self.param_type(value.name)],
                                   source={"componentInputParameter": value.name}, source_dag=None, artifact=False)
        if isinstance(value, ir.LoopItemRef):
            chan = self.loop_item_channel(value.loop)
            spec = self.carry_down(dag, chan, chan, self.loop_item_type(value.loop), source=None,
                                   source_dag=value.loop, artifact=False)
            if value.field:
                spec = {**spec, "parameterExpressionSelector": f"parseJson(string_value)[{json.dumps(value.field)}]"}
            return spec
        if isinstance(value, ir.OneOfRef):
            return self.bind_oneof(consumer, value, type_name, artifact=artifact)
        if isinstance(value, ir.CollectedRef):  # kfp's fan-in: each loop DAG re-exports the output as a LIST
            produced = self.steps[value.step].output(value.output)
            assert produced is not None
            chan = f"pipelinechannel--{self.names[value.step]}-{value.output}"
            if artifact:
                return self.hand_over(consumer, value.step, value.output, chan, produced.type, artifact=True, as_list=True)
            return self.hand_over(consumer, value.step, value.output, chan, "list", artifact=False)
        assert isinstance(value, ir.OutputRef)
        return self.bind_output(consumer, value, type_name, artifact=artifact)

    def passed_as(self, dag: str | None, value: Any) -> tuple[str, str] | None:
        """The innermost nested pipeline around `dag` whose caller passed `value` as a parameter, and its name."""
        for gid in reversed(self.path(dag)):
            g = self.groups.get(gid) if gid is not None else None
            if g is not None and g.kind == "pipeline":
                found = next((x.name for x in g.params or () if x.value == value), None)
                if found is not None:
                    return gid, found  # type: ignore[return-value]
        return None

    def return_name(self, group: str, source: str, key: str) -> str | None:
        """What a nested pipeline calls the output `key` of its task `source` when it returns it."""
        g = self.groups.get(group)
        if g is None or g.kind != "pipeline" or not g.returns:
            return None
        return next((name for name, ref in g.returns.items()
                     if self.names.get(ref.step) == source and ref.output == key), None)

    def param_type(self, name: str) -> str:
        if name == CODE_PARAM:
            return "str"
        found = self.p.parameter(name)
        assert found is not None
        return found.type

    def loop_item_channel(self, loop: str) -> str:
        items = self.groups[loop].items
        if items is not None and items.output is not None:  # kfp names the item after the list it iterates
            return f"{self.output_channel(items.output)}-loop-item"
        if items is not None and items.item is not None:
            return f"{self.item_list_channel(items.item)}-loop-item"
        if items is not None and items.param is not None:  # kfp's name, unless a loop around it takes it already
            around = [self.groups[g].items for g in self.path(self.groups[loop].parent) if g in self.groups]
            if not any(x is not None and x.param == items.param for x in around):
                return f"pipelinechannel--{items.param}-loop-item"
        return f"pipelinechannel--{self.names[loop]}-loop-item"

    def item_list_channel(self, ref: ir.LoopItemRef) -> str:
        chan = self.loop_item_channel(ref.loop)
        return f"{chan}-subvar-{ref.field}" if ref.field else chan

    def output_channel(self, ref: ir.OutputRef) -> str:
        return f"pipelinechannel--{self.names[ref.step]}-{ref.output}"

    def loop_item_type(self, loop: str) -> str:
        items = self.groups[loop].items
        if items is not None and items.output is not None:
            produced = self.steps[items.output.step].output(items.output.output)
            return PARAM_TYPES.get(produced.item_type or "str", "STRING") if produced else "STRING"
        if items is not None and items.item is not None:
            return self._inner_item_type(items.item)
        if items is None or items.static is None:
            return "STRING"
        kinds = {PARAM_TYPES.get(_scalar_kind(v), "STRING") for v in items.static}
        return kinds.pop() if len(kinds) == 1 else "STRING"

    def _inner_item_type(self, ref: ir.LoopItemRef) -> str:
        """The type of the items of `ParallelFor(config.lrs)`, where every outer item is known when compiling."""
        outer = self.groups[ref.loop].items
        if outer is None or outer.static is None:
            return "STRING"
        lists = [x.get(ref.field) if ref.field else x for x in outer.static if isinstance(x, dict) or not ref.field]
        kinds = {PARAM_TYPES.get(_scalar_kind(v), "STRING") for xs in lists if isinstance(xs, list) for v in xs}
        return kinds.pop() if len(kinds) == 1 else "STRING"

    def carry_down(self, dag: str | None, key: str, chan: str, ptype: str, *, source: dict[str, Any] | None,
                   source_dag: str | None, artifact: bool, atype: dict[str, Any] | None = None) -> dict[str, Any]:
        """Pass a value available in `source_dag` (as `source` there, or as its input `chan`) down to `dag`."""
        path = self.path(dag)
        start = path.index(source_dag)
        spec = source if source is not None else self.component_input(chan, artifact)
        for outer, inner in zip(path[start:], path[start + 1:]):
            assert inner is not None
            group_task = self.dags[outer].tasks.setdefault(self.names[inner], {})
            kind = "artifacts" if artifact else "parameters"
            group_task.setdefault("inputs", {}).setdefault(kind, {})[chan] = spec
            inner_dag = self.dags[inner]
            inner_dag.inputs[kind][chan] = {**atype} if artifact else {"parameterType": ptype}
            spec = self.component_input(chan, artifact)
        return spec

    @staticmethod
    def component_input(chan: str, artifact: bool) -> dict[str, Any]:
        return {"componentInputArtifact": chan} if artifact else {"componentInputParameter": chan}

    def bind_output(self, consumer: str, ref: ir.OutputRef, type_name: str, *, artifact: bool) -> dict[str, Any]:
        chan = f"pipelinechannel--{self.names[ref.step]}-{ref.output}"
        return self.hand_over(consumer, ref.step, ref.output, chan, type_name, artifact=artifact)

    def bind_oneof(self, consumer: str, v: ir.OneOfRef, type_name: str, *, artifact: bool) -> dict[str, Any]:
        """kfp's OneOf: each branch re-exports its step's output, and the chain's DAG picks the one that ran."""
        produced = self.steps[v.values[0].step].output(v.values[0].output)
        type_name = produced.type if produced is not None else type_name
        selectors = []
        holder = None
        for ref in v.values:
            path = self.path(self.steps[ref.step].group)
            branch = next(g for g in reversed(path) if g is not None and self.groups[g].parent is not None
                          and self.groups[self.groups[g].parent].kind == "branches")  # type: ignore[index]
            holder = self.groups[branch].parent
            chan = f"pipelinechannel--{self.names[ref.step]}-{ref.output}"
            task, key = self.names[ref.step], ref.output
            for inner in reversed(path[path.index(branch):]):
                assert inner is not None
                self.lift(self.dags[inner], chan, key, task, type_name, artifact)
                task, key = self.names[inner], chan
            selectors.append({"outputArtifactKey" if artifact else "outputParameterKey": key, "producerSubtask": task})
        assert holder is not None
        dag = self.dags[holder]
        kind = "artifacts" if artifact else "parameters"
        found = next((k for k, o in dag.outputs[kind].items() if "-oneof-" in k and
                      (o.get("artifactSelectors") or o.get("valueFromOneof", {}).get("parameterSelectors")) == selectors),
                     None)
        chan = found or f"pipelinechannel--{self.names[holder]}-oneof-{1 + sum('-oneof-' in k for d in dag.outputs.values() for k in d)}"
        if artifact:
            dag.outputs["artifacts"][chan] = {"artifactSelectors": selectors}
            dag.out_defs["artifacts"][chan] = {"artifactType": artifact_type(type_name)}
        else:
            dag.outputs["parameters"][chan] = {"valueFromOneof": {"parameterSelectors": selectors}}
            dag.out_defs["parameters"][chan] = {"parameterType": PARAM_TYPES.get(type_name, "STRING")}
        return self.hand_over(consumer, holder, chan, chan, type_name, artifact=artifact)

    def hand_over(self, consumer: str, source: str, key: str, chan: str, type_name: str, *,
                  artifact: bool, as_list: bool = False) -> dict[str, Any]:
        """The task input that gives `consumer` output `key` of `source` (a step, or a group's task), lifted out
        through DAG outputs named `chan` up to the DAG both share, then passed down to the consumer."""
        ptype = PARAM_TYPES.get(type_name, "STRING")
        atype = artifact_type(type_name) if artifact else None
        cpath, ppath = self.path(self.task_dag(consumer)), self.path(self.task_dag(source))
        common = 0
        while common < min(len(cpath), len(ppath)) and cpath[common] == ppath[common]:
            common += 1
        lca = cpath[common - 1]
        # up: from the producer's DAG to the LCA's child on the producer's side, through DAG outputs
        producer_task = self.names[source]
        for inner in reversed(ppath[common:]):
            assert inner is not None
            out = (self.return_name(inner, producer_task, key) if not as_list else None) or chan
            self.lift(self.dags[inner], out, key, producer_task, type_name, artifact, as_list=as_list)
            producer_task, key = self.names[inner], out
        self.depend(consumer, source)
        if artifact:
            source = {"taskOutputArtifact": {"outputArtifactKey": key, "producerTask": producer_task}}
        else:
            source = {"taskOutputParameter": {"outputParameterKey": key, "producerTask": producer_task}}
        if len(cpath) == common:
            return source
        return self.carry_down(self.task_dag(consumer), chan, chan, ptype, source=source, source_dag=lca,
                               artifact=artifact, atype={"artifactType": atype} if atype else None)

    def depend(self, consumer: str, producer: str) -> None:
        """Make the consumer's side depend on the producer's side at the DAG they share."""
        if consumer == _ROOT:
            return
        cpath = (*self.path(self.task_dag(consumer)), consumer)
        ppath = (*self.path(self.task_dag(producer)), producer)
        common = 0
        while common < min(len(cpath), len(ppath)) and cpath[common] == ppath[common]:
            common += 1
        if common >= min(len(cpath), len(ppath)):
            return
        lca = cpath[common - 1]
        c_side, p_side = cpath[common], ppath[common]
        task = self.dags[lca].tasks.setdefault(self.names[c_side], {})  # type: ignore[index]
        deps = task.setdefault("dependentTasks", [])
        if self.names[p_side] not in deps:  # type: ignore[index]
            deps.append(self.names[p_side])  # type: ignore[index]

    # -------------------------------------------------------------- steps
    def step(self, s: ir.Step) -> None:
        if s.kind == "container":
            self.container_step(s)
            return
        if s.kind == "importer":
            self.importer_step(s)
            return
        name = self.names[s.name]
        task = self.dags[s.group].tasks.setdefault(name, {})
        comp: dict[str, Any] = {"executorLabel": f"exec-{name}"}
        in_params: dict[str, Any] = {}
        in_arts: dict[str, Any] = {}
        task_params: dict[str, Any] = {}
        task_arts: dict[str, Any] = {}
        # Nothing that differs between runs is a task input: KFP and Vertex key their cache on the inputs. The
        # run is told by where the backend puts the step's meta, under the run's own pipeline root.
        args: list[str] = ["--meta", f"{{{{$.outputs.artifacts['{META_OUTPUT}'].uri}}}}",
                           "--run-root", f"{self.t.artifact_root}/{self.p.name}"]
        if self.t.meta_mirror:
            args += ["--mirror-step", s.name]
        upstream: dict[str, None] = {}
        for inp in s.inputs:
            if inp.value is None:
                continue
            if inp.type in ir.SCALAR_TYPES:
                task_params[inp.name] = self.bind(s.name, inp.value, inp.type, artifact=False)
                in_params[inp.name] = {"parameterType": PARAM_TYPES[inp.type]}
                args += ["--input", f"{inp.name}={{{{$.inputs.parameters['{inp.name}']}}}}"]
            elif isinstance(inp.value, ir.CollectedRef):
                produced = self.produced(inp.value)
                task_arts[inp.name] = self.bind(s.name, inp.value, produced.type, artifact=True)
                in_arts[inp.name] = {"artifactType": artifact_type(produced.type), "isArtifactList": True}
                if "--executor-input" not in args:
                    args += ["--executor-input", "{{$}}"]
                args += ["--input-artifact-list", inp.name]
                up = inp.value.step
                if self.steps[up].kind not in ("container", "importer"):  # their records: metadata, digests
                    key = f"{META_OUTPUT}_{self.names[up].replace('-', '_')}"
                    task_arts[key] = self.hand_over(s.name, up, META_OUTPUT, f"pipelinechannel--{self.names[up]}-{META_OUTPUT}",
                                                    "Artifact", artifact=True, as_list=True)
                    in_arts[key] = {"artifactType": artifact_type("Artifact"), "isArtifactList": True}
                    args += ["--upstream-list", f"{up}={key}"]
            else:
                produced = self.produced(inp.value)
                task_arts[inp.name] = self.bind(s.name, inp.value, produced.type, artifact=True)
                in_arts[inp.name] = {"artifactType": artifact_type(produced.type)}
                args += ["--input-artifact", f"{inp.name}={{{{$.inputs.artifacts['{inp.name}'].uri}}}}"]
                if isinstance(inp.value, ir.OutputRef) and self.steps[inp.value.step].kind not in ("container", "importer"):
                    upstream[inp.value.step] = None  # container steps and importers write no stackhop meta
        for up in upstream:
            key = f"{META_OUTPUT}_{self.names[up].replace('-', '_')}"
            task_arts[key] = self.bind(s.name, ir.OutputRef(step=up, output=META_OUTPUT), "Artifact", artifact=True)
            in_arts[key] = {"artifactType": artifact_type("Artifact")}
            args += ["--upstream", f"{up}={{{{$.inputs.artifacts['{key}'].uri}}}}"]
        for after in s.after:
            self.depend(s.name, after)
        task_params[CODE_PARAM] = self.bind(s.name, ir.ParamRef(name=CODE_PARAM), "str", artifact=False)
        in_params[CODE_PARAM] = {"parameterType": "STRING"}
        args += ["--code", f"{{{{$.inputs.parameters['{CODE_PARAM}']}}}}"]
        out_params: dict[str, Any] = {}
        out_arts: dict[str, Any] = {META_OUTPUT: {"artifactType": artifact_type("Artifact")}}
        for out in s.outputs:
            if out.type in ir.SCALAR_TYPES and not out.from_return:
                out_params[out.name] = {"parameterType": PARAM_TYPES[out.type]}
                args += ["--output-parameter", f"{out.name}={{{{$.outputs.parameters['{out.name}'].output_file}}}}"]
            else:
                out_arts[out.name] = {"artifactType": artifact_type(out.type)}
                args += ["--output-artifact", f"{out.name}={{{{$.outputs.artifacts['{out.name}'].uri}}}}"]
        own = ["--spec", self.spec_uri, "--step", s.name]
        if s.settings.timeout_seconds:
            own += ["--timeout", _number(s.settings.timeout_seconds)]
        exit_of = next((g for g in self.p.groups if g.kind == "exit_handler" and g.exit_step == s.name), None)
        if exit_of is not None:
            in_params[FINAL_STATUS_INPUT] = {"parameterType": "TASK_FINAL_STATUS", "isOptional": True}
            task_params[FINAL_STATUS_INPUT] = {"taskFinalStatus": {"producerTask": self.names[exit_of.id]}}
            args += ["--final-status", f"{{{{$.inputs.parameters['{FINAL_STATUS_INPUT}']}}}}"]
            self.depend(s.name, exit_of.id)
            task["triggerPolicy"] = {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
        self.finish(s, task, comp, {"parameters": in_params, "artifacts": in_arts},
                    {"parameters": out_params, "artifacts": out_arts}, {"parameters": task_params, "artifacts": task_arts})
        command = [self.t.python, "-m", "stackhop.entrypoint"]
        self.executors[f"exec-{name}"] = {"container": self.container(s, command, [*own, "--wiring", WIRING, *args],
                                                                      {"STACKHOP_STEP": s.name})}

    def finish(self, s: ir.Step, task: dict[str, Any], comp: dict[str, Any], ins: dict[str, Any], outs: dict[str, Any],
               task_inputs: dict[str, Any]) -> None:
        """What a step's component and task carry whatever runs in its container."""
        name = self.names[s.name]
        if any(ins.values()):
            comp["inputDefinitions"] = _drop_empty(ins)
        if any(outs.values()):
            comp["outputDefinitions"] = _drop_empty(outs)
        self.components[f"comp-{name}"] = comp
        task["componentRef"] = {"name": f"comp-{name}"}
        task["taskInfo"] = {"name": s.display_name or name}
        if any(task_inputs.values()):
            task["inputs"] = _drop_empty(task_inputs)
        task["cachingOptions"] = {"enableCache": s.settings.caching is not False}
        retry = s.settings.retry
        if retry and retry.max_retries:
            task["retryPolicy"] = {"maxRetryCount": retry.max_retries, "backoffDuration": f"{_number(retry.backoff_seconds)}s",
                                   "backoffFactor": retry.backoff_factor,
                                   "backoffMaxDuration": f"{_number(retry.max_backoff_seconds)}s"}

    def container_step(self, s: ir.Step) -> None:
        """A plain container component, as kfp compiles `@dsl.container_component`: the launcher moves the data."""
        assert s.container is not None
        name = self.names[s.name]
        task = self.dags[s.group].tasks.setdefault(name, {})
        given = present_inputs(s)
        types = {i.name: i.type for i in s.inputs}
        out_types = {o.name: o.type for o in s.outputs}
        in_params: dict[str, Any] = {}
        in_arts: dict[str, Any] = {}
        task_params: dict[str, Any] = {}
        task_arts: dict[str, Any] = {}
        for inp in s.inputs:
            scalar = inp.type in ir.SCALAR_TYPES
            optional = {"isOptional": True} if inp.has_default or inp.name not in given else {}
            if scalar:
                in_params[inp.name] = {"parameterType": PARAM_TYPES[inp.type], **optional}
                if inp.has_default and inp.default is not None:
                    in_params[inp.name] = {"defaultValue": inp.default, **in_params[inp.name]}
            else:
                in_arts[inp.name] = {"artifactType": artifact_type(inp.type), **optional}
            if inp.name not in given:
                continue
            assert inp.value is not None
            if scalar:
                task_params[inp.name] = self.bind(s.name, inp.value, inp.type, artifact=False)
            else:
                task_arts[inp.name] = self.bind(s.name, inp.value, self.produced(inp.value).type, artifact=True)
        for after in s.after:
            self.depend(s.name, after)
        out_params = {o.name: {"parameterType": PARAM_TYPES[o.type]} for o in s.outputs if o.type in ir.SCALAR_TYPES}
        out_arts = {o.name: {"artifactType": artifact_type(o.type)} for o in s.outputs if o.type not in ir.SCALAR_TYPES}
        exit_of = next((g for g in self.p.groups if g.kind == "exit_handler" and g.exit_step == s.name), None)
        if exit_of is not None:
            self.depend(s.name, exit_of.id)
            task["triggerPolicy"] = {"strategy": "ALL_UPSTREAM_TASKS_COMPLETED"}
        if s.settings.timeout_seconds:
            raise PipelineDefinitionError(
                f"{self.where(s.name)}: a container step's timeout cannot be enforced on {self.t.name} (a PipelineSpec task "
                "has no time limit and nothing of stackhop runs in its container); remove timeout_seconds from it, or "
                "bound the time in its own command (e.g. `timeout 600 ...`).")
        translate = _KfpArgs(self.where(s.name), types, out_types, given)
        self.finish(s, task, {"executorLabel": f"exec-{name}"}, {"parameters": in_params, "artifacts": in_arts},
                    {"parameters": out_params, "artifacts": out_arts}, {"parameters": task_params, "artifacts": task_arts})
        self.executors[f"exec-{name}"] = {"container": self.container(
            s, translate.items(s.container.command), translate.items(s.container.args), {})}

    def produced(self, value: Any) -> ir.OutputSpec:
        """The output an artifact input reads: a step's, or the first branch's of a OneOf (all have one type)."""
        first = value.values[0] if isinstance(value, ir.OneOfRef) else value
        assert isinstance(first, (ir.OutputRef, ir.CollectedRef))
        out = self.steps[first.step].output(first.output)
        assert out is not None
        return out

    def importer_step(self, s: ir.Step) -> None:
        """An importer task, as kfp compiles `dsl.importer`: the driver registers the URI, no container runs."""
        assert s.importer is not None
        name = self.names[s.name]
        task = self.dags[s.group].tasks.setdefault(name, {})
        uri = s.input("uri")
        assert uri is not None and uri.value is not None
        for after in s.after:
            self.depend(s.name, after)
        bound = self.bind(s.name, uri.value, "str", artifact=False)
        self.finish(s, task, {"executorLabel": f"exec-{name}"},
                    {"parameters": {"uri": {"parameterType": "STRING"}}, "artifacts": {}},
                    {"parameters": {}, "artifacts": {"artifact": {"artifactType": artifact_type(s.importer.artifact_type)}}},
                    {"parameters": {"uri": bound}, "artifacts": {}})
        spec: dict[str, Any] = {"artifactUri": {"constant": uri.value.value} if isinstance(uri.value, ir.Const)
                                else {"runtimeParameter": "uri"}}
        if s.importer.metadata:
            spec["metadata"] = dict(sorted(s.importer.metadata.items()))
        if s.importer.reimport:
            spec["reimport"] = True
        spec["typeSchema"] = artifact_type(s.importer.artifact_type)
        self.executors[f"exec-{name}"] = {"importer": spec}

    def container(self, s: ir.Step, command: list[str], args: list[str], own_env: dict[str, str]) -> dict[str, Any]:
        st = s.settings
        if not st.image:
            raise PipelineDefinitionError(
                f"{self.where(s.name)} has no image; set it on the step, the pipeline or the stack (defaults.image).")
        out: dict[str, Any] = {"image": st.image, "command": command}
        if args:
            out["args"] = args
        env = {**st.env, **own_env}
        if env:
            out["env"] = [{"name": k, "value": v} for k, v in sorted(env.items())]
        resources = self.resources(s)
        if resources:
            out["resources"] = resources
        if self.t.platform:
            self.platform_config(s)
        return out

    def resources(self, s: ir.Step) -> dict[str, Any]:
        r = s.settings.resources
        if r is None:
            return {}
        out: dict[str, Any] = {}
        cpu_limit, mem_limit = r.cpu_limit_millicores, r.memory_limit_bytes
        if self.t.limits_only:
            cpu_limit = cpu_limit or r.cpu_millicores
            mem_limit = mem_limit or r.memory_bytes
        else:
            if r.cpu_millicores:
                out["cpuRequest"] = r.cpu_millicores / 1000
                out["resourceCpuRequest"] = format_cpu(r.cpu_millicores)
            if r.memory_bytes:
                out["memoryRequest"] = r.memory_bytes / 1e9
                out["resourceMemoryRequest"] = format_bytes(r.memory_bytes)
        if cpu_limit:
            out["cpuLimit"] = cpu_limit / 1000
            out["resourceCpuLimit"] = format_cpu(cpu_limit)
        if mem_limit:
            out["memoryLimit"] = mem_limit / 1e9
            out["resourceMemoryLimit"] = format_bytes(mem_limit)
        if r.accelerator:
            assert self.t.accelerator is not None
            acc = self.t.accelerator(r.accelerator.type, self.where(s.name))
            count = str(r.accelerator.count)
            out["accelerator"] = {"type": acc.type, "count": count, "resourceType": acc.type, "resourceCount": count}
        return out

    def platform_config(self, s: ir.Step) -> None:
        st = s.settings
        config: dict[str, Any] = {}
        labels = dict(st.node_selector)
        tolerations = [t.model_dump(exclude_none=True) for t in st.tolerations]
        if st.resources and st.resources.accelerator and self.t.accelerator:
            acc = self.t.accelerator(st.resources.accelerator.type, self.where(s.name))
            labels = {**acc.node_selector, **labels}
            gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            if gpu not in tolerations and self.t.settings.get("gpu_toleration", True):
                tolerations.append(gpu)
        if labels:
            config["nodeSelector"] = {"labels": dict(sorted(labels.items()))}
        if tolerations:
            config["tolerations"] = tolerations
        if s.secrets:
            by_secret: dict[str, list[dict[str, str]]] = {}
            for ref in s.secrets:
                by_secret.setdefault(ref.name, []).append({"secretKey": ref.key, "envVar": ref.env})
            config["secretAsEnv"] = [
                {"secretName": name, "secretNameParameter": {"runtimeValue": {"constant": name}}, "keyToEnv": keys,
                 "optional": False}
                for name, keys in sorted(by_secret.items())
            ]
        if self.t.image_pull_secrets:
            config["imagePullSecret"] = [{"secretName": n, "secretNameParameter": {"runtimeValue": {"constant": n}}}
                                         for n in self.t.image_pull_secrets]
        if config:
            self.platform[f"exec-{self.names[s.name]}"] = config

    # -------------------------------------------------------------- groups
    def group(self, g: ir.Group) -> None:
        name = self.names[g.id]
        task = self.dags[g.parent].tasks.setdefault(name, {})
        task["componentRef"] = {"name": f"comp-{name}"}
        task["taskInfo"] = {"name": name}
        if g.kind == "pipeline":
            task["cachingOptions"] = {"enableCache": True}
            for x in g.params or ():  # kfp's nested DAG takes the inner pipeline's parameters by name
                task.setdefault("inputs", {}).setdefault("parameters", {})[x.name] = self.bind(
                    g.id, x.value, x.type, artifact=False)
                self.dags[g.id].inputs["parameters"][x.name] = self.root_parameter(x)
        if g.kind == "condition":
            assert g.condition is not None
            task["triggerPolicy"] = {"condition": self.cel(g, g.condition)}
        elif g.kind == "parallel_for":
            assert g.items is not None
            chan = self.loop_item_channel(g.id)
            if g.items.static is not None:
                items: dict[str, Any] = {"raw": json.dumps(list(g.items.static), sort_keys=True, separators=(",", ":"))}
            elif g.items.item is not None:  # kfp's loop over a field of the outer item: a "-subvar-" channel
                bound = self.bind(g.id, g.items.item, "list", artifact=False)
                items_chan = self.item_list_channel(g.items.item)
                task.setdefault("inputs", {}).setdefault("parameters", {})[items_chan] = bound
                self.dags[g.id].inputs["parameters"][items_chan] = {"parameterType": "LIST"}
                items = {"inputParameter": items_chan}
            elif g.items.output is not None:
                bound = self.bind(g.id, g.items.output, "list", artifact=False)
                items_chan = self.output_channel(g.items.output)
                task.setdefault("inputs", {}).setdefault("parameters", {})[items_chan] = bound
                self.dags[g.id].inputs["parameters"][items_chan] = {"parameterType": "LIST"}
                items = {"inputParameter": items_chan}
            else:
                assert g.items.param is not None
                bound = self.bind(g.id, ir.ParamRef(name=g.items.param), "list", artifact=False)
                items_chan = f"pipelinechannel--{g.items.param}"
                task.setdefault("inputs", {}).setdefault("parameters", {})[items_chan] = bound
                self.dags[g.id].inputs["parameters"][items_chan] = {"parameterType": "LIST"}
                items = {"inputParameter": items_chan}
            task["parameterIterator"] = {"itemInput": chan, "items": items}
            self.dags[g.id].inputs["parameters"][chan] = {"parameterType": self.loop_item_type(g.id)}
            if g.parallelism:
                task["iteratorPolicy"] = {"parallelismLimit": g.parallelism}

    def cel(self, g: ir.Group, e: Any) -> str:
        if isinstance(e, ir.Compare):
            left, right = self.cel_operand(g, e.left), self.cel_operand(g, e.right)
            if e.op == "in":
                return f"{left} in {right}"
            if e.op == "not in":
                return f"!({left} in {right})"
            return f"{left} {_CEL_OPS[e.op]} {right}"
        if isinstance(e, ir.Not):
            return f"!({self.cel(g, e.operand)})"
        assert isinstance(e, ir.BoolOp)
        joiner = " && " if e.kind == "and" else " || "  # only a nested && or || needs parentheses, as kfp writes it
        return joiner.join(f"({self.cel(g, x)})" if isinstance(x, ir.BoolOp) else self.cel(g, x) for x in e.operands)

    def cel_operand(self, g: ir.Group, v: Any) -> str:
        if isinstance(v, ir.Const):
            return _cel_literal(v.value)
        if isinstance(v, ir.ParamRef):
            type_name, chan = self.param_type(v.name), f"pipelinechannel--{v.name}"
        elif isinstance(v, ir.LoopItemRef):
            type_name, chan = "str", self.loop_item_channel(v.loop)
            if v.field:
                chan = f"{chan}-{v.field}"
        else:
            assert isinstance(v, ir.OutputRef)
            out = self.steps[v.step].output(v.output)
            assert out is not None
            type_name, chan = out.type, f"pipelinechannel--{self.names[v.step]}-{v.output}"
        spec = self.bind(g.id, v, type_name, artifact=False)
        task = self.dags[g.parent].tasks[self.names[g.id]]
        task.setdefault("inputs", {}).setdefault("parameters", {})[chan] = spec
        ptype = PARAM_TYPES.get(type_name, "STRING") if not isinstance(v, ir.LoopItemRef) else (
            "STRING" if v.field else self.loop_item_type(v.loop))
        self.dags[g.id].inputs["parameters"][chan] = {"parameterType": ptype}
        text = f"inputs.parameter_values['{chan}']"
        return f"int({text})" if type_name == "int" else text

    # -------------------------------------------------------------- assembly
    def compile(self) -> tuple[dict[str, Any], dict[str, Any] | None]:
        for s in self.p.steps:
            self.step(s)
        for g in self.p.groups:
            self.group(g)
        root_outputs = self.root_outputs()
        for g in self.p.groups:
            dag = self.dags[g.id]
            comp: dict[str, Any] = {"dag": _drop_empty({"tasks": _sorted(dag.tasks), "outputs": _drop_empty(dag.outputs)})}
            if any(dag.inputs.values()):
                comp["inputDefinitions"] = _drop_empty(dag.inputs)
            if any(dag.out_defs.values()):
                comp["outputDefinitions"] = _drop_empty(dag.out_defs)
            self.components[f"comp-{self.names[g.id]}"] = comp
        root_params = {x.name: self.root_parameter(x) for x in self.p.parameters}
        root_params[CODE_PARAM] = {"parameterType": "STRING", "defaultValue": "", "isOptional": True}
        for task in self.dags[None].tasks.values():
            if "dependentTasks" in task:
                task["dependentTasks"] = sorted(task["dependentTasks"])
        for dag in self.dags.values():
            for task in dag.tasks.values():
                if "dependentTasks" in task:
                    task["dependentTasks"] = sorted(task["dependentTasks"])
        spec: dict[str, Any] = {
            "pipelineInfo": {"name": self.p.name, **({"description": self.p.description} if self.p.description else {})},
            "sdkVersion": SDK_VERSION,
            "schemaVersion": SCHEMA_VERSION,
            "components": _sorted(self.components),
            "deploymentSpec": {"executors": _sorted(self.executors)},
            "root": {"dag": {"tasks": _sorted(self.dags[None].tasks)},
                     "inputDefinitions": {"parameters": _sorted(root_params)}},
            "defaultPipelineRoot": self.t.artifact_root,
        }
        if root_outputs is not None:
            spec["root"]["dag"]["outputs"], spec["root"]["outputDefinitions"] = root_outputs
        platform = None
        if self.platform:
            platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": _sorted(self.platform)}}}}
        return spec, platform

    def root_outputs(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The pipeline's returned outputs as the root DAG's outputs, lifted out of any exit handler's sub-DAG."""
        if not self.p.outputs:
            return None
        outputs: dict[str, dict[str, Any]] = {"parameters": {}, "artifacts": {}}
        defs: dict[str, dict[str, Any]] = {"parameters": {}, "artifacts": {}}
        for o in self.p.outputs:
            if isinstance(o.value, ir.OneOfRef):
                produced = self.produced(o.value)
                artifact = not (produced.type in ir.SCALAR_TYPES and not produced.from_return)
                spec = self.bind_oneof(_ROOT, o.value, produced.type, artifact=artifact)
                self.root_output(outputs, defs, o.name, spec, produced.type, artifact)
                continue
            if isinstance(o.value, ir.CollectedRef):
                chan = f"pipelinechannel--{self.names[o.value.step]}-{o.value.output}"
                spec = self.hand_over(_ROOT, o.value.step, o.value.output, chan, "list", artifact=False)
                self.root_output(outputs, defs, o.name, spec, "list", False)
                continue
            producer = self.steps[o.value.step]
            produced = producer.output(o.value.output)
            assert produced is not None
            artifact = not (produced.type in ir.SCALAR_TYPES and not produced.from_return)
            chan = f"pipelinechannel--{self.names[producer.name]}-{o.value.output}"
            task, key = self.names[producer.name], o.value.output
            for inner in reversed(self.path(producer.group)[1:]):
                assert inner is not None
                out = self.return_name(inner, task, key) or chan
                self.lift(self.dags[inner], out, key, task, produced.type, artifact)
                task, key = self.names[inner], out
            if artifact:
                outputs["artifacts"][o.name] = {"artifactSelectors": [{"outputArtifactKey": key, "producerSubtask": task}]}
                defs["artifacts"][o.name] = {"artifactType": artifact_type(produced.type)}
            else:
                outputs["parameters"][o.name] = {"valueFromParameter": {"outputParameterKey": key, "producerSubtask": task}}
                defs["parameters"][o.name] = {"parameterType": PARAM_TYPES[produced.type]}
        return _drop_empty(outputs), _drop_empty(defs)

    @staticmethod
    def root_output(outputs: dict[str, Any], defs: dict[str, Any], name: str, spec: dict[str, Any], type_name: str,
                    artifact: bool) -> None:
        """A root output from the task input that would hand the value to a task at the root."""
        if artifact:
            src = spec["taskOutputArtifact"]
            outputs["artifacts"][name] = {"artifactSelectors": [{"outputArtifactKey": src["outputArtifactKey"],
                                                                 "producerSubtask": src["producerTask"]}]}
            defs["artifacts"][name] = {"artifactType": artifact_type(type_name)}
        else:
            src = spec["taskOutputParameter"]
            outputs["parameters"][name] = {"valueFromParameter": {"outputParameterKey": src["outputParameterKey"],
                                                                  "producerSubtask": src["producerTask"]}}
            defs["parameters"][name] = {"parameterType": PARAM_TYPES[type_name]}

    @staticmethod
    def lift(dag: _Dag, chan: str, key: str, task: str, type_name: str, artifact: bool, *, as_list: bool = False) -> None:
        """Make `task`'s output `key` an output `chan` of the sub-DAG it sits in."""
        if artifact:
            dag.outputs["artifacts"][chan] = {"artifactSelectors": [{"outputArtifactKey": key, "producerSubtask": task}]}
            dag.out_defs["artifacts"][chan] = {"artifactType": artifact_type(type_name),
                                               **({"isArtifactList": True} if as_list else {})}
        else:
            dag.outputs["parameters"][chan] = {"valueFromParameter": {"outputParameterKey": key, "producerSubtask": task}}
            dag.out_defs["parameters"][chan] = {"parameterType": PARAM_TYPES.get(type_name, "STRING")}

    def root_parameter(self, x: ir.Parameter) -> dict[str, Any]:
        out: dict[str, Any] = {"parameterType": PARAM_TYPES[x.type]}
        if x.description:
            out["description"] = x.description
        if x.has_default:
            if x.default is not None:  # Optional[...] = None: optional with no default, as kfp writes it
                out["defaultValue"] = x.default
            out["isOptional"] = True
        return out


_ROOT = "\0root"
"""The consumer name of the pipeline's own outputs: it sits at the root and depends on nothing."""


class _KfpArgs:
    """A container step's command items in the KFP launcher's placeholder language.

    kfp's compiler writes IfPresent and Concat as JSON-string arguments, but the backends do not
    all expand them: Kubeflow Pipelines resolves IfPresent only since 2.17 (input parameters only,
    text branches only) and never expands Concat, and Vertex AI has been reported to pass IfPresent
    through as text (googleapis/python-aiplatform#4164). Every launcher substitutes placeholders
    inside a longer argument, and whether a step instance is given an input is known now, so an
    IfPresent becomes its branch and a Concat one argument: the same run on every backend."""

    def __init__(self, where: str, types: dict[str, str], out_types: dict[str, str], given: set[str]):
        self.where, self.types, self.out_types, self.given = where, types, out_types, given

    def items(self, items: tuple[ir.Arg, ...]) -> list[str]:
        out = []
        for item in resolve_presence(items, self.given):
            if isinstance(item, ir.Concat):
                out.append("".join(x if isinstance(x, str) else self.placeholder(x) for x in item.concat))
            else:
                out.append(item if isinstance(item, str) else self.placeholder(item))
        return out

    def placeholder(self, p: ir.Placeholder) -> str:
        kind = p.placeholder
        scalar = (self.out_types if p.is_output else self.types)[p.name] in ir.SCALAR_TYPES
        if kind == "input_value":
            if not scalar:
                raise PipelineDefinitionError(
                    f"{self.where}: InputValue({p.name!r}) names an artifact; use InputPath or InputUri for it.")
            return f"{{{{$.inputs.parameters['{p.name}']}}}}"
        if kind == "output_path" and scalar:
            return f"{{{{$.outputs.parameters['{p.name}'].output_file}}}}"
        if scalar:
            fix = "InputValue" if kind.startswith("input") else "OutputPath"
            raise PipelineDefinitionError(
                f"{self.where}: {_PLACEHOLDER_NAMES[kind]}({p.name!r}) names a scalar, and the KFP launcher hands scalar "
                f"inputs only as text and takes scalar outputs only from a file; use {fix}({p.name!r}) instead.")
        side = "outputs" if p.is_output else "inputs"
        return f"{{{{$.{side}.artifacts['{p.name}'].{'uri' if kind.endswith('uri') else 'path'}}}}}"


_PLACEHOLDER_NAMES = {"input_value": "InputValue", "input_path": "InputPath", "input_uri": "InputUri",
                      "output_path": "OutputPath", "output_uri": "OutputUri"}


def _scalar_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "str"
    return "dict" if isinstance(v, dict) else "list"


def _cel_literal(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_cel_literal(x) for x in v) + "]"
    raise PipelineDefinitionError(f"a condition compares with {v!r}, which CEL cannot express; compare scalars or lists.")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _sorted(d: dict[str, Any]) -> dict[str, Any]:
    return {k: d[k] for k in sorted(d)}


def _drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v}


def compile_pipeline_spec(p: ir.Pipeline, target: Target) -> tuple[dict[str, Any], dict[str, Any] | None, str, str]:
    """(PipelineSpec, platform spec or None, run-spec text, run-spec URI). Pure: no clock, no network."""
    compiler = _Compiler(p, target)
    spec, platform = compiler.compile()
    return spec, platform, compiler.spec_text, compiler.spec_uri


def task_names(p: ir.Pipeline) -> dict[str, str]:
    """PipelineSpec task name -> IR step name, for mapping a backend's task details back to steps."""
    return {task_name(s.name): s.name for s in p.steps}
