"""The pipeline IR: the one contract every adapter reads.

Frozen, JSON round-trip exact, and content-hashed: `Pipeline.digest()` is the same for the
same pipeline on any machine and any Python run, which is what caching, release manifests
and promotion rely on. The DSL produces it; adapters only read it.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stackhop.core.accelerators import canonical_accelerator
from stackhop.core.canonical import canonical_json
from stackhop.core.image_settings import ImageSettings, Reference
from stackhop.errors import ValidationError

IR_VERSION = 1

SCALAR_TYPES = ("str", "int", "float", "bool", "list", "dict")
ARTIFACT_TYPES = (
    "Artifact",
    "Dataset",
    "Model",
    "Metrics",
    "ClassificationMetrics",
    "HTML",
    "Markdown",
)
ScalarType = Literal["str", "int", "float", "bool", "list", "dict"]
ArtifactType = Literal[
    "Artifact", "Dataset", "Model", "Metrics", "ClassificationMetrics", "HTML", "Markdown"
]
JsonValue = Any


def is_artifact_type(type_name: str) -> bool:
    return type_name in ARTIFACT_TYPES


MAX_TIMEOUT_SECONDS = 315_360_000  # ten years: more than any backend waits, and within every int field

class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---------------------------------------------------------------- values a step input can take


class Const(_Frozen):
    kind: Literal["const"] = "const"
    value: JsonValue


class ParamRef(_Frozen):
    kind: Literal["param"] = "param"
    name: str


class OutputRef(_Frozen):
    kind: Literal["output"] = "output"
    step: str
    output: str


class LoopItemRef(_Frozen):
    """The current item of an enclosing ParallelFor, or one key of it when items are dicts."""

    kind: Literal["loop_item"] = "loop_item"
    loop: str
    field: str | None = None


class CollectedRef(_Frozen):
    """Every iteration's value of an output of a step inside ParallelFor loops, as one list in iteration order.

    Read by a step outside the loops it collects over; nested loops flatten, as kfp's `dsl.Collected` does."""

    kind: Literal["collected"] = "collected"
    step: str
    output: str


class OneOfRef(_Frozen):
    """The output of whichever branch of one If/Elif/Else chain ran (kfp's `dsl.OneOf`)."""

    kind: Literal["oneof"] = "oneof"
    values: tuple[OutputRef, ...]


Value = Annotated[Union[Const, ParamRef, OutputRef, LoopItemRef, CollectedRef, OneOfRef], Field(discriminator="kind")]


# ---------------------------------------------------------------- condition expressions


class Compare(_Frozen):
    kind: Literal["compare"] = "compare"
    op: Literal["==", "!=", "<", "<=", ">", ">=", "in", "not in"]
    left: Value
    right: Value


class BoolOp(_Frozen):
    kind: Literal["and", "or"]
    operands: tuple["Expr", ...]


class Not(_Frozen):
    kind: Literal["not"] = "not"
    operand: "Expr"


Expr = Annotated[Union[Compare, BoolOp, Not], Field(discriminator="kind")]
BoolOp.model_rebuild()
Not.model_rebuild()


def describe_value(v: object, *, prose: bool = False) -> str:
    """`train.output` for diagrams, "output 'output' of step 'train'" for error messages."""
    if isinstance(v, OutputRef):
        return f"output {v.output!r} of step {v.step!r}" if prose else f"{v.step}.{v.output}"
    if isinstance(v, ParamRef):
        return f"parameter {v.name!r}" if prose else f"params.{v.name}"
    if isinstance(v, LoopItemRef):
        return f"the item of {v.loop}" if prose else "item" + (f".{v.field}" if v.field else "")
    if isinstance(v, CollectedRef):
        return f"Collected(output {v.output!r} of step {v.step!r})" if prose else f"Collected({v.step}.{v.output})"
    if isinstance(v, OneOfRef):
        return "OneOf(" + ", ".join(describe_value(x, prose=prose) for x in v.values) + ")"
    return repr(getattr(v, "value", v))


def describe_expr(e: object) -> str:
    if isinstance(e, Compare):
        return f"{describe_value(e.left)} {e.op} {describe_value(e.right)}"
    if isinstance(e, Not):
        return f"not ({describe_expr(e.operand)})"
    if isinstance(e, BoolOp):
        return f" {e.kind} ".join(f"({describe_expr(x)})" for x in e.operands)
    return "?"


def expr_values(expr: Compare | BoolOp | Not) -> list[Const | ParamRef | OutputRef | LoopItemRef | CollectedRef]:
    """Every leaf value an expression reads, in order."""
    if isinstance(expr, Compare):
        return [expr.left, expr.right]
    if isinstance(expr, Not):
        return expr_values(expr.operand)
    return [v for operand in expr.operands for v in expr_values(operand)]


# ---------------------------------------------------------------- per-step settings


class Accelerator(_Frozen):
    type: str
    count: int = Field(ge=1)

    @field_validator("type")
    @classmethod
    def _canonical(cls, v: str) -> str:
        return canonical_accelerator(v, where="accelerator")


class Resources(_Frozen):
    """Requests and limits in exact units, so equal amounts compare equal however spelled.

    Users write "2"/"500m" and "4Gi"; `parse_resources` turns that into these integers once.
    """

    cpu_millicores: int | None = Field(default=None, gt=0)
    cpu_limit_millicores: int | None = Field(default=None, gt=0)
    memory_bytes: int | None = Field(default=None, gt=0)
    memory_limit_bytes: int | None = Field(default=None, gt=0)
    disk_bytes: int | None = Field(default=None, gt=0)
    accelerator: Accelerator | None = None

    @model_validator(mode="after")
    def _limits_not_below_requests(self) -> "Resources":
        for req, lim in (("cpu_millicores", "cpu_limit_millicores"), ("memory_bytes", "memory_limit_bytes")):
            r, l = getattr(self, req), getattr(self, lim)
            if r is not None and l is not None and l < r:
                raise ValueError(f"the {lim.split('_')[0]} limit is below the request; raise the limit or lower the request")
        return self

    def merged_over(self, base: "Resources | None") -> "Resources":
        """Fields set here win; unset fields fall back to `base`."""
        if base is None:
            return self
        data = base.model_dump(exclude_none=True)
        data.update(self.model_dump(exclude_none=True))
        return Resources.model_validate(data)


class RetryPolicy(_Frozen):
    max_retries: int = Field(ge=0, le=100)
    backoff_seconds: float = Field(default=1.0, ge=0)
    backoff_factor: float = Field(default=2.0, ge=1)
    max_backoff_seconds: float = Field(default=300.0, ge=0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        return min(self.backoff_seconds * self.backoff_factor ** (attempt - 1), self.max_backoff_seconds)


class SecretRef(_Frozen):
    """A secret exposed to the step as an environment variable. Only the reference is stored."""

    env: str
    name: str
    key: str


class Toleration(_Frozen):
    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class Placeholder(_Frozen):
    """Stands in a container command for an input's value, path or URI, or an output's path or URI."""

    placeholder: Literal["input_value", "input_path", "input_uri", "output_path", "output_uri"]
    name: str

    @property
    def is_output(self) -> bool:
        return self.placeholder.startswith("output_")


class Concat(_Frozen):
    """One argument made of several parts joined with nothing between (KFP's `concat`)."""

    concat: tuple["Arg", ...]


class IfPresent(_Frozen):
    """`then` where the step is given input `if_present`, else `otherwise` (KFP's `if`/`isPresent`).

    Whether an input is given is known when the pipeline is built, so backends may resolve
    this at compile time; a reusable component keeps it for its own document."""

    if_present: str
    then: tuple["Arg", ...] = ()
    otherwise: tuple["Arg", ...] = ()


Arg = Union[str, Placeholder, Concat, IfPresent]
"""One item of a container command: text, a placeholder, or a construct of them."""


class PythonCall(_Frozen):
    """Where a Python step's function is, and the identity of all the code it runs.

    A step defined in an importable module is imported by name in the step process. One
    defined in `__main__` (a notebook, a REPL, a script run directly) travels by value: as
    `source` to execute, or, when no source could be read, `pickled` (cloudpickle, base64)
    for the same Python minor version only.
    """

    module: str
    qualname: str
    code_digest: str
    """Digest of `code_parts`: part of the cache key, so an edit to any code the step reaches invalidates it."""
    code_parts: dict[str, str] = Field(default_factory=dict)
    """What the step's code reaches (functions, classes, values, imports, project modules) -> digest."""
    source: str | None = None
    pickled: str | None = None
    python: str | None = None
    imports_project: bool = False
    """A by-value step that imports project modules still needs the source tree shipped."""
    script: str | None = None
    """For a script run directly: its path in the source tree, the `__file__` its shipped lines see."""
    packages: tuple[str, ...] = ()
    """pip requirements installed when the step starts (KFP's packages_to_install), for iterating without a build."""

    @property
    def by_value(self) -> bool:
        return self.source is not None or self.pickled is not None


Concat.model_rebuild()
IfPresent.model_rebuild()


class ContainerSpec(_Frozen):
    """A step that runs an image's own command as written: nothing of stackhop enters the image."""

    image: Reference
    command: tuple[Arg, ...]
    args: tuple[Arg, ...] = ()


class FieldCondition(_Frozen):
    """`status.phase == Running`: a field path on the live object, an operator, a literal."""

    path: str
    op: Literal["==", "!=", "<", "<=", ">", ">="]
    value: str | int | float | bool


class ManifestParameter(_Frozen):
    """A manifest field whose value is a pipeline parameter's, known only when a run starts.

    The manifest holds null at `path` (keys and list indexes from the top); the backend puts
    the run's value there just before it creates the object, so it keeps the parameter's type."""

    path: tuple[str | int, ...] = Field(min_length=1)
    parameter: str


FIXED_MANIFEST_FIELDS: dict[tuple[str, ...], str] = {
    ("apiVersion",): "the object's type must be known when the pipeline compiles",
    ("kind",): "the object's type must be known when the pipeline compiles",
    ("metadata",): "stackhop adds its labels and annotations there",
    ("metadata", "labels"): "stackhop adds its labels there",
    ("metadata", "annotations"): "stackhop adds its annotations there",
}
"""Manifest fields a pipeline parameter cannot fill whole, and why; a value inside them it can."""


def field_path(path: tuple[str | int, ...] | list[str | int]) -> str:
    """`spec.containers[0].image`: a manifest field as users write it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def with_fields(manifest: dict[str, JsonValue], values: dict[tuple[str | int, ...], JsonValue]) -> dict[str, JsonValue]:
    """A copy of `manifest` with each path set to its value; the paths exist (validation checked them)."""
    import copy

    doc = copy.deepcopy(manifest)
    for path, value in values.items():
        node: Any = doc
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = copy.deepcopy(value)
    return doc


class ResourceOpSpec(_Frozen):
    manifest: dict[str, JsonValue]
    action: Literal["create", "apply", "patch", "delete"]
    success_conditions: tuple[FieldCondition, ...] = ()
    failure_conditions: tuple[FieldCondition, ...] = ()
    output_fields: dict[str, str] = Field(default_factory=dict)
    parameters: tuple[ManifestParameter, ...] = ()


class FailSpec(_Frozen):
    """Stop the run as failed with this message (a SageMaker FailStep; elsewhere a step that fails)."""

    message: str = Field(min_length=1, max_length=1024)


class ImporterSpec(_Frozen):
    """An artifact that already exists, brought into the run: nothing is copied, its URI (the step's input
    `uri`) is the artifact, as a kfp importer registers one."""

    artifact_type: str
    metadata: dict[str, JsonValue] = {}
    reimport: bool = False


class InputSpec(_Frozen):
    name: str
    type: str
    value: Value | None = None
    default: JsonValue = None
    has_default: bool = False
    as_value: bool = False
    """For artifact inputs annotated with a plain Python type: hand the step the loaded value."""
    is_list: bool = False
    """A list of artifacts of `type` (`Input[list[Dataset]]`), which only Collected(...) gives."""


class OutputSpec(_Frozen):
    name: str
    type: str
    from_return: bool = False
    """A return value stored as an artifact (bytes, numpy, pandas ...) through a materializer."""
    materializer: str | None = None
    """The materializer chosen from the return annotation when traced ("auto": from the value at run time)."""
    item_type: ScalarType | None = None
    """For a `list[X]` output of scalars X: X, so a ParallelFor over it knows its items' type (kfp's item type)."""


class StepSettings(_Frozen):
    """Everything a pipeline, a stack override or a step may set; None means 'not set here'."""

    image: Reference | None = None
    image_build: ImageSettings | None = None
    """Build the step's image from these settings; the built reference then replaces `image`."""
    resources: Resources | None = None
    retry: RetryPolicy | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=MAX_TIMEOUT_SECONDS)
    caching: bool | None = None
    env: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()


class Step(_Frozen):
    name: str
    kind: Literal["python", "container", "resource", "fail", "importer"]
    display_name: str | None = None
    python: PythonCall | None = None
    container: ContainerSpec | None = None
    resource: ResourceOpSpec | None = None
    fail: FailSpec | None = None
    importer: ImporterSpec | None = None
    inputs: tuple[InputSpec, ...] = ()
    outputs: tuple[OutputSpec, ...] = ()
    after: tuple[str, ...] = ()
    group: str | None = None
    settings: StepSettings = StepSettings()
    secrets: tuple[SecretRef, ...] = ()
    allow_pickle: bool = False

    def input(self, name: str) -> InputSpec | None:
        return next((i for i in self.inputs if i.name == name), None)

    def output(self, name: str) -> OutputSpec | None:
        return next((o for o in self.outputs if o.name == name), None)


class LoopItems(_Frozen):
    """Exactly one of: a list known when the pipeline is written, a list parameter, a list a step returns at run
    time, or the item of an enclosing loop (or a field of it: `ParallelFor(config.lrs)`)."""

    static: tuple[JsonValue, ...] | None = None
    param: str | None = None
    output: OutputRef | None = None
    item: LoopItemRef | None = None


class Group(_Frozen):
    id: str
    kind: Literal["condition", "parallel_for", "exit_handler", "branches", "pipeline"]
    """"branches" holds the branches of one If/Elif/Else chain, "pipeline" the steps of a nested pipeline's
    call; both run whenever their parent does."""
    parent: str | None = None
    condition: Expr | None = None
    items: LoopItems | None = None
    parallelism: int | None = Field(default=None, ge=1)
    key: str | None = None
    """The dict field that names each iteration (`train[lr=0.05]`); None: named after the item where it can be."""
    pipeline: str | None = None
    """For a nested pipeline's call: its name in the caller (`prepare`, `prepare-2`), the prefix of its steps."""
    params: tuple["NestedParam", ...] | None = None
    """For a nested pipeline's call: its parameters and what the caller passed, for documents that keep the nesting."""
    returns: dict[str, OutputRef] | None = None
    """For a nested pipeline's call: what it returned, by name."""
    exit_step: str | None = None


class Parameter(_Frozen):
    name: str
    type: ScalarType
    default: JsonValue = None
    has_default: bool = False
    description: str = ""


class NestedParam(Parameter):
    """A nested pipeline's parameter, and what its caller passed for it."""

    value: Value


Group.model_rebuild()


class PipelineOutput(_Frozen):
    """What a pipeline function returns, by name: an output of a step that runs whenever the run succeeds,
    every iteration's value of one in a loop (Collected), or the one branch's of a chain that ran (OneOf)."""

    name: str
    type: str
    value: Annotated[Union[OutputRef, CollectedRef, OneOfRef], Field(discriminator="kind")]

    @property
    def sources(self) -> tuple[OutputRef, ...]:
        """The step outputs it is made of."""
        v = self.value
        if isinstance(v, OneOfRef):
            return v.values
        return (OutputRef(step=v.step, output=v.output),)


class Pipeline(_Frozen):
    ir_version: Literal[1] = IR_VERSION
    name: str
    description: str = ""
    parameters: tuple[Parameter, ...] = ()
    steps: tuple[Step, ...]
    groups: tuple[Group, ...] = ()
    defaults: StepSettings = StepSettings()
    outputs: tuple[PipelineOutput, ...] = ()

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def group(self, group_id: str) -> Group:
        for g in self.groups:
            if g.id == group_id:
                return g
        raise KeyError(group_id)

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def group_chain(self, group_id: str | None) -> list[Group]:
        """Enclosing groups of a step, innermost first."""
        chain: list[Group] = []
        by_id = {g.id: g for g in self.groups}
        while group_id is not None:
            g = by_id[group_id]
            chain.append(g)
            group_id = g.parent
        return chain

    def edges(self) -> list[tuple[str, str]]:
        """(upstream, downstream) pairs: data dependencies, `.after()`, condition reads, exit handlers."""
        by_id = {g.id: g for g in self.groups}
        pairs: set[tuple[str, str]] = set()
        for s in self.steps:
            for up in step_dependencies(s, by_id):
                pairs.add((up, s.name))
        for g in self.groups:
            if g.kind == "exit_handler" and g.exit_step:
                for s in self.steps:
                    if g.id in _ancestors(s.group, by_id):
                        pairs.add((s.name, g.exit_step))
        return sorted(pairs)

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        if not data["outputs"]:
            del data["outputs"]  # so a pipeline that returns nothing keeps the digest it always had
        for g in data["groups"]:  # fields added later are written only when set, for the same reason
            if g.get("items") and g["items"]["output"] is None:
                del g["items"]["output"]
            for late in ("key", "pipeline", "params", "returns"):
                if g[late] is None:
                    del g[late]
        for st in data["steps"]:
            if st["importer"] is None:
                del st["importer"]
            for o in st["outputs"]:
                if o["item_type"] is None:
                    del o["item_type"]
            for i in st["inputs"]:
                if not i["is_list"]:
                    del i["is_list"]
        return canonical_json(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Pipeline":
        """An IR from its JSON; anything that is not a valid IR is one sentence naming the field."""
        import json

        import pydantic

        from stackhop.core.ir_build import describe_pydantic_error  # lazy: cycle, core.ir_build imports this module

        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ValidationError(f"the pipeline IR is not valid JSON ({exc}); pass what Pipeline.to_json() wrote.") from None
        try:
            pipeline = cls.model_validate(data)
            pipeline.to_json()
        except pydantic.ValidationError as exc:
            raise ValidationError(f"the pipeline IR is invalid: {describe_pydantic_error(exc, data)}") from None
        except ValueError as exc:  # NaN or infinity: JSON cannot hold them
            raise ValidationError(f"the pipeline IR holds a value JSON cannot represent ({exc}); use finite numbers.") from None
        return pipeline

    def digest(self) -> str:
        """sha256 of the canonical JSON: stable across machines and Python runs."""
        return "sha256:" + hashlib.sha256(self.to_json().encode()).hexdigest()


def _ancestors(group_id: str | None, by_id: dict[str, Group]) -> list[str]:
    out = []
    while group_id is not None:
        out.append(group_id)
        group_id = by_id[group_id].parent
    return out


def step_dependencies(step: Step, groups_by_id: dict[str, Group]) -> list[str]:
    """Steps that must finish before `step` may start (not counting exit-handler edges)."""
    ups: list[str] = list(step.after)
    for i in step.inputs:
        if isinstance(i.value, (OutputRef, CollectedRef)):
            ups.append(i.value.step)
        if isinstance(i.value, OneOfRef):
            ups.extend(x.step for x in i.value.values)
    gid = step.group
    while gid is not None:
        g = groups_by_id[gid]
        if g.condition is not None:
            ups.extend(v.step for v in expr_values(g.condition) if isinstance(v, OutputRef))
        if g.items is not None and g.items.output is not None:
            ups.append(g.items.output.step)
        gid = g.parent
    return list(dict.fromkeys(u for u in ups if u != step.name))
