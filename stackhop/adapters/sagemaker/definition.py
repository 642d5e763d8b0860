"""IR -> SageMaker pipeline definition JSON (Version 2020-12-01), emitted directly, deterministically.

One Processing step per IR step runs `python -m stackhop.entrypoint` in the step's image,
with `--wiring` naming `SageMakerWiring` (runtime.py), which parses the arguments after it.
What differs between executions reaches the step through SageMaker's own expressions:
`Execution.PipelineExecutionId` is the run id, pipeline parameters arrive with `Get`, and the
code archive is the `StackhopCode` parameter. Each step writes `outputs.json` both to the
artifact store and to a processing output named `stackhop`, which is its PropertyFile: a
condition reads a scalar with `Std:JsonGet`, and a downstream step finds an upstream step's
files through `Steps.<name>.ProcessingOutputConfig...S3Uri`, so a step SageMaker served
from its cache still hands the right location on. The run spec (IR and settings) is a
second compiled file, stored under its own content hash, so the definition stays the same
bytes for the same IR and stack.

A container step is two Processing steps. The first runs the step's own image with the user's
command and args, nothing of stackhop in it: artifact inputs and scalars a command reads from a
file arrive as ProcessingInputs under `/opt/ml/processing/input/<input>/`, values as arguments
(`Get`, `Std:Join`, `Std:JsonGet`), and each OutputPath is `/opt/ml/processing/output/<name>/<name>`,
whose directory a ProcessingOutput uploads beside the step's other outputs, so the file or
directory the command wrote is the artifact at `{step}/<name>` in the run layout. The second,
`<step>-outputs`, runs in the stackhop image and turns those files into the step's record and
PropertyFile (`stackhop.adapters.sagemaker.record`), which SageMaker cannot do from a raw text
file; conditions and downstream steps read the container step through it.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from stackhop.adapters.sagemaker.runtime import SageMakerWiring
from stackhop.adapters.sagemaker.settings import SageMakerSettings
from stackhop.core import ir
from stackhop.core.canonical import canonical_json
from stackhop.core.resolve import instance_key
from stackhop.core.wiring import wiring_ref
from stackhop.errors import PipelineDefinitionError

VERSION = "2020-12-01"
CODE_PARAM = "StackhopCode"
OUTPUT_NAME = "stackhop"
PROPERTY_FILE = "StackhopOutputs"
LOCAL_META = "/opt/ml/processing/stackhop"
CONTAINER_INPUT = "/opt/ml/processing/input"
CONTAINER_OUTPUT = "/opt/ml/processing/output"
RECORD_SUFFIX = "-outputs"
RECORD_MODULE = "stackhop.adapters.sagemaker.record"
MAX_INLINE_BYTES = 1_000_000
WIRING = wiring_ref(SageMakerWiring)
_PARAM_TYPES = {"str": "String", "int": "Integer", "float": "Float", "bool": "Boolean", "list": "String", "dict": "String"}
_COMPARE = {"==": "Equals", "!=": "NotEquals", "<": "LessThan", "<=": "LessThanOrEqualTo", ">": "GreaterThan",
            ">=": "GreaterThanOrEqualTo"}


def spec_document(p: ir.Pipeline, settings: SageMakerSettings, artifact_root: str) -> tuple[str, str]:
    """The static part of every execution's run spec, and the URI it is stored at (by content)."""
    text = canonical_json({
        "run_id": "", "pipeline": json.loads(p.to_json()),
        "parameters": {x.name: x.default for x in p.parameters if x.has_default},
        "artifact_root": artifact_root, "code": {}, "caching": True,
        "settings": settings.model_dump(mode="json"),
    })
    digest = hashlib.sha256(text.encode()).hexdigest()
    return text, f"{artifact_root}/_stackhop/specs/{digest}.json"


def _join(*values: Any, on: str = "/") -> dict[str, Any]:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def _execution_id() -> dict[str, str]:
    return {"Get": "Execution.PipelineExecutionId"}


SM_NAME_MAX = 64
Index = tuple[int, ...]


def _candidate(base: str, index: Index, scheme: int) -> str:
    """Scheme 0 is `train-0-1`; later schemes (`train_0_1`, `train_0_1_v2` ...) only serve to avoid a name in use.

    `_` never appears in the names the DSL makes up (`train-2`, `train-3`), so scheme 1 cannot meet them."""
    if scheme == 0:
        name = base + "".join(f"-{i}" for i in index)
    else:
        name = base + "".join(f"_{i}" for i in index) + ("" if scheme == 1 and index else f"_v{scheme}")
    if len(name) > SM_NAME_MAX:  # SageMaker's limit; keep it unique with a hash of the whole name
        name = name[: SM_NAME_MAX - 9].rstrip("-_") + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return name


def _static_instances(p: ir.Pipeline, step: ir.Step) -> list[Index] | None:
    """Every loop index of the step, outermost loop first; None when a loop's list is only known at run time."""
    loops = _loops(p, step)
    indexes: list[Index] = [()]
    for pos in range(len(loops)):
        deeper: list[Index] = []
        for ix in indexes:
            items = static_items(loops, pos, ix)
            if items is None:
                return None
            deeper += [ix + (i,) for i in range(len(items))]
        indexes = deeper
    return indexes


def _loops(p: ir.Pipeline, step: ir.Step) -> list[ir.Group]:
    return [g for g in reversed(p.group_chain(step.group)) if g.kind == "parallel_for"]


def static_items(loops: list[ir.Group], pos: int, index: Index) -> list[Any] | None:
    """The items of `loops[pos]` at the iteration `index` of the loops around it, where they are known when
    compiling: a static list, or a list in the item of a loop around it over one (`ParallelFor(config.lrs)`)."""
    items = loops[pos].items
    if items is not None and items.static is not None:
        return list(items.static)
    ref = items.item if items is not None else None
    if ref is None:
        return None
    at = next(i for i, g in enumerate(loops[:pos]) if g.id == ref.loop)
    outer = static_items(loops, at, index)
    if outer is None:
        return None
    item = outer[index[at]]
    value = (item.get(ref.field) if isinstance(item, dict) else None) if ref.field else item
    return list(value) if isinstance(value, (list, tuple)) else None


def _condition_chain(p: ir.Pipeline, step: ir.Step) -> tuple[str, ...]:
    return tuple(g.id for g in reversed(p.group_chain(step.group)) if g.kind == "condition")


def step_names(p: ir.Pipeline) -> tuple[dict[tuple[str, Index], str], dict[tuple[tuple[str, ...], Index], str]]:
    """The SageMaker name of every step instance and of every ConditionStep: unique, and a function of the IR alone.

    A step outside loops keeps its own name. The instances of an unrolled step are `step-<i>`,
    unless one of those is already in use (a later call auto-named `step-2`, say): then all of
    that step's instances move to the next scheme that is free (`step_<i>`, then `step_<i>_v2` ...).
    Steps come first, in pipeline order, then ConditionSteps (`Check-<group>-<i>`), so a name
    never depends on anything but the pipeline, and nobody is asked to rename a step."""
    names: dict[tuple[str, Index], str] = {}
    taken: set[str] = set()
    looped: list[tuple[str, list[Index]]] = []
    families: dict[tuple[str, ...], dict[Index, None]] = {}
    for s in p.steps:
        indexes = _static_instances(p, s)
        if indexes is None:
            continue
        if indexes == [()]:
            names[(s.name, ())] = s.name
            taken.add(s.name)
        else:
            looped.append((s.name, indexes))
        chain = _condition_chain(p, s)
        if chain:
            families.setdefault(chain, {}).update(dict.fromkeys(indexes))

    def allocate(base: str, indexes: list[Index]) -> dict[Index, str]:
        scheme = 0
        while True:
            chosen = {ix: _candidate(base, ix, scheme) for ix in indexes}
            if len(set(chosen.values())) == len(chosen) and not taken & set(chosen.values()):
                taken.update(chosen.values())
                return chosen
            scheme += 1

    for step, indexes in looped:
        names.update({(step, ix): name for ix, name in allocate(step, indexes).items()})
    checks = {(chain, ix): name for chain, indexes in families.items()
              for ix, name in allocate("Check-" + chain[-1], list(indexes)).items()}
    return names, checks


def record_names(p: ir.Pipeline) -> dict[tuple[str, Index], str]:
    """The SageMaker name of the step that records each container step instance's outputs: `<name>-outputs`,
    or the first `<name>-outputs-<n>` no other step uses; a function of the IR alone, like `step_names`."""
    names, checks = step_names(p)
    taken = set(names.values()) | set(checks.values())
    out: dict[tuple[str, Index], str] = {}
    for (step, index), name in names.items():
        if p.step(step).kind != "container":
            continue
        n = 1
        while True:
            candidate = _candidate(name + RECORD_SUFFIX + ("" if n == 1 else f"-{n}"), (), 0)
            if candidate not in taken:
                break
            n += 1
        taken.add(candidate)
        out[(step, index)] = candidate
    return out


class _Compiler:
    def __init__(self, p: ir.Pipeline, settings: SageMakerSettings, artifact_root: str, instance_type: Any,
                 stack_image: str | None = None):
        self.p = p
        self.stack_image = stack_image
        self.settings = settings
        self.root = artifact_root
        self.instance_type = instance_type
        self.groups = {g.id: g for g in p.groups}
        self.spec_text, self.spec_uri = spec_document(p, settings, artifact_root)
        self.names: dict[tuple[str, tuple[int, ...]], str] = {}
        self.check_names: dict[tuple[tuple[str, ...], tuple[int, ...]], str] = {}
        self.record_names: dict[tuple[str, tuple[int, ...]], str] = {}

    def record_of(self, step: str, index: tuple[int, ...]) -> str:
        """The SageMaker step whose `stackhop` output and PropertyFile hold this instance's record."""
        return self.record_names.get((step, index)) or self.names[(step, index)]

    def where(self, step: str) -> str:
        return f"pipeline {self.p.name!r}, step {step!r}"

    # -------------------------------------------------------------- expansion
    def instances(self, step: ir.Step) -> list[tuple[int, ...]]:
        indexes = _static_instances(self.p, step)
        if indexes is None:
            loops = _loops(self.p, step)
            g = next((g for g in loops if g.items is not None and g.items.param is not None), loops[-1])
            what = f"parameter {g.items.param!r}" if g.items and g.items.param else "a list"
            raise PipelineDefinitionError(
                f"{self.where(step.name)} loops over {what}, a list only known at run time; SageMaker Pipelines "
                "cannot fan out at run time, so loop over a static list."
            )
        return indexes

    def loops(self, step: str) -> list[str]:
        return [g.id for g in reversed(self.p.group_chain(self.p.step(step).group)) if g.kind == "parallel_for"]

    def depends_on(self, step: ir.Step, index: tuple[int, ...]) -> list[str]:
        """The instances of each `.after()` step this instance waits for: the same iteration of the loops both
        are in, and every iteration of the loops only the upstream step is in."""
        out = [self.record_of(up, ix) for up in step.after if self.p.step(up).kind != "importer"  # nothing runs for it
               for ix in self.matching(step, self.p.step(up), index)]
        return sorted(set(out))

    def matching(self, step: ir.Step, up: ir.Step, index: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The instances of `up` an instance of `step` waits for: the same iteration of the loops both are in, and
        every iteration of the loops only `up` is in."""
        mine, theirs = self.loops(step.name), self.loops(up.name)
        common = 0
        while common < min(len(mine), len(theirs)) and mine[common] == theirs[common]:
            common += 1
        return [ix for ix in self.instances(up) if ix[:common] == index[:common]]

    def loop_item(self, step: ir.Step, ref: ir.LoopItemRef, index: tuple[int, ...]) -> Any:
        loops = _loops(self.p, step)
        pos = next(i for i, g in enumerate(loops) if g.id == ref.loop)
        item = static_items(loops, pos, index)[index[pos]]  # type: ignore[index]
        return item[ref.field] if ref.field else item

    # -------------------------------------------------------------- values
    def upstream_of(self, step: ir.Step) -> list[str]:
        """Steps whose records this one reads; an importer has none, its record follows from the run spec."""
        ups = [i.value.step for i in step.inputs
               if isinstance(i.value, ir.OutputRef) and self.p.step(i.value.step).kind != "importer"]
        return list(dict.fromkeys(ups))

    def collected_of(self, step: ir.Step, index: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
        """The unrolled iterations a Collected input of this instance gathers, in iteration order."""
        for i in step.inputs:
            if isinstance(i.value, ir.CollectedRef) and (
                    set(_condition_chain(self.p, self.p.step(i.value.step))) - set(_condition_chain(self.p, step))):
                raise PipelineDefinitionError(
                    f"{self.where(step.name)} collects {i.value.step}.{i.value.output}, which runs under an If inside "
                    "its loop; a SageMaker step cannot read the properties of a step its ConditionStep skipped, so "
                    "collect a step outside the If, or run this pipeline on kfp, kubernetes, local or vertex.")
        out = [(i.value.step, ix) for i in step.inputs if isinstance(i.value, ir.CollectedRef)
               for ix in self.matching(step, self.p.step(i.value.step), index)]
        return list(dict.fromkeys(out))

    def imported_uri(self, ref: ir.OutputRef) -> Any:
        """What an importer's artifact is in the definition: its URI, written out or a parameter."""
        uri = self.p.step(ref.step).input("uri")
        assert uri is not None and isinstance(uri.value, (ir.Const, ir.ParamRef))
        return uri.value.value if isinstance(uri.value, ir.Const) else {"Get": f"Parameters.{uri.value.name}"}

    def property_value(self, ref: ir.OutputRef, index: tuple[int, ...]) -> dict[str, Any]:
        up = self.p.step(ref.step)
        if up.name in self.settings.training_steps:
            raise PipelineDefinitionError(
                f"pipeline {self.p.name!r}: a condition reads output {ref.output!r} of step {up.name!r}, which the stack "
                "runs as a Training job; SageMaker conditions read Processing steps' property files, so remove it "
                "from settings.training_steps."
            )
        return self.record_value(ref, index, f"scalars.{ref.output}")

    def record_value(self, ref: ir.OutputRef, index: tuple[int, ...], path: str) -> dict[str, Any]:
        """A value of an upstream step's record, read from its PropertyFile as SageMaker does."""
        up = self.p.step(ref.step)
        name = self.record_of(up.name, index[: len(self.instances(up)[0])])
        return {"Std:JsonGet": {"PropertyFile": {"Get": f"Steps.{name}.PropertyFiles.{PROPERTY_FILE}"}, "Path": path}}

    def record_uri(self, up: str, index: tuple[int, ...]) -> dict[str, Any]:
        """Where an upstream step's `_stackhop` files are: its record step's `stackhop` output."""
        name = self.record_of(up, index[: len(self.instances(self.p.step(up))[0])])
        return {"Get": f"Steps.{name}.ProcessingOutputConfig.Outputs['{OUTPUT_NAME}'].S3Output.S3Uri"}

    def operand(self, v: Any, consumer: ir.Step, index: tuple[int, ...]) -> Any:
        if isinstance(v, ir.Const):
            return v.value
        if isinstance(v, ir.ParamRef):
            return {"Get": f"Parameters.{v.name}"}
        if isinstance(v, ir.LoopItemRef):
            return self.loop_item(consumer, v, index)
        return self.property_value(v, index)

    def condition(self, e: Any, consumer: ir.Step, index: tuple[int, ...]) -> list[dict[str, Any]]:
        """A list, because SageMaker ANDs the conditions of one ConditionStep."""
        if isinstance(e, ir.Compare):
            left, right = self.operand(e.left, consumer, index), self.operand(e.right, consumer, index)
            if e.op in ("in", "not in"):
                cond = {"Type": "In", "QueryValue": left, "Values": right if isinstance(right, list) else [right]}
                return [cond if e.op == "in" else {"Type": "Not", "Expression": cond}]
            return [{"Type": _COMPARE[e.op], "LeftValue": left, "RightValue": right}]
        if isinstance(e, ir.Not):
            inner = self.condition(e.operand, consumer, index)
            if len(inner) != 1:
                raise PipelineDefinitionError(
                    f"{self.where(consumer.name)}: SageMaker cannot negate a conjunction; rewrite ~(a & b) as ~a | ~b."
                )
            return [{"Type": "Not", "Expression": inner[0]}]
        assert isinstance(e, ir.BoolOp)
        parts = [c for op in e.operands for c in self.condition(op, consumer, index)]
        return parts if e.kind == "and" else [{"Type": "Or", "Conditions": parts}]

    # -------------------------------------------------------------- steps
    def processing_step(self, step: ir.Step, index: tuple[int, ...]) -> dict[str, Any]:
        st = step.settings
        name = self.names[(step.name, index)]
        if step.fail is not None:
            fail: dict[str, Any] = {"Name": name, "Type": "Fail", "Arguments": {"ErrorMessage": step.fail.message}}
            depends = self.depends_on(step, index)
            if depends:
                fail["DependsOn"] = depends
            return fail
        if not st.image:
            raise PipelineDefinitionError(
                f"{self.where(step.name)} has no image; set it on the step, the pipeline or the stack (defaults.image)."
            )
        if not self.settings.role_arn:
            raise PipelineDefinitionError(
                f"pipeline {self.p.name!r}: SageMaker needs an execution role; set settings.role_arn on the stack."
            )
        if step.container is not None:
            return self.container_step(step, index)
        args: list[Any] = ["--spec", self.spec_uri, "--step", step.name]
        if index:
            args += ["--index", ",".join(str(i) for i in index)]
        args += ["--wiring", WIRING, "--run-id", _execution_id()]
        for param in self.p.parameters:
            args += ["--param", _join(param.name, {"Get": f"Parameters.{param.name}"}, on="=")]
        args += ["--code", {"Get": f"Parameters.{CODE_PARAM}"}]
        for up, up_index in self.collected_of(step, index):  # each iteration's record, named by its instance
            args += ["--upstream", _join(instance_key(up, up_index), self.record_uri(up, up_index), on="=")]
        for up in self.upstream_of(step):
            up_step = self.p.step(up)
            up_index = index[: len(self.instances(up_step)[0])]
            if up in self.settings.training_steps:  # no processing outputs to point at: use its path
                uri: Any = self.meta_uri(up, up_index)
            else:
                uri = self.record_uri(up, up_index)
            args += ["--upstream", _join(up, uri, on="=")]
        training = step.name in self.settings.training_steps
        if not training:
            args += ["--property-dir", LOCAL_META]
        choice = self.instance_type(step)
        volume = self.settings.volume_size_gb
        if st.resources and st.resources.disk_bytes:
            volume = max(volume, math.ceil(st.resources.disk_bytes / 2**30))
        env = {**st.env, "STACKHOP_STEP": step.name}
        if training:
            return self.training_step(step, index, name, args, choice, volume, env)
        arguments: dict[str, Any] = {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": choice, "InstanceCount": 1,
                                                      "VolumeSizeInGB": volume}},
            "AppSpecification": {"ImageUri": st.image, "ContainerEntrypoint": [self.settings.python, "-m",
                                                                              "stackhop.entrypoint"],
                                 "ContainerArguments": args},
            "RoleArn": self.settings.role_arn,
            "ProcessingOutputConfig": {"Outputs": [{
                "OutputName": OUTPUT_NAME,
                "S3Output": {"S3Uri": self.meta_uri(step.name, index), "LocalPath": LOCAL_META,
                             "S3UploadMode": "EndOfJob"},
            }]},
        }
        arguments["Environment"] = dict(sorted(env.items()))
        if st.timeout_seconds:
            arguments["StoppingCondition"] = {"MaxRuntimeInSeconds": int(math.ceil(st.timeout_seconds))}
        doc: dict[str, Any] = {"Name": name, "Type": "Processing", "Arguments": arguments,
                               "PropertyFiles": [{"PropertyFileName": PROPERTY_FILE, "OutputName": OUTPUT_NAME,
                                                  "FilePath": "outputs.json"}]}
        return self.common(step, index, doc)

    def container_step(self, step: ir.Step, index: tuple[int, ...]) -> dict[str, Any]:
        """The step's own image running the user's command; see the module docstring for how data moves."""
        from stackhop.adapters.sagemaker.container import ContainerArgs

        if step.name in self.settings.training_steps:
            raise PipelineDefinitionError(
                f"{self.where(step.name)} is a container step, which SageMaker runs as a Processing job; remove it from "
                "settings.training_steps.")
        built = ContainerArgs(self, step, index)
        app: dict[str, Any] = {"ImageUri": step.settings.image}
        if built.command:
            app["ContainerEntrypoint"] = built.command
        if built.args:
            app["ContainerArguments"] = built.args
        volume = self.settings.volume_size_gb
        st = step.settings
        if st.resources and st.resources.disk_bytes:
            volume = max(volume, math.ceil(st.resources.disk_bytes / 2**30))
        arguments: dict[str, Any] = {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": self.instance_type(step), "InstanceCount": 1,
                                                      "VolumeSizeInGB": volume}},
            "AppSpecification": app,
            "RoleArn": self.settings.role_arn,
        }
        if built.inputs:
            arguments["ProcessingInputs"] = built.inputs
        if built.outputs:
            arguments["ProcessingOutputConfig"] = {"Outputs": built.outputs}
        if st.env:
            arguments["Environment"] = dict(sorted(st.env.items()))
        if st.timeout_seconds:
            arguments["StoppingCondition"] = {"MaxRuntimeInSeconds": int(math.ceil(st.timeout_seconds))}
        doc: dict[str, Any] = {"Name": self.names[(step.name, index)], "Type": "Processing", "Arguments": arguments}
        doc = self.common(step, index, doc)
        if built.written_at_uri:  # a cache hit would not write them at this execution's URIs, where the record looks
            doc["CacheConfig"]["Enabled"] = False
        return doc

    def record_step(self, step: ir.Step, index: tuple[int, ...], outputs: dict[str, Any]) -> dict[str, Any]:
        """The container step's outputs as a stackhop record and PropertyFile, made in the stackhop image."""
        name = self.names[(step.name, index)]
        image = self.record_image(step)
        args: list[Any] = ["--spec", self.spec_uri, "--step", step.name]
        if index:
            args += ["--index", ",".join(str(i) for i in index)]
        args += ["--wiring", WIRING, "--run-id", _execution_id(), "--property-dir", LOCAL_META]
        for out, uri in outputs.items():
            args += ["--output", _join(out, uri, on="=")]
        quiet = step.model_copy(update={"settings": step.settings.model_copy(update={"resources": None})})
        arguments: dict[str, Any] = {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": self.instance_type(quiet), "InstanceCount": 1,
                                                      "VolumeSizeInGB": self.settings.volume_size_gb}},
            "AppSpecification": {"ImageUri": image, "ContainerEntrypoint": [self.settings.python, "-m", RECORD_MODULE],
                                 "ContainerArguments": args},
            "RoleArn": self.settings.role_arn,
            "ProcessingOutputConfig": {"Outputs": [{
                "OutputName": OUTPUT_NAME,
                "S3Output": {"S3Uri": self.meta_uri(step.name, index), "LocalPath": LOCAL_META,
                             "S3UploadMode": "EndOfJob"},
            }]},
            "Environment": {"STACKHOP_STEP": step.name},
        }
        doc: dict[str, Any] = {"Name": self.record_names[(step.name, index)], "Type": "Processing",
                               "Arguments": arguments, "DependsOn": [name],
                               "PropertyFiles": [{"PropertyFileName": PROPERTY_FILE, "OutputName": OUTPUT_NAME,
                                                  "FilePath": "outputs.json"}]}
        if step.display_name:
            doc["DisplayName"] = f"{step.display_name[:56]} outputs"
        doc["CacheConfig"] = {"Enabled": step.settings.caching is not False,
                              "ExpireAfter": self.settings.cache_expire_after}
        return doc

    def record_image(self, step: ir.Step) -> str:
        """The image that records container steps' outputs: it needs stackhop, so it is never the step's own.

        A Python step's image has stackhop in it and has been through the stack's registry mapping
        and digest pinning, so it is preferred over the stack's default reference."""
        if self.settings.record_image:
            return self.settings.record_image
        image = next((s.settings.image for s in self.p.steps if s.kind == "python" and s.settings.image),
                     self.stack_image)
        if image is None:
            raise PipelineDefinitionError(
                f"{self.where(step.name)} is a container step, and SageMaker needs an image with stackhop in it to "
                "record its outputs; set settings.record_image (or defaults.image) on the stack.")
        return image

    def step_dir(self, step: str, index: tuple[int, ...]) -> dict[str, Any]:
        """`{root}/{pipeline}/{execution}/{step}[/{index}...]`: the run layout's prefix of one step instance."""
        return _join(f"{self.root}/{self.p.name}", _execution_id(), "/".join([step, *(str(i) for i in index)]))

    def meta_uri(self, step: str, index: tuple[int, ...]) -> dict[str, Any]:
        return _join(f"{self.root}/{self.p.name}", _execution_id(), "/".join([step, *(str(i) for i in index), "_stackhop"]))

    def training_step(self, step: ir.Step, index: tuple[int, ...], name: str, args: list[Any], instance: str,
                      volume: int, env: dict[str, str]) -> dict[str, Any]:
        """A Training job: the entrypoint writes to the artifact store itself, so no channels are needed."""
        st = step.settings
        arguments = {
            "AlgorithmSpecification": {"TrainingImage": st.image, "TrainingInputMode": "File",
                                       "ContainerEntrypoint": [self.settings.python, "-m", "stackhop.entrypoint"],
                                       "ContainerArguments": args},
            "OutputDataConfig": {"S3OutputPath": _join(self.meta_uri(step.name, index), "training", on="/")},
            "ResourceConfig": {"InstanceType": instance, "InstanceCount": 1, "VolumeSizeInGB": volume},
            "RoleArn": self.settings.role_arn,
            "StoppingCondition": {"MaxRuntimeInSeconds": int(math.ceil(st.timeout_seconds or 86400))},
            "Environment": dict(sorted(env.items())),
        }
        return self.common(step, index, {"Name": name, "Type": "Training", "Arguments": arguments})

    def common(self, step: ir.Step, index: tuple[int, ...], doc: dict[str, Any]) -> dict[str, Any]:
        st = step.settings
        if step.display_name:
            doc["DisplayName"] = step.display_name[:64]
        depends = self.depends_on(step, index)
        if depends:
            doc["DependsOn"] = depends
        if st.retry and st.retry.max_retries:
            doc["RetryPolicies"] = [
                {"ExceptionType": t, "IntervalSeconds": max(1, int(st.retry.backoff_seconds)),
                 "BackoffRate": st.retry.backoff_factor, "MaxAttempts": st.retry.max_retries}
                for t in self.settings.retry_exception_types
            ]
        doc["CacheConfig"] = {"Enabled": st.caching is not False, "ExpireAfter": self.settings.cache_expire_after}
        return doc

    def compile(self) -> dict[str, Any]:
        unknown = sorted(set(self.settings.training_steps) - {s.name for s in self.p.steps})
        if unknown:
            raise PipelineDefinitionError(
                f"pipeline {self.p.name!r}: settings.training_steps names {unknown[0]!r}, which is not a step; "
                f"its steps are {', '.join(s.name for s in self.p.steps)}."
            )
        for s in self.p.steps:
            self.instances(s)  # a loop over a runtime list is an error before anything is named
        self.names, self.check_names = step_names(self.p)
        self.record_names = record_names(self.p)
        top: list[dict[str, Any]] = []
        # SageMaker cannot nest ConditionSteps, so each distinct chain of enclosing If blocks
        # (per loop index) becomes one ConditionStep whose conditions are ANDed.
        conditional: dict[tuple[tuple[str, ...], tuple[int, ...]], list[tuple[ir.Step, dict[str, Any]]]] = {}
        for s in self.p.steps:
            if s.kind == "importer":  # no step: consumers read its URI directly
                continue
            chain = _condition_chain(self.p, s)
            for index in self.instances(s):
                doc = self.processing_step(s, index)
                docs = [doc]
                if s.container is not None:
                    docs.append(self.record_step(s, index, self.container_outputs(doc, s, index)))
                for d in docs:
                    if chain:
                        conditional.setdefault((chain, index), []).append((s, d))
                    else:
                        top.append(d)
        for (chain, index), members in conditional.items():
            consumer = members[0][0]
            conditions = [c for gid in chain for c in self.condition(self.groups[gid].condition, consumer, index)]
            top.append({"Name": self.check_names[(chain, index)], "Type": "Condition",
                        "Arguments": {"Conditions": conditions, "IfSteps": [d for _, d in members], "ElseSteps": []}})
        parameters = [self.parameter(x) for x in self.p.parameters]
        parameters.append({"Name": CODE_PARAM, "Type": "String", "DefaultValue": ""})
        return {"Version": VERSION, "Metadata": {}, "Parameters": parameters, "Steps": top}

    def container_outputs(self, doc: dict[str, Any], step: ir.Step, index: tuple[int, ...]) -> dict[str, Any]:
        """Where each output of a compiled container step is, as its record step reads it (a cache hit included)."""
        uploaded = {o["OutputName"] for o in doc["Arguments"].get("ProcessingOutputConfig", {}).get("Outputs", [])}
        out: dict[str, Any] = {}
        for o in step.outputs:
            if o.name in uploaded:
                got = {"Get": f"Steps.{doc['Name']}.ProcessingOutputConfig.Outputs['{o.name}'].S3Output.S3Uri"}
                out[o.name] = _join(got, o.name, on="/")
            else:
                out[o.name] = _join(self.step_dir(step.name, index), o.name, on="/")
        return out

    def parameter(self, x: ir.Parameter) -> dict[str, Any]:
        out: dict[str, Any] = {"Name": x.name, "Type": _PARAM_TYPES[x.type]}
        if x.has_default and x.default is None:
            raise PipelineDefinitionError(
                f"pipeline {self.p.name!r}: parameter {x.name!r} defaults to None, which a SageMaker pipeline "
                "parameter cannot hold; give it a default of its type, or run the pipeline on another adapter.")
        if x.has_default:
            if x.type in ("list", "dict"):
                out["DefaultValue"] = canonical_json(x.default)
            else:
                out["DefaultValue"] = x.default
        return out


def instance_names(pipeline: dict[str, Any]) -> dict[str, str]:
    """SageMaker step name -> stackhop's instance key (`train-1` -> `train[1]`), from the IR's JSON."""
    names, _checks = step_names(ir.Pipeline.model_validate(pipeline))  # the names compile gave them
    return {name: instance_key(step, index) for (step, index), name in names.items()}


def compile_definition(
    p: ir.Pipeline, settings: SageMakerSettings, artifact_root: str, instance_type: Any, stack_image: str | None = None
) -> tuple[dict[str, Any], str, str]:
    """(definition, spec text, spec URI). `instance_type(step) -> str` picks each step's type; `stack_image`, the
    stack's default image, records container steps' outputs when no Python step's image (or setting) says otherwise."""
    compiler = _Compiler(p, settings, artifact_root, instance_type, stack_image)
    return compiler.compile(), compiler.spec_text, compiler.spec_uri
