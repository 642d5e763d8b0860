"""The authoring surface: @step, @pipeline, container_step, resource_op and control flow.

Decorating does nothing but remember the function; tracing (`PipelineDef.build()`) calls the
pipeline function with placeholders and records tasks. Step code never runs while tracing.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar, overload

from stackhop.core import checks, tracing
from stackhop.core.artifact_types import Artifact
from stackhop.core.materializers import choose
from stackhop.core.signatures import Signature, read_signature, scalar_type_name, value_type_name
from stackhop.core.source import module_and_root, step_code
from stackhop.core.tracing import ExprNode, GroupRec, LoopItem, PipelineParam, Task, TaskOutput, current_trace
from stackhop.errors import ImageError, PipelineDefinitionError, StackhopError

F = TypeVar("F", bound=Callable[..., Any])


# ====================================================================== steps


class StepDef:
    """A Python function that becomes one step each time a pipeline calls it."""

    def __init__(self, fn: Callable[..., Any], name: str | None, settings: dict[str, Any], allow_pickle: bool,
                 packages: tuple[str, ...] = ()):
        self.fn = fn
        self.packages = packages
        self.name = name or fn.__name__
        self.explicit_name = name is not None
        self._settings = settings
        self.allow_pickle = allow_pickle
        self._signature: Signature | None = None
        functools.update_wrapper(self, fn)

    def materializers(self, trace: tracing.Trace) -> dict[str, str]:
        """Output name -> the materializer storing it, chosen from the return annotation at each trace."""
        key = ("materializers", id(self))
        if key not in trace.code:
            where = f"step {self.name!r} of pipeline {trace.pipeline!r}"
            trace.code[key] = {
                n: choose(hint, allow_pickle=self.allow_pickle, where=where + (f" (output {n!r})" if n != "output" else ""))
                for n, _t, hint in self.signature.returns if hint is not None
            }
        return trace.code[key]

    def code(self, trace: tracing.Trace) -> dict[str, Any]:
        """The step's `python` body, read once per trace (a 1,000-step chain calls one step 1,000 times),
        and again at the next trace, so an edit made since (in a notebook, say) is seen."""
        key = id(self)
        if key not in trace.code:
            bound_as = tuple(sorted(k for k, v in getattr(self.fn, "__globals__", {}).items() if v is self)) \
                if "<locals>" in self.fn.__qualname__ else ()  # made by a factory: the call that made it counts
            trace.code[key] = step_code(self.fn, where=f"step {self.name!r} of pipeline {trace.pipeline!r}",
                                        bound_as=bound_as)
        return trace.code[key]

    @property
    def signature(self) -> Signature:
        if self._signature is None:
            self._signature = read_signature(self.fn, step=self.name)
        return self._signature

    def __call__(self, *args: Any, **kwargs: Any) -> Task:
        trace = current_trace(f"step {self.name!r}")
        sig = self.signature
        inputs = sig.inputs
        if len(args) > len(inputs):
            raise PipelineDefinitionError(
                f"step {self.name!r} takes {len(inputs)} inputs but was called with {len(args)} positional arguments."
            )
        bound: dict[str, Any] = {p.name: a for p, a in zip(inputs, args)}
        for key, value in kwargs.items():
            if key in bound:
                raise PipelineDefinitionError(f"step {self.name!r}: input {key!r} was given twice.")
            if not any(p.name == key for p in inputs):
                outs = [p.name for p in sig.artifact_outputs]
                why = (
                    f"{key!r} is an output; the step writes it, read it as {self.name}(...).outputs[{key!r}]"
                    if key in outs
                    else f"it has no input {key!r}; its inputs are {', '.join(p.name for p in inputs) or 'none'}"
                )
                raise PipelineDefinitionError(f"step {self.name!r}: {why}.")
            bound[key] = value
        for p in inputs:
            if p.name not in bound and not p.has_default:
                raise PipelineDefinitionError(
                    f"step {self.name!r} in pipeline {trace.pipeline!r} needs input {p.name!r}; "
                    f"pass it as {self.name}({p.name}=...)."
                )
        self._claim_name(trace)
        task = Task(
            name=trace.unique_name(self.name),
            explicit_name=False,
            kind="python",
            group=trace.group,
            inputs=bound,
            input_types={p.name: (p.type, p.as_value, p.default, p.has_default) for p in inputs},
            output_types={
                **{p.name: (p.type, False) for p in sig.artifact_outputs},
                **{n: (t, hint is not None) for n, t, hint in sig.returns},
            },
            materializers=self.materializers(trace),
            item_types=sig.item_types,
            list_inputs=tuple(p.name for p in inputs if p.is_list),
            python={**self.code(trace), "packages": list(self.packages)} if self.packages else self.code(trace),
            settings=_copy_settings(self._settings),
            allow_pickle=self.allow_pickle,
        )
        return trace.add_task(task)

    def _claim_name(self, trace: tracing.Trace) -> None:
        """Calling one step again names it `x-2`, `x-3` ...; two different functions given the same name is an error."""
        owner: StepDef = trace.code.setdefault(("step name", trace.scope, self.name), self)
        same = owner is self or getattr(owner.fn, "__code__", owner.fn) is getattr(self.fn, "__code__", self.fn)
        if not same and (owner.explicit_name or self.explicit_name):
            raise PipelineDefinitionError(
                f"pipeline {trace.pipeline!r}: {owner._where()} and {self._where()} are both steps named {self.name!r}; "
                "give one of them another name with @step(name=...)."
            )

    def _where(self) -> str:
        code = getattr(self.fn, "__code__", None)
        at = f" ({os.path.basename(code.co_filename)}:{code.co_firstlineno})" if code is not None else ""
        return f"{getattr(self.fn, '__module__', '?')}.{getattr(self.fn, '__qualname__', self.name)}{at}"

    def __repr__(self) -> str:
        return f"<step {self.name}>"


def _copy_settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in settings.items()}


def image_reference(where: str, image: Any) -> str:
    """`image=` as a reference to run: one line, and the OCI grammar `docker pull` reads."""
    # lazy: only image= needs the OCI grammar; keeps its regexes out of every step process's user-code import
    from stackhop.core.image_reference import parse_reference

    checks.text(where, "image", image)
    try:
        parse_reference(image)
    except ImageError as exc:
        raise PipelineDefinitionError(
            f"{where}: image {image!r} is not an image reference ({getattr(exc, 'why', exc)}); write it as "
            "[registry/]repository[:tag][@sha256:<digest>], e.g. python:3.11-slim or "
            "registry.example.com/ml/train:1.0.") from None
    return image


def _module(fn: Callable[..., Any]) -> tuple[str, Path | None]:
    return module_and_root(fn)


def _settings_from_kwargs(
    where: str,
    *,
    image: Any,
    resources: dict[str, Any] | None,
    retries: int | dict[str, Any] | None,
    timeout: float | None,
    cache: bool | None,
    env: dict[str, str] | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if image is not None:
        out.update(tracing.image_setting(where, image))
        if "image" in out:
            image_reference(where, out["image"])
    if resources is not None:
        out["resources"] = tracing.resources_dict(where, **{
            str(k): v for k, v in checks.mapping(where, "resources", resources).items()})
    if retries is not None:
        out["retry"] = tracing.retry_dict(where, retries)
    if timeout is not None:
        out["timeout_seconds"] = checks.timeout(where, "timeout", timeout)
    if cache is not None:
        out["caching"] = checks.flag(where, "cache", cache)
    if env:
        out["env"] = tracing.env_dict(where, checks.mapping(where, "env", env))
    return out


@overload
def step(fn: F) -> StepDef: ...
@overload
def step(
    fn: None = None,
    *,
    name: str | None = None,
    image: Any = None,
    resources: dict[str, Any] | None = None,
    retries: int | dict[str, Any] | None = None,
    timeout: float | None = None,
    cache: bool | None = None,
    env: dict[str, str] | None = None,
    allow_pickle: bool = False,
    packages_to_install: list[str] | None = None,
) -> Callable[[F], StepDef]: ...


def step(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    image: Any = None,
    resources: dict[str, Any] | None = None,
    retries: int | dict[str, Any] | None = None,
    timeout: float | None = None,
    cache: bool | None = None,
    env: dict[str, str] | None = None,
    allow_pickle: bool = False,
    packages_to_install: list[str] | None = None,
) -> Any:
    """Turn a function into a step. `allow_pickle=True` lets return values no safer format fits be pickled.

    `packages_to_install` (KFP's name) are pip requirements the step installs when it starts, on every
    backend, so a dependency can be tried without building an image; bake them into one for production."""

    def wrap(f: Callable[..., Any]) -> StepDef:
        if not callable(f):
            raise PipelineDefinitionError(f"@step decorates a function, got {type(f).__name__} {f!r}.")
        _refuse_unrunnable(f, name or getattr(f, "__name__", repr(f)))
        if name is not None:
            checks.text(f"step {getattr(f, '__name__', '?')!r}", "name", name)
        where = f"step {name or f.__name__!r}"
        settings = _settings_from_kwargs(
            where, image=image, resources=resources, retries=retries, timeout=timeout, cache=cache, env=env
        )
        return StepDef(f, name, settings, allow_pickle, _requirements(where, packages_to_install))

    return wrap(fn) if fn is not None else wrap


def _requirements(where: str, packages: Any) -> tuple[str, ...]:
    """pip requirement lines, checked where @step is written: one line each, and never a pip option."""
    if packages is None:
        return ()
    if isinstance(packages, (str, bytes)) or not isinstance(packages, (list, tuple)):
        raise PipelineDefinitionError(
            f"{where}: packages_to_install must be a list of pip requirements, e.g. [\"pandas==2.2.2\"], got "
            f"{type(packages).__name__} {packages!r}.")
    out = []
    for item in packages:
        if not isinstance(item, str) or not item.strip() or "\n" in item or "\r" in item or "\0" in item:
            raise PipelineDefinitionError(
                f"{where}: packages_to_install item {item!r} is not a pip requirement; write one requirement per "
                "string, e.g. \"scikit-learn>=1.4\".")
        if item.strip().startswith("-"):
            raise PipelineDefinitionError(
                f"{where}: packages_to_install item {item!r} is a pip option, not a requirement; list packages only "
                "and configure the index with PIP_INDEX_URL / PIP_FIND_LINKS in the step's env.")
        out.append(item.strip())
    return tuple(out)


def _refuse_unrunnable(fn: Callable[..., Any], name: str) -> None:
    """A coroutine or generator function would return an unstarted coroutine or generator at run time:
    the body never runs. Say so where @step is written."""
    target = inspect.unwrap(fn.func if isinstance(fn, functools.partial) else fn)
    if inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(getattr(target, "__call__", None)):
        raise PipelineDefinitionError(
            f"step {name!r} is an async function; stackhop runs steps as plain functions, so write `def` and call "
            "asyncio.run(...) inside."
        )
    if inspect.isasyncgenfunction(target):
        raise PipelineDefinitionError(
            f"step {name!r} is an async generator; stackhop runs steps as plain functions that return their outputs, "
            "so write `def`, collect the items (with asyncio.run(...) inside) and return them."
        )
    if inspect.isgeneratorfunction(target):
        raise PipelineDefinitionError(
            f"step {name!r} is a generator function (it uses `yield`); a step runs once and returns its outputs, "
            "so collect the items in a list and return it."
        )


# ====================================================================== resource ops

_COND_RE = re.compile(r"^\s*([A-Za-z_][\w.\[\]-]*)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*$")


def parse_field_conditions(step_name: str, which: str, text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    out = []
    for part in text.split(","):
        m = _COND_RE.match(part)
        if not m:
            raise PipelineDefinitionError(
                f"step {step_name!r}: {which} {part.strip()!r} is not `<field path> <op> <value>`, "
                "e.g. 'status.phase == Running' or 'status.succeeded > 0'."
            )
        path, op, raw = m.groups()
        out.append({"path": path, "op": op, "value": _literal(raw)})
    return out


def _literal(raw: str) -> Any:
    raw = raw.strip().strip("'\"")
    if raw in ("true", "false"):
        return raw == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def resource_op(
    name: str,
    manifest: dict[str, Any] | str | os.PathLike[str],
    action: str = "create",
    *,
    success_condition: str | None = None,
    failure_condition: str | None = None,
    outputs: dict[str, str] | None = None,
) -> Task:
    """Create, apply, patch or delete a Kubernetes object and wait for its conditions.

    `outputs` maps output names to field paths on the live object (e.g. {"job": "metadata.name"}).
    A pipeline parameter may stand as a whole field value ({"replicas": replicas}); each run puts its
    own value there, of the parameter's type, when it creates the object.
    """
    trace = current_trace(f"resource_op {name!r}")
    if action not in ("create", "apply", "patch", "delete"):
        raise PipelineDefinitionError(
            f"step {name!r}: action {action!r} is not one of create, apply, patch, delete."
        )
    if isinstance(manifest, (str, os.PathLike)):
        manifest = _load_manifest(name, Path(manifest))
    if not isinstance(manifest, dict):
        raise PipelineDefinitionError(
            f"step {name!r}: the manifest must be one Kubernetes object (a dict) or the path of a YAML file holding "
            f"one, got {type(manifest).__name__}; pass one object per resource_op.")
    parameters: list[dict[str, Any]] = []
    manifest = _lift_parameters(name, trace.pipeline, manifest, (), parameters)
    for key in ("apiVersion", "kind"):
        if key not in manifest:
            raise PipelineDefinitionError(f"step {name!r}: the manifest has no {key!r}; add it.")
        if not isinstance(manifest[key], str) or not manifest[key].strip():
            raise PipelineDefinitionError(f"step {name!r}: the manifest's {key} must be a string like "
                                          f"{'v1' if key == 'apiVersion' else 'ConfigMap'!r}, got {manifest[key]!r}.")
    if not isinstance(manifest.get("metadata", {}), dict):
        raise PipelineDefinitionError(f"step {name!r}: the manifest's metadata must be a mapping with a name, got "
                                      f"{manifest['metadata']!r}.")
    named = {tuple(x["path"]) for x in parameters} & {("metadata", "name"), ("metadata", "generateName")}
    meta = manifest.get("metadata") or {}
    if not (meta.get("name") or meta.get("generateName") or named):
        raise PipelineDefinitionError(f"step {name!r}: the manifest needs metadata.name (or metadata.generateName).")
    task = Task(
        name=name,
        explicit_name=True,
        kind="resource",
        group=trace.group,
        inputs={},
        input_types={},
        output_types={k: ("str", False) for k in (outputs or {})},
        resource={
            "manifest": manifest,
            "action": action,
            "success_conditions": parse_field_conditions(name, "success_condition", success_condition),
            "failure_conditions": parse_field_conditions(name, "failure_condition", failure_condition),
            "output_fields": dict(outputs or {}),
            "parameters": parameters,
        },
    )
    return trace.add_task(task)


def _lift_parameters(step_name: str, pipeline_name: str, node: Any, path: tuple[str | int, ...],
                     found: list[dict[str, Any]]) -> Any:
    """The manifest with null where a pipeline parameter stands, each recorded in `found` with its path.

    The value then reaches the object when a run starts, with the parameter's own type, instead of
    a traced placeholder being sent to the API server (or failing its schema) as if it were data."""
    # lazy: keeps pydantic and yaml out of the dsl, which step processes import with the user's code
    from stackhop.core.ir import FIXED_MANIFEST_FIELDS, field_path

    where = f"pipeline {pipeline_name!r}, step {step_name!r}"
    if isinstance(node, PipelineParam):
        if path in FIXED_MANIFEST_FIELDS:
            fix = "write it as a constant" if path[0] != "metadata" else "write it out, with parameters as values inside it"
            raise PipelineDefinitionError(
                f"{where}: the manifest's {field_path(path)} cannot be a pipeline parameter, because "
                f"{FIXED_MANIFEST_FIELDS[path]}; {fix}."
            )
        found.append({"path": list(path), "parameter": node.name})
        return None
    if isinstance(node, (Task, TaskOutput, LoopItem)):
        raise PipelineDefinitionError(
            f"{where}: the manifest's field {field_path(path) or '(top level)'} is {node!r}, but a manifest can take "
            "only constants and pipeline parameters; pass a pipeline parameter or a constant there."
        )
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise PipelineDefinitionError(
                    f"{where}: the manifest has a key {key!r} at {field_path(path) or '(top level)'}; "
                    "manifest keys are constant strings, so write the key as one."
                )
            out[key] = _lift_parameters(step_name, pipeline_name, value, (*path, key), found)
        return out
    if isinstance(node, (list, tuple)):
        return [_lift_parameters(step_name, pipeline_name, v, (*path, i), found) for i, v in enumerate(node)]
    return node


def _load_manifest(step_name: str, path: Path) -> dict[str, Any]:
    from stackhop.core.yaml_files import load_file

    if not path.is_absolute():
        caller = inspect.stack()[2].filename
        candidate = Path(caller).parent / path
        path = candidate if candidate.exists() else path
    if not path.exists():
        raise PipelineDefinitionError(f"step {step_name!r}: manifest file {str(path)!r} does not exist.")
    try:
        docs = [d.data for d in load_file(path, many=True) if d.data is not None]  # type: ignore[union-attr]
    except StackhopError as exc:
        raise PipelineDefinitionError(f"step {step_name!r}: manifest {exc}") from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise PipelineDefinitionError(
            f"step {step_name!r}: manifest {str(path)!r} must hold exactly one object, found {len(docs)}."
        )
    return docs[0]


def fail_step(message: str, name: str = "fail") -> Task:
    """End the run as failed with `message`, typically inside an If block ("accuracy too low")."""
    trace = current_trace(f"fail_step {name!r}")
    task = Task(name=trace.unique_name(name), explicit_name=False, kind="fail", group=trace.group, inputs={},
                input_types={}, output_types={}, fail={"message": message})
    return trace.add_task(task)


# ====================================================================== control flow


class If:
    """`with If(evaluate.output == "yes"):` — steps inside run only when the condition holds."""

    def __init__(self, condition: Any, name: str | None = None):
        self.condition = condition
        self._rec: GroupRec | None = None

    def __enter__(self) -> None:
        self._rec = current_trace("If").open_group("condition", condition=self.condition, chain=(self.condition,))

    def __exit__(self, *exc: Any) -> None:
        current_trace("If").close_group(self._rec)  # type: ignore[arg-type]


Condition = If


class Elif:
    """`with Elif(score.output > 0.5):` right after an If or Elif block: runs when this holds and no branch before did.

    Each branch becomes a condition of its own (the earlier branches' conditions negated, and its
    own), the way kfp writes Elif for its backend, so every backend runs it with plain conditions."""

    def __init__(self, condition: Any):
        self.condition = condition
        self._rec: GroupRec | None = None

    def _open(self, what: str, own: tuple[Any, ...]) -> None:
        trace = current_trace(what)
        before = trace.branch_before(what)
        negated = tuple(ExprNode("not", "not", (c,)) for c in before.chain)
        condition = ExprNode("and", "and", negated + own) if own or len(negated) > 1 else negated[0]
        self._rec = trace.open_group("condition", condition=condition, chain=before.chain + own,
                                     parent=before.branches, branches=before.branches)

    def __enter__(self) -> None:
        self._open("Elif", (self.condition,))

    def __exit__(self, *exc: Any) -> None:
        current_trace("Elif").close_group(self._rec)  # type: ignore[arg-type]


class Else(Elif):
    """`with Else():` right after an If or Elif block: runs when no branch before it did."""

    def __init__(self) -> None:
        super().__init__(None)

    def __enter__(self) -> None:
        self._open("Else", ())
        self._rec.chain_ended = True  # type: ignore[union-attr]

    def __exit__(self, *exc: Any) -> None:
        current_trace("Else").close_group(self._rec)  # type: ignore[arg-type]


class ParallelFor:
    """`with ParallelFor([...]) as item:` — the body runs once per item, at most `parallelism` at a time.

    Each iteration is named after its item where it can be (`train[0.05]`, `train[lr=0.05,depth=3]`), or after
    one field of dict items with `key="lr"`, so two runs' iterations match; `train[0]` names it too."""

    def __init__(self, items: list[Any] | PipelineParam | TaskOutput | Task | LoopItem, parallelism: int | None = None, *,
                 key: str | None = None):
        if isinstance(items, (Task, tracing.NestedTask)):
            items = items.output
        if not isinstance(items, (list, tuple, PipelineParam, TaskOutput, LoopItem)):
            raise PipelineDefinitionError(
                f"ParallelFor takes a list, a list pipeline parameter, a step's list output or a list field of an outer "
                f"loop's item, got {type(items).__name__}."
            )
        if isinstance(items, PipelineParam) and items.type != "list":
            raise PipelineDefinitionError(
                f"ParallelFor over pipeline parameter {items.name!r} needs it typed `list`, it is {items.type}."
            )
        if isinstance(items, TaskOutput) and items.type != "list":
            raise PipelineDefinitionError(
                f"ParallelFor over {items!r} needs a list, but the step declares it {items.type}; annotate it "
                "`list` (for example `-> list[dict]`) or loop over another output."
            )
        if parallelism is not None and (isinstance(parallelism, bool) or not isinstance(parallelism, int)):
            raise PipelineDefinitionError(f"ParallelFor parallelism must be a whole number, got "
                                          f"{type(parallelism).__name__} {parallelism!r}.")
        if parallelism is not None and parallelism < 1:
            raise PipelineDefinitionError(f"ParallelFor parallelism must be at least 1, got {parallelism}.")
        if key is not None and not (isinstance(key, str) and key.isidentifier()):
            raise PipelineDefinitionError(f"ParallelFor key must name a field of the items, such as key=\"lr\", "
                                          f"not {key!r}.")
        self.items = items
        self.parallelism = parallelism
        self.key = key
        self._rec: GroupRec | None = None

    def __enter__(self) -> LoopItem:
        self._rec = current_trace("ParallelFor").open_group(
            "parallel_for", items=self.items, parallelism=self.parallelism, key=self.key
        )
        return LoopItem(self._rec)

    def __exit__(self, *exc: Any) -> None:
        current_trace("ParallelFor").close_group(self._rec)  # type: ignore[arg-type]


class ExitHandler:
    """`with ExitHandler(cleanup_task):` — cleanup runs after the body, whether it failed or not."""

    def __init__(self, exit_task: Task):
        if not isinstance(exit_task, Task):
            raise PipelineDefinitionError(f"ExitHandler takes a task created before the `with`, got {exit_task!r}.")
        self.exit_task = exit_task
        self._rec: GroupRec | None = None

    def __enter__(self) -> None:
        trace = current_trace("ExitHandler")
        if self.exit_task.inputs and any(
            isinstance(v, (Task, TaskOutput)) for v in self.exit_task.inputs.values()
        ):
            raise PipelineDefinitionError(
                f"exit step {self.exit_task.name!r} cannot read other steps' outputs; give it constants or pipeline parameters."
            )
        self._rec = trace.open_group("exit_handler", exit_task=self.exit_task)

    def __exit__(self, *exc: Any) -> None:
        current_trace("ExitHandler").close_group(self._rec)  # type: ignore[arg-type]


# ====================================================================== pipelines

_PIPELINE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


class PipelineDef:
    """A traced-on-demand pipeline. `build()` returns the IR."""

    def __init__(self, fn: Callable[..., Any], name: str | None, description: str | None, defaults: dict[str, Any]):
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-").lower()
        self.description = description if description is not None else inspect.cleandoc(fn.__doc__ or "")
        self._defaults = defaults
        module, root = _module(fn)
        self.module = module
        self.source_root: Path | None = root
        functools.update_wrapper(self, fn)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Inside another pipeline, its steps join that pipeline (a nested pipeline); anywhere else, an error."""
        if tracing._active is not None:
            from stackhop.core.nesting import call_nested  # lazy: only pipelines that nest need it

            return call_nested(tracing._active, self, args, kwargs)
        raise PipelineDefinitionError(
            f"pipeline {self.name!r} is not called directly; run it with stackhop.run({self.fn.__name__}, stack=...)."
        )

    def parameters(self) -> list[PipelineParam]:
        import typing

        hints = typing.get_type_hints(self.fn)
        params = []
        for p in inspect.signature(self.fn).parameters.values():
            hint = hints.get(p.name)
            type_name = scalar_type_name(hint) if hint is not None else (
                value_type_name(p.default) if p.default is not inspect.Parameter.empty else None
            )
            if type_name is None:
                raise PipelineDefinitionError(
                    f"pipeline {self.name!r}: parameter {p.name!r} needs a str/int/float/bool/list/dict annotation."
                )
            params.append(PipelineParam(p.name, type_name))
        return params

    def build(self) -> Any:
        """Trace the pipeline into its IR. Traced afresh each call: the code its steps reach may have changed."""
        from stackhop.core.ir_build import build_ir

        return build_ir(self)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


def pipeline(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    image: Any = None,
    resources: dict[str, Any] | None = None,
    retries: int | dict[str, Any] | None = None,
    timeout: float | None = None,
    cache: bool | None = None,
    env: dict[str, str] | None = None,
) -> Any:
    """Declare a pipeline; keyword settings are defaults for every step that does not set its own."""

    def wrap(f: Callable[..., Any]) -> PipelineDef:
        where = f"pipeline {name or f.__name__!r}"
        defaults = _settings_from_kwargs(
            where, image=image, resources=resources, retries=retries, timeout=timeout, cache=cache, env=env
        )
        return PipelineDef(f, name, description, defaults)

    return wrap(fn) if fn is not None else wrap
