"""The trace of a pipeline function: tasks, the values they pass, and control-flow groups.

Calling a pipeline function under a trace records what would run; no step code executes.
References stay live objects until the trace ends, so `.set_name()` can rename a task after
others already consume its outputs; `to_ir()` then turns everything into plain IR values.
"""

from __future__ import annotations

import reprlib
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from stackhop.core import checks
from stackhop.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from stackhop.core import ir

_active: "Trace | None" = None


def current_trace(what: str) -> "Trace":
    if _active is None:
        raise PipelineDefinitionError(
            f"{what} can only be used inside a function decorated with @pipeline; "
            "to call a step's plain Python function in a test, use `<step>.fn(...)`."
        )
    return _active


class _Operand:
    """Something a condition can compare: a task output, a pipeline parameter or a loop item."""

    def _cmp(self, op: str, other: Any) -> "ExprNode":
        return ExprNode("compare", op, (self, other))

    def __eq__(self, other: Any) -> "ExprNode":  # type: ignore[override]
        return self._cmp("==", other)

    def __ne__(self, other: Any) -> "ExprNode":  # type: ignore[override]
        return self._cmp("!=", other)

    def __lt__(self, other: Any) -> "ExprNode":
        return self._cmp("<", other)

    def __le__(self, other: Any) -> "ExprNode":
        return self._cmp("<=", other)

    def __gt__(self, other: Any) -> "ExprNode":
        return self._cmp(">", other)

    def __ge__(self, other: Any) -> "ExprNode":
        return self._cmp(">=", other)

    def is_in(self, options: list[Any] | "_Operand") -> "ExprNode":
        return self._cmp("in", options)

    def not_in(self, options: list[Any] | "_Operand") -> "ExprNode":
        return self._cmp("not in", options)

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise PipelineDefinitionError(misuse(repr(self), "bool"))

    def __iter__(self) -> Any:
        raise PipelineDefinitionError(misuse(repr(self), "iter"))

    def __len__(self) -> int:
        raise PipelineDefinitionError(misuse(repr(self), "len"))

    def __format__(self, spec: str) -> str:
        raise PipelineDefinitionError(misuse(repr(self), "format"))

    def __str__(self) -> str:
        raise PipelineDefinitionError(misuse(repr(self), "format"))


@dataclass(eq=False)
class ExprNode:
    kind: str  # compare | and | or | not
    op: str
    operands: tuple[Any, ...]

    def __and__(self, other: "ExprNode") -> "ExprNode":
        return ExprNode("and", "and", (self, other))

    def __or__(self, other: "ExprNode") -> "ExprNode":
        return ExprNode("or", "or", (self, other))

    def __invert__(self) -> "ExprNode":
        return ExprNode("not", "not", (self,))

    def __bool__(self) -> bool:
        raise PipelineDefinitionError(misuse("a comparison of traced values", "bool"))


class PipelineParam(_Operand):
    def __init__(self, name: str, type_name: str):
        self.name = name
        self.type = type_name

    def __repr__(self) -> str:
        return f"pipeline parameter {self.name!r}"


class TaskOutput(_Operand):
    def __init__(self, task: "Task", name: str, type_name: str):
        self.task = task
        self.name = name
        self.type = type_name

    def __repr__(self) -> str:
        return f"output {self.name!r} of step {self.task.name!r}"


class Collected:
    """`Collected(train.outputs["score"])`: the list of that output over every iteration of the loops around
    `train`, in iteration order, handed to a step after them (kfp's `dsl.Collected`)."""

    def __init__(self, output: Any):
        if isinstance(output, (Task, NestedTask)):
            output = output.output
        if not isinstance(output, TaskOutput):
            raise PipelineDefinitionError(
                f"Collected takes the output of a step inside a ParallelFor, such as Collected(train.output), "
                f"not {reprlib.repr(output)}.")
        self.output = output

    def __repr__(self) -> str:
        return f"Collected({self.output!r})"


class OneOf:
    """`OneOf(a.output, b.output)`: the output of whichever branch of an If/Elif/Else chain ran (kfp's `dsl.OneOf`)."""

    def __init__(self, *outputs: Any):
        found = [o.output if isinstance(o, (Task, NestedTask)) else o for o in outputs]
        bad = next((o for o in found if not isinstance(o, TaskOutput)), None)
        if bad is not None or len(found) < 2:
            raise PipelineDefinitionError(
                "OneOf takes the outputs of two or more steps in the branches of one If/Elif/Else chain, such as "
                f"OneOf(a.output, b.output), not {reprlib.repr(bad if bad is not None else outputs)}.")
        self.outputs = found

    def __repr__(self) -> str:
        return "OneOf(" + ", ".join(map(repr, self.outputs)) + ")"


class LoopItem(_Operand):
    def __init__(self, group: "GroupRec", field_name: str | None = None):
        self.group = group
        self.field = field_name

    def __getitem__(self, key: str) -> "LoopItem":
        return LoopItem(self.group, key)

    def __getattr__(self, key: str) -> "LoopItem":
        if key.startswith("_"):
            raise AttributeError(key)
        return LoopItem(self.group, key)

    def __repr__(self) -> str:
        return f"item of {self.group.id}" + (f" field {self.field!r}" if self.field else "")


@dataclass(eq=False)
class GroupRec:
    id: str
    kind: str
    parent: "GroupRec | None"
    condition: ExprNode | None = None
    items: Any = None
    parallelism: int | None = None
    key: str | None = None
    pipeline: str | None = None
    params: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    """A nested pipeline's call: (parameter, type, its default or inspect's empty, the value passed)."""
    returns: dict[str, "TaskOutput"] = field(default_factory=dict)
    exit_task: "Task | None" = None
    chain: tuple[Any, ...] = ()
    """For an If/Elif branch: its own condition and those of the branches before it, for an Elif or Else after it."""
    chain_ended: bool = False
    branches: "GroupRec | None" = None
    """For a branch of an If with an Elif or Else: the group that holds all the chain's branches (kfp's
    condition-branches), the one place whichever branch ran hands its output on (OneOf)."""


class _Outputs(dict):  # type: ignore[type-arg]
    """`task.outputs`: an unknown name raises an error listing the real outputs, not a bare KeyError."""

    def __init__(self, task: "Task", items: dict[str, TaskOutput]):
        super().__init__(items)
        self._task = task

    def __missing__(self, key: str) -> TaskOutput:
        return self._task.output_ref(key)


@dataclass(eq=False)
class Task:
    """One step invocation inside a traced pipeline; setters return the task for chaining."""

    name: str
    explicit_name: bool
    kind: str
    group: GroupRec | None
    inputs: dict[str, Any]
    input_types: dict[str, tuple[str, bool, Any, bool]]  # name -> (type, as_value, default, has_default)
    output_types: dict[str, tuple[str, bool]]  # name -> (type, from_return)
    python: dict[str, Any] | None = None
    container: dict[str, Any] | None = None
    resource: dict[str, Any] | None = None
    fail: dict[str, str] | None = None
    importer: dict[str, Any] | None = None
    after_tasks: list["Task"] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    secrets: list[dict[str, str]] = field(default_factory=list)
    display_name: str | None = None
    allow_pickle: bool = False
    materializers: dict[str, str] = field(default_factory=dict)
    """Return outputs stored through a materializer -> its name."""
    item_types: dict[str, str] = field(default_factory=dict)
    """`list[X]` outputs -> X, for the items of a ParallelFor over them."""
    list_inputs: tuple[str, ...] = ()
    """Inputs that take a list of artifacts (`Input[list[Dataset]]`)."""

    # ------------------------------------------------------------ outputs
    @property
    def outputs(self) -> dict[str, TaskOutput]:
        return _Outputs(self, {n: TaskOutput(self, n, t) for n, (t, _) in self.output_types.items()})

    @property
    def output(self) -> TaskOutput:
        """The return value (`output`) when the step has one, else its only output."""
        if "output" in self.output_types:
            return self.outputs["output"]
        if not self.output_types:
            raise PipelineDefinitionError(
                f"step {self.name!r} has no outputs; give its function a return annotation (e.g. `-> int`) "
                "to make the return value its output."
            )
        if len(self.output_types) != 1:
            names = ", ".join(self.output_types)
            raise PipelineDefinitionError(
                f"step {self.name!r} has {len(self.output_types)} outputs ({names}) and no single return value; "
                f"pick one with {self.name}.outputs['<name>']."
            )
        (name,) = self.output_types
        return self.outputs[name]

    def output_ref(self, name: str) -> TaskOutput:
        if name not in self.output_types:
            raise PipelineDefinitionError(
                f"step {self.name!r} has no output {name!r}; its outputs are {', '.join(self.output_types) or 'none'}."
            )
        return TaskOutput(self, name, self.output_types[name][0])

    # ------------------------------------------------------------ setters
    def set_name(self, name: str) -> "Task":
        self.name, self.explicit_name = checks.text(f"step {self.name!r}", "set_name()", name), True
        return self

    def set_display_name(self, display_name: str) -> "Task":
        self.display_name = checks.text(f"step {self.name!r}", "set_display_name()", display_name)
        return self

    def set_resources(
        self,
        cpu: str | float | None = None,
        memory: str | None = None,
        *,
        cpu_limit: str | float | None = None,
        memory_limit: str | None = None,
        disk: str | None = None,
        accelerator: str | None = None,
        accelerator_count: int | None = None,
        gpu: int | None = None,
    ) -> "Task":
        """Limits default to the requests; `gpu=N` is shorthand for `accelerator_count=N`."""
        given = dict(cpu=cpu, memory=memory, cpu_limit=cpu_limit, memory_limit=memory_limit, disk=disk,
                     accelerator=accelerator, accelerator_count=accelerator_count or gpu)
        self.settings["resources"] = resources_dict(f"step {self.name!r}", **{k: v for k, v in given.items() if v is not None})
        return self

    def set_retry(
        self, max_retries: int, backoff_seconds: float = 1.0, backoff_factor: float = 2.0, max_backoff_seconds: float = 300.0
    ) -> "Task":
        self.settings["retry"] = retry_dict(f"step {self.name!r}", {
            "max_retries": max_retries, "backoff_seconds": backoff_seconds,
            "backoff_factor": backoff_factor, "max_backoff_seconds": max_backoff_seconds,
        })
        return self

    def set_timeout(self, seconds: float) -> "Task":
        self.settings["timeout_seconds"] = checks.timeout(f"step {self.name!r}", "set_timeout()", seconds)
        return self

    def set_caching(self, enabled: bool) -> "Task":
        self.settings["caching"] = checks.flag(f"step {self.name!r}", "set_caching()", enabled)
        return self

    def set_env(self, name: str | None = None, value: str | None = None, **env: str) -> "Task":
        merged = dict(self.settings.get("env", {}))
        if name is not None:
            merged[checks.env_name(f"step {self.name!r}", name)] = checks.scalar_text(
                f"step {self.name!r}", f"environment variable {name!r}", value)
        merged.update(env_dict(f"step {self.name!r}", env))
        self.settings["env"] = merged
        return self

    def set_secret_env(self, env: str, secret: str, key: str) -> "Task":
        """Expose key `key` of secret `secret` as `$env`; only the reference is ever stored."""
        where = f"step {self.name!r}"
        self.secrets.append({"env": checks.env_name(where, env), "name": checks.text(where, "the secret's name", secret),
                             "key": checks.text(where, "the secret's key", key)})
        return self

    def set_image(self, image: Any) -> "Task":
        """A reference ("registry/ml/train:1.0") or `ImageSettings(...)` to build one."""
        self.settings.update(image_setting(f"step {self.name!r}", image))
        return self

    def set_labels(self, **labels: str) -> "Task":
        where = f"step {self.name!r}"
        clean = {k: checks.scalar_text(where, f"label {k!r}", v) for k, v in labels.items()}
        self.settings["labels"] = {**self.settings.get("labels", {}), **clean}
        return self

    def add_node_selector(self, key: str, value: str) -> "Task":
        where = f"step {self.name!r}"
        self.settings["node_selector"] = {**self.settings.get("node_selector", {}),
                                          checks.text(where, "the node selector's key", key):
                                          checks.scalar_text(where, "the node selector's value", value)}
        return self

    def add_toleration(
        self, key: str | None = None, operator: str = "Equal", value: str | None = None, effect: str | None = None
    ) -> "Task":
        where = f"step {self.name!r}"
        if operator not in ("Equal", "Exists"):
            raise checks.fail(where, f"a toleration's operator is Equal or Exists, got {operator!r}.")
        if effect not in (None, "NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise checks.fail(where, f"a toleration's effect is NoSchedule, PreferNoSchedule or NoExecute, got {effect!r}.")
        for what, item in (("key", key), ("value", value)):
            if item is not None:
                checks.text(where, f"a toleration's {what}", item)
        self.settings["tolerations"] = [
            *self.settings.get("tolerations", []),
            {"key": key, "operator": operator, "value": value, "effect": effect},
        ]
        return self

    def after(self, *tasks: "Task | NestedTask") -> "Task":
        for t in tasks:
            if isinstance(t, NestedTask):
                self.after_tasks.extend(x for x in t.tasks if x is not self)
                continue
            if not isinstance(t, Task):
                raise PipelineDefinitionError(f"step {self.name!r}: .after() takes tasks, got {t!r}.")
            self.after_tasks.append(t)
        return self

    def __repr__(self) -> str:
        return f"Task({self.name!r})"

    def __bool__(self) -> bool:
        raise PipelineDefinitionError(misuse(f"step {self.name!r}", "bool"))

    def __iter__(self) -> Any:
        raise PipelineDefinitionError(misuse(f"step {self.name!r}", "iter"))


class NestedTask:
    """A pipeline called inside another: its steps join the caller's under scoped names
    (`prep-clean`), and what it returns is this task's `.outputs`. Settings such as
    `.set_caching(False)` or `.after(...)` apply to every step inside it."""

    def __init__(self, name: str, pipeline: str, tasks: list[Task], outputs: dict[str, TaskOutput]):
        self.name = name
        self.pipeline = pipeline
        self.tasks = tasks
        self._outputs = outputs

    @property
    def outputs(self) -> dict[str, TaskOutput]:
        return _NestedOutputs(self, self._outputs)

    @property
    def output(self) -> TaskOutput:
        if "output" in self._outputs:
            return self._outputs["output"]
        if len(self._outputs) == 1:
            return next(iter(self._outputs.values()))
        names = ", ".join(self._outputs) or "none"
        raise PipelineDefinitionError(
            f"pipeline {self.pipeline!r} (called as {self.name!r}) returns {len(self._outputs)} outputs ({names}) and "
            f"no single one; pick one with {self.name}.outputs['<name>']" + (
                "." if self._outputs else ", after making the pipeline return it."))

    def after(self, *tasks: "Task | NestedTask") -> "NestedTask":
        for t in self.tasks:
            t.after(*tasks)
        return self

    def set_name(self, name: str) -> "NestedTask":
        raise PipelineDefinitionError(
            f"pipeline {self.pipeline!r} (called as {self.name!r}) cannot be renamed after it ran; its steps are already "
            "named after it, so rename the pipeline itself with @pipeline(name=...).")

    def __getattr__(self, key: str) -> Any:
        if key.startswith(("set_", "add_")) and callable(getattr(Task, key, None)):
            def apply(*args: Any, **kwargs: Any) -> "NestedTask":
                for t in self.tasks:
                    getattr(t, key)(*args, **kwargs)
                return self
            return apply
        raise AttributeError(key)

    def __repr__(self) -> str:
        return f"NestedTask({self.name!r})"

    def __bool__(self) -> bool:
        raise PipelineDefinitionError(misuse(f"pipeline {self.pipeline!r}", "bool"))

    def __iter__(self) -> Any:
        raise PipelineDefinitionError(misuse(f"pipeline {self.pipeline!r}", "iter"))


class _NestedOutputs(dict):  # type: ignore[type-arg]
    def __init__(self, task: NestedTask, items: dict[str, TaskOutput]):
        super().__init__(items)
        self._task = task

    def __missing__(self, key: str) -> TaskOutput:
        raise PipelineDefinitionError(
            f"pipeline {self._task.pipeline!r} (called as {self._task.name!r}) returns no output {key!r}; it returns "
            f"{', '.join(self) or 'nothing'}.")


def _user_frame() -> tuple[str, int, str]:
    """(file, line, source line) of the innermost caller outside stackhop: where the user wrote it."""
    import linecache
    import os
    import sys

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here + os.sep):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return "?", 0, ""
    file, line = frame.f_code.co_filename, frame.f_lineno
    return file, line, linecache.getline(file, line).strip()


def _shape(text: str) -> tuple[str, bool]:
    """(the statement's keyword, whether its expression uses `and`/`or`/`not` or a chained comparison)."""
    import ast

    first = text.split(None, 1)[0].rstrip(":") if text else ""
    code = text + (" pass" if text.endswith(":") else "")
    if first in ("elif", "else"):
        code = "if 1: pass\n" + code
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return first, bool(re.search(r"\b(and|or|not)\b", text))
    boolean = any(isinstance(n, ast.BoolOp) or (isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not))
                  or (isinstance(n, ast.Compare) and len(n.ops) > 1) for n in ast.walk(tree))
    return first, boolean


def misuse(what: str, how: str) -> str:
    """One sentence for a traced value used as a Python value: say what to write instead, and where."""
    file, line, text = _user_frame()
    where = f"{os.path.basename(file) if file != '?' else file}:{line}"
    first, boolean = _shape(text)
    if how == "iter" or first == "for":
        fix = "to run steps once per item, write `with ParallelFor(<list>) as item:`"
        return f"{where}: {what} cannot be iterated while the pipeline is traced (it only has a value at run time); {fix}."
    if how == "len":
        return f"{where}: {what} has no length while the pipeline is traced; pass it to a step that computes one."
    if how == "format":
        return (f"{where}: {what} cannot be put into a string while the pipeline is traced (it only has a value at run "
                "time); pass it to a step as an input and build the string there.")
    if boolean:
        return (f"{where}: conditions cannot use Python's `and`, `or`, `not` or chained comparisons; combine them "
                "with `&`, `|` and `~` inside `with If(...):`, e.g. If((a.output > 1) & (b.output == 'yes')).")
    if first in ("if", "elif", "while", "assert"):
        statement = {"elif": "if"}.get(first, first)
        return (f"{where}: a Python `{statement}` cannot test {what}, which only has a value at run time; "
                f"write `with If(<condition>):` around the steps that should run only when it holds.")
    if " if " in f" {text} " and " else " in text:
        return (f"{where}: a conditional expression cannot test {what}, which only has a value at run time; "
                "write `with If(<condition>):` around the steps that should run only when it holds.")
    return (f"{where}: {what} has no value while the pipeline is traced; use it in `with If(...):` "
            "or pass it to a step.")


def retry_dict(where: str, retries: Any) -> dict[str, Any]:
    """`retries=2` or {"max_retries": 2, "backoff_seconds": ...}: checked now, where it was written."""
    given = {"max_retries": retries} if not isinstance(retries, dict) else dict(retries)
    unknown = set(given) - {"max_retries", "backoff_seconds", "backoff_factor", "max_backoff_seconds"}
    if unknown:
        raise checks.fail(where, f"unknown retry setting {sorted(map(str, unknown))[0]!r}; use max_retries, "
                                 "backoff_seconds, backoff_factor, max_backoff_seconds.")
    out: dict[str, Any] = {"max_retries": checks.whole(where, "retries", given.get("max_retries", 0), high=100)}
    for key, low in (("backoff_seconds", 0.0), ("backoff_factor", 1.0), ("max_backoff_seconds", 0.0)):
        if key in given:
            out[key] = checks.number(where, key, given[key], low=low)
    return out


def env_dict(where: str, env: dict[Any, Any]) -> dict[str, str]:
    return {checks.env_name(where, k): checks.scalar_text(where, f"environment variable {k!r}", v) for k, v in env.items()}


def resources_dict(where: str, **kw: Any) -> dict[str, Any]:
    """Parse user spellings ("2", "500m", "4Gi", gpu=1) into the IR's exact units.

    Validated now, so the error names the step (or config key) that set them. Limits default
    to the requests.
    """
    # lazy: keeps difflib, decimal and importlib.resources out of `import stackhop.core.dsl` until resources are set
    from stackhop.core.accelerators import canonical_accelerator
    from stackhop.core.quantities import parse_bytes, parse_cpu

    known = {"cpu", "memory", "cpu_limit", "memory_limit", "disk", "accelerator", "accelerator_count", "gpu"}
    unknown = set(kw) - known
    if unknown:
        raise PipelineDefinitionError(
            f"{where}: unknown resource setting {sorted(unknown)[0]!r}; use {', '.join(sorted(known))}."
        )

    out: dict[str, Any] = {}
    for key in ("accelerator_count", "gpu"):
        if kw.get(key) is not None:
            checks.whole(where, key, kw[key], high=64)
    if kw.get("accelerator") is not None:
        checks.text(where, "accelerator", kw["accelerator"])
    if kw.get("cpu") is not None:
        out["cpu_millicores"] = out["cpu_limit_millicores"] = parse_cpu(kw["cpu"], where=where)
    if kw.get("cpu_limit") is not None:
        out["cpu_limit_millicores"] = parse_cpu(kw["cpu_limit"], where=where)
    if kw.get("memory") is not None:
        out["memory_bytes"] = out["memory_limit_bytes"] = parse_bytes(kw["memory"], where=where)
    if kw.get("memory_limit") is not None:
        out["memory_limit_bytes"] = parse_bytes(kw["memory_limit"], where=where, what="memory limit")
    if kw.get("disk") is not None:
        out["disk_bytes"] = parse_bytes(kw["disk"], where=where, what="disk")
    count, accel = kw.get("accelerator_count") or kw.get("gpu"), kw.get("accelerator")
    if not count and not accel and (("accelerator" in kw and accel is None) or 0 in (kw.get("accelerator_count"), kw.get("gpu"))):
        out["accelerator"] = None  # `accelerator: null` or `gpu: 0`: an override removing one
    elif count or accel:
        if not accel:
            raise PipelineDefinitionError(
                f"{where}: {count} GPU(s) requested without a type; pass accelerator='nvidia-tesla-t4' (or l4, a100 ...)."
            )
        out["accelerator"] = {"type": canonical_accelerator(accel, where=where), "count": int(count or 1)}
    for req, lim in (("cpu_millicores", "cpu_limit_millicores"), ("memory_bytes", "memory_limit_bytes")):
        if req in out and out[lim] < out[req]:
            what = req.split("_")[0]
            raise PipelineDefinitionError(f"{where}: the {what} limit is below the {what} request; raise the limit or lower the request.")
    return out


@dataclass(eq=False)
class Trace:
    pipeline: str
    tasks: list[Task] = field(default_factory=list)
    groups: list[GroupRec] = field(default_factory=list)
    stack: list[GroupRec] = field(default_factory=list)
    _names: dict[str, int] = field(default_factory=dict)
    _group_counts: dict[str, int] = field(default_factory=dict)
    code: dict[Any, Any] = field(default_factory=dict)
    """Per step definition: its IR `python` body and materializers, computed once per trace."""
    scope: str = ""
    """The nested pipeline calls being traced, outermost first (`prep/clean`), "" at the top."""
    calling: list[str] = field(default_factory=list)

    def unique_name(self, base: str) -> str:
        n = self._names.get(base, 0) + 1
        self._names[base] = n
        return base if n == 1 else f"{base}-{n}"

    def add_task(self, task: Task) -> Task:
        self.tasks.append(task)
        return task

    @property
    def group(self) -> GroupRec | None:
        return self.stack[-1] if self.stack else None

    def open_group(self, kind: str, **kw: Any) -> GroupRec:
        n = self._group_counts.get(kind, 0) + 1
        self._group_counts[kind] = n
        prefix = {"condition": "condition", "parallel_for": "for", "exit_handler": "exit-handler",
                  "branches": "branches", "pipeline": "pipeline"}[kind]
        rec = GroupRec(id=f"{prefix}-{n}", kind=kind, parent=kw.pop("parent", self.group), **kw)
        self.groups.append(rec)
        self.stack.append(rec)
        return rec

    def close_group(self, rec: GroupRec) -> None:
        assert self.stack and self.stack[-1] is rec
        self.stack.pop()
        self.last_closed = (rec, len(self.tasks), len(self.groups))

    def branch_before(self, what: str) -> GroupRec:
        """The If or Elif an Elif/Else continues: the block closed just before, at the same level, nothing between."""
        last = getattr(self, "last_closed", None)
        rec = last[0] if last else None
        level = rec.branches.parent if rec is not None and rec.branches is not None else getattr(rec, "parent", None)
        if (rec is None or rec.kind != "condition" or not rec.chain or level is not self.group
                or last[1:] != (len(self.tasks), len(self.groups))):
            raise PipelineDefinitionError(
                f"pipeline {self.pipeline!r}: {what} must come right after a `with If(...)` or `with Elif(...)` block "
                "at the same level, with no step in between; put it directly after that block.")
        if rec.chain_ended:
            raise PipelineDefinitionError(
                f"pipeline {self.pipeline!r}: {what} cannot follow an Else block; an If chain ends with its Else.")
        if rec.branches is None:  # the chain's second branch: its If moves into a group holding every branch
            n = self._group_counts.get("branches", 0) + 1
            self._group_counts["branches"] = n
            holder = GroupRec(id=f"branches-{n}", kind="branches", parent=rec.parent)
            self.groups.insert(self.groups.index(rec), holder)
            rec.parent, rec.branches = holder, holder
        return rec


def image_setting(where: str, image: Any) -> dict[str, Any]:
    """`image=` takes a reference or ImageSettings (or a dict of them): the settings key they belong in."""
    from stackhop.core.image_settings import ImageSettings  # lazy: pydantic stays out of the dsl import

    if isinstance(image, str):
        from stackhop.core.dsl import image_reference  # lazy: cycle with core.dsl, which imports this module

        return {"image": image_reference(where, image)}
    if isinstance(image, dict):
        from stackhop.core.ir_build import construct

        image = construct(ImageSettings, image, f"{where}, image")
    if isinstance(image, ImageSettings):
        return {"image_build": image}
    raise PipelineDefinitionError(
        f"{where}: image must be a reference like 'python:3.11' or ImageSettings(...), got {type(image).__name__}.")


def trace(pipeline_name: str) -> "_TraceScope":
    return _TraceScope(Trace(pipeline_name))


class _TraceScope:
    def __init__(self, t: Trace):
        self.trace = t

    def __enter__(self) -> Trace:
        global _active
        if _active is not None:
            raise PipelineDefinitionError(
                f"pipeline {self.trace.pipeline!r} was called while tracing pipeline {_active.pipeline!r}; "
                "nested pipelines are not supported, call its steps directly."
            )
        _active = self.trace
        return self.trace

    def __exit__(self, *exc: Any) -> None:
        global _active
        _active = None


# ---------------------------------------------------------------------- trace -> IR


def to_value(v: Any, *, where: str) -> "ir.Value":
    from stackhop.core import ir  # lazy: pydantic, as in image_setting()

    if isinstance(v, Collected):
        return ir.CollectedRef(step=v.output.task.name, output=v.output.name)
    if isinstance(v, OneOf):
        return ir.OneOfRef(values=tuple(ir.OutputRef(step=o.task.name, output=o.name) for o in v.outputs))
    if isinstance(v, (Task, NestedTask)):
        v = v.output
    if isinstance(v, TaskOutput):
        return ir.OutputRef(step=v.task.name, output=v.name)
    if isinstance(v, PipelineParam):
        return ir.ParamRef(name=v.name)
    if isinstance(v, LoopItem):
        return ir.LoopItemRef(loop=v.group.id, field=v.field)
    problem = checks.json_problem(v)
    if problem == "non-finite":
        raise PipelineDefinitionError(
            f"{where} gets {reprlib.repr(v)}; NaN and infinity cannot be stored in a pipeline (JSON has no such "
            "numbers), so pass finite numbers."
        )
    if problem == "big-int":
        raise PipelineDefinitionError(
            f"{where} gets {reprlib.repr(v)}, an integer beyond 64 bits, which backends cannot hold; pass it as a "
            "string or a float."
        )
    if problem:
        raise PipelineDefinitionError(
            f"{where}: {type(v).__name__} value {reprlib.repr(v)} cannot be stored in the pipeline ({problem}); pass JSON-able constants "
            "(str, int, float, bool, list, dict), pipeline parameters or other steps' outputs."
        ) from None
    return ir.Const(value=v)


def to_expr(node: Any, *, where: str) -> Any:
    from stackhop.core import ir

    if isinstance(node, _Operand):
        raise PipelineDefinitionError(
            f"{where}: If() needs a comparison such as `{node!r} == 'yes'`, not a bare value."
        )
    if not isinstance(node, ExprNode):
        raise PipelineDefinitionError(
            f"{where}: If() needs a comparison of step outputs or pipeline parameters, got {node!r}."
        )
    if node.kind == "compare":
        left, right = node.operands
        return ir.Compare(op=node.op, left=to_value(left, where=where), right=to_value(right, where=where))
    if node.kind == "not":
        return ir.Not(operand=to_expr(node.operands[0], where=where))
    flat: list[Any] = []
    for operand in node.operands:
        sub = to_expr(operand, where=where)
        flat.extend(sub.operands if getattr(sub, "kind", None) == node.kind else [sub])
    return ir.BoolOp(kind=node.kind, operands=tuple(flat))


def iter_tasks_in(trace_: Trace, group: GroupRec) -> Iterator[Task]:
    for t in trace_.tasks:
        g = t.group
        while g is not None:
            if g is group:
                yield t
                break
            g = g.parent
