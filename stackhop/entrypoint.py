"""What runs inside every step's process or container, on every backend.

    python -m stackhop.entrypoint --spec URI --step NAME [--index 0,2] [--timeout S] [--wiring REF ARGS...]
    python -m stackhop.entrypoint --spec URI --driver ADAPTER
    python -m stackhop.entrypoint --spec URI --step NAME [--index 0,2] --stage-inputs DIR | --save-outputs DIR

It reads the run spec, loads the step's inputs, calls the function (or runs the container
command with its placeholders filled), writes each output atomically, and writes
`outputs.json` last: that file is the commit marker downstream steps and caches trust. On
failure it writes `error.json` and exits non-zero; nothing already committed is touched.

Where inputs come from and outputs go is the `Wiring` the command names (`stackhop.core.wiring`):
without `--wiring`, the run layout; a backend that hands data around itself compiles
`--wiring module:Class` followed by that wiring's own arguments, which the wiring parses.
`--driver ADAPTER` runs an adapter's driver (`Adapter.drive`) for a whole run instead.
`--stage-inputs` and `--save-outputs` work beside a container step that runs in its own image
(a Kubernetes pod's init container and native sidecar): the first fills DIR with the inputs the
command reads by path, the second waits for SIGTERM and saves what the command wrote there.
Kept free of pydantic, fsspec (for local roots) and pluggy, so a step starts in tens of milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import subprocess
import sys
import signal
import tempfile
import time
import traceback
from typing import Any

from stackhop.core.artifact_types import ARTIFACT_CLASSES, Artifact
from stackhop.core.artifacts import content_digest
from stackhop.core.resolve import Index, RunView, instance_key, read_spec
from stackhop.core.wiring import StepError, Wiring, check_scalar, resolve_wiring
from stackhop.errors import ConfigError, StackhopError

__all__ = ["StepError", "main", "read_spec", "run_step"]

SCALARS = ("str", "int", "float", "bool", "list", "dict")


def _arm_timeout(seconds: float) -> None:
    def expire(signum: int, frame: Any) -> None:
        raise StepError(f"the step ran longer than its timeout of {seconds:g} s")

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _split_wiring(argv: list[str]) -> tuple[list[str], list[str]]:
    """The entrypoint's own arguments (through `--wiring REF`), and the wiring's (everything after)."""
    for i, arg in enumerate(argv):
        if arg == "--wiring":
            return argv[: i + 2], argv[i + 2:]
        if arg.startswith("--wiring="):
            return argv[: i + 1], argv[i + 1:]
    return argv, []


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stackhop.entrypoint", allow_abbrev=False,
                                     epilog="Arguments after --wiring REF belong to the wiring; "
                                            "`--wiring REF --help` lists them.")
    parser.add_argument("--spec", required=True, help="URI or path of the run spec (run.json)")
    parser.add_argument("--step", help="the step to run")
    parser.add_argument("--index", default="", help="loop indexes, comma-separated")
    parser.add_argument("--timeout", type=float, help="fail the step after this many seconds")
    parser.add_argument("--wiring", metavar="MODULE:CLASS",
                        help="how the backend hands this step its inputs and takes its outputs "
                             "(default: the run layout); a registered wiring name also works")
    parser.add_argument("--driver", metavar="ADAPTER", help="run an adapter's driver for the whole run instead of one step")
    beside = parser.add_mutually_exclusive_group()
    beside.add_argument("--stage-inputs", metavar="DIR",
                        help="copy a container step's path inputs into DIR/inputs instead of running the step")
    beside.add_argument("--save-outputs", metavar="DIR",
                        help="on SIGTERM, save the outputs a container step wrote under DIR/outputs")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, rest = _split_wiring(argv)
    parser = _parser()
    args = parser.parse_args(own)
    if args.driver:
        from stackhop.core.plugins import adapter_class

        return adapter_class(args.driver, where="--driver").drive(args.spec)
    if not args.step:
        parser.error("--step is required unless --driver is given")
    if args.stage_inputs or args.save_outputs:
        return _beside(args)
    try:
        wiring = resolve_wiring(args.wiring).from_argv(rest) if args.wiring else Wiring()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return wiring.execute(argv, lambda: _run(args, wiring))


def _run(args: argparse.Namespace, wiring: Wiring) -> int:
    index: Index = tuple(int(x) for x in args.index.split(",") if x != "")
    view = RunView(wiring.prepare(read_spec(args.spec)), wiring=wiring)
    step = view.steps.get(args.step)
    if step is None:
        print(f"error: run spec has no step {args.step!r}", file=sys.stderr)
        return 2
    try:
        if args.timeout:
            _arm_timeout(args.timeout)
        record = run_step(view, step, index)
        if args.timeout:
            signal.alarm(0)
        try:
            json.dumps(record, allow_nan=False)  # the commit marker must be JSON every reader accepts
        except (TypeError, ValueError, RecursionError) as exc:
            raise StepError(f"step {args.step!r} produced outputs JSON cannot hold ({type(exc).__name__}: {exc}); "
                            "return strings, finite numbers, booleans, None, lists and string-keyed dicts.") from None
        wiring.deliver(view, step, index, record)
    except BaseException as exc:  # report every failure, then exit non-zero
        if isinstance(exc, KeyboardInterrupt):
            raise
        message = str(exc) if isinstance(exc, StepError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, StepError):
            traceback.print_exc()
        print(f"stackhop: step {instance_key(args.step, index)} failed: {message}", file=sys.stderr)
        with contextlib.suppress(Exception):
            view.write_meta(args.step, index, "error.json", {"message": message, "type": type(exc).__name__})
        return getattr(exc, "exit_code", None) or 1
    view.write_meta(args.step, index, "outputs.json", record)
    return 0


def run_step(view: RunView, step: dict[str, Any], index: Index) -> dict[str, Any]:
    """One step instance's output record; inputs and output locations come from the view's wiring."""
    if step["kind"] == "python":
        return _run_python(view, step, index)
    if step["kind"] == "container":
        return _run_container(view, step, index)
    if step["kind"] == "fail":
        raise StepError(step["fail"]["message"])
    raise StepError(f"step {step['name']!r} is a resource op; only a Kubernetes backend can run it.")


def _import_step(view: RunView, step: dict[str, Any]) -> Any:
    code = view.spec.get("code") or {}
    root = code.get("source_dir")
    if not root and code.get("archive_uri"):
        from stackhop.core.code_archive import extract

        root = extract(code["archive_uri"], code["digest"])
    if root and root not in sys.path:
        sys.path.insert(0, root)
    if root:  # where files the code loads by relative path (a component YAML) are, far from the user's cwd
        os.environ["STACKHOP_CODE_ROOT"] = root
    call = step["python"]
    if call.get("packages"):
        from stackhop.core.step_packages import ensure_installed

        ensure_installed(step["name"], call["packages"])
    if call.get("source") is not None or call.get("pickled"):
        from stackhop.core.code_by_value import load

        loaded = load(call, f"step {step['name']!r}", root)
        return getattr(loaded, "fn", loaded)
    from stackhop.core.import_guard import importing

    with importing(call["module"], "a step process"):
        obj: Any = importlib.import_module(call["module"])
    for part in call["qualname"].split("."):
        obj = getattr(obj, part)
    return getattr(obj, "fn", obj)


_JSON_DEPTH = 400
"""Deeper than this, JSON readers (and this process's own recursion) give up; say so instead."""


class _NotJson(Exception):
    """Where and why a value JSON cannot hold; the caller turns it into a sentence naming the step."""

    def __init__(self, problem: str, fix: str, path: str = "", cycle: bool = False):
        super().__init__(problem)
        self.problem, self.fix, self.path, self.cycle = problem, fix, path, cycle


def _as_json(value: Any, path: str = "", active: tuple[int, ...] = ()) -> Any:
    """`value` as JSON holds it (tuples as lists, numpy scalars as Python numbers), or _NotJson saying where not."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJson(repr(value), "JSON has no NaN or infinity, so return a finite number or None", path)
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _as_json(value.item(), path, active)
    if isinstance(value, (dict, list, tuple)):
        if id(value) in active:
            raise _NotJson(type(value).__name__, "JSON cannot hold a reference cycle, so return a copy without one",
                           path, cycle=True)
        if len(active) >= _JSON_DEPTH:
            raise _NotJson(f"values nested more than {_JSON_DEPTH} levels deep",
                           "JSON readers stop at about that depth, so flatten the value", "")
        inner = (*active, id(value))
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise _NotJson(f"a dict with a non-string key {key!r}",
                                   "JSON object keys are strings, so convert the keys with str() or return a list "
                                   "of [key, value] pairs", path)
                out[key] = _as_json(item, f"{path}[{key!r}]", inner)
            return out
        return [_as_json(item, f"{path}[{i}]", inner) for i, item in enumerate(value)]
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise _NotJson(f"a {type(value).__module__}.{type(value).__qualname__} {shown}".replace("builtins.", ""),
                   "JSON holds only strings, numbers, booleans, None, lists and dicts, so convert it (a set with "
                   "sorted(...), an array with .tolist()) or annotate the return with a type a materializer stores", path)


def _json_output(step: str, output: str, value: Any) -> Any:
    """A scalar output as it goes into outputs.json; a StepError sentence when JSON cannot hold it."""
    try:
        return _as_json(value)
    except _NotJson as exc:
        top = type(value).__name__
        if exc.cycle:
            what = f"a {top} that contains itself (at {exc.path})"
        elif exc.path:
            what = f"a {top} holding {exc.problem} at {exc.path}"
        elif exc.problem.startswith("values nested"):
            what = f"a {top} with {exc.problem}"
        else:
            what = exc.problem
        raise StepError(f"step {step!r} returned {what} for output {output!r}; {exc.fix}.") from None


def _json_metadata(step: str, output: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """An artifact's metadata as it goes into outputs.json; a StepError sentence when JSON cannot hold it."""
    try:
        return _as_json(metadata)
    except _NotJson as exc:
        what = f"a {exc.problem} that contains itself" if exc.cycle else exc.problem
        where = f" at {exc.path}" if exc.path else ""
        fix = exc.fix.replace("return a", "record a").replace("return the", "record the")
        raise StepError(f"step {step!r} put {what}{where} in the metadata of output {output!r}; {fix}.") from None


def _annotations(fn: Any) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(fn)
    except Exception:  # an annotation this process cannot resolve: load without the expected type
        return {}


def _returned(step: str, result: Any, returns: list[dict[str, Any]]) -> dict[str, Any]:
    """Output name -> value: the value itself, a NamedTuple's fields, or a plain tuple in field order."""
    if len(returns) == 1 and returns[0]["name"] == "output":
        return {"output": result}
    names = [o["name"] for o in returns]
    if hasattr(result, "_fields"):
        missing = [n for n in names if n not in result._fields]
        if missing:
            raise StepError(f"step {step!r} returned a {type(result).__name__} without field {missing[0]!r}.")
        return {n: getattr(result, n) for n in names}
    if isinstance(result, (tuple, list)) and len(result) == len(names):
        return dict(zip(names, result))
    raise StepError(
        f"step {step!r} must return {len(names)} values ({', '.join(names)}), a NamedTuple or a tuple in that order; "
        f"it returned {type(result).__name__} {str(result)[:60]!r}."
    )


def _run_python(view: RunView, step: dict[str, Any], index: Index) -> dict[str, Any]:
    from stackhop.core import materializers

    fn = _import_step(view, step)
    name = step["name"]
    allow_pickle = step.get("allow_pickle", False)
    kwargs: dict[str, Any] = {}
    record: dict[str, Any] = {"scalars": {}, "artifacts": {}}
    hints: dict[str, Any] | None = None
    by_path = _path_params(fn)
    scalar_files: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="stackhop-paths-")) if by_path else ""
        for spec in step["inputs"]:
            if spec.get("value") is None:
                continue
            value = view.input_value(spec, name, index)
            if spec["name"] in by_path:
                kwargs[spec["name"]] = (_scalar_file(scratch, "inputs", spec["name"], value) if spec["type"] in SCALARS
                                        else stack.enter_context(view.store.local_copy(value["uri"])))
                continue
            if spec["type"] in SCALARS:
                kwargs[spec["name"]] = float(value) if spec["type"] == "float" and isinstance(value, int) else value
                continue
            if spec.get("is_list"):  # Collected artifacts: one per iteration, in iteration order
                cls = ARTIFACT_CLASSES[spec["type"]]
                kwargs[spec["name"]] = [cls(spec["name"], v["uri"], stack.enter_context(view.store.local_copy(v["uri"])),
                                            v.get("metadata")) for v in value]
                continue
            path = stack.enter_context(view.store.local_copy(value["uri"]))
            if spec.get("as_value"):
                if not value.get("materializer"):
                    raise StepError(f"step {name!r}: input {spec['name']!r} is a file artifact, not a stored value; "
                                    "annotate it Input[...] to receive its path.")
                hints = _annotations(fn) if hints is None else hints
                kwargs[spec["name"]] = materializers.load(
                    path, value["materializer"], allow_pickle=allow_pickle, expected=hints.get(spec["name"]),
                    meta=value.get("materializer_meta"), module=value.get("materializer_module"))
            else:
                cls = ARTIFACT_CLASSES[spec["type"]]
                kwargs[spec["name"]] = cls(spec["name"], value["uri"], path, value.get("metadata"))
        outputs: dict[str, tuple[Artifact, str]] = {}
        for out in step["outputs"]:
            if out["name"] in by_path and out["type"] in SCALARS:
                scalar_files[out["name"]] = kwargs[out["name"]] = _scalar_file(scratch, "outputs", out["name"], None)
                continue
            if out["type"] in SCALARS or out.get("from_return"):
                continue
            uri = view.output_uri(name, out["name"], index)
            staged = view.store.staging_path(uri)
            artifact = ARTIFACT_CLASSES[out["type"]](out["name"], uri, staged)
            artifact.step = name
            outputs[out["name"]] = (artifact, uri)
            kwargs[out["name"]] = artifact.path if out["name"] in by_path else artifact
        result = fn(**kwargs)
        for key, path in scalar_files.items():
            if not os.path.exists(path):
                raise StepError(f"step {name!r} did not write scalar output {key!r}; write its value as text to the "
                                f"path its OutputPath parameter {key!r} is given.")
            with open(path) as f:
                record["scalars"][key] = _parse_scalar(name, key, next(o["type"] for o in step["outputs"]
                                                                       if o["name"] == key), f.read())
    returns = [o for o in step["outputs"]
               if (o["type"] in SCALARS or o.get("from_return")) and o["name"] not in scalar_files]
    if not returns and result is not None:
        print(f"stackhop: step {name!r} returned a {type(result).__name__}, which is not stored because the function "
              "has no return annotation; annotate it (e.g. `-> int`, `-> pd.DataFrame`) to make it the step's output.",
              file=sys.stderr)
    values = _returned(name, result, returns) if returns else {}
    for out in returns:
        value = values[out["name"]]
        if out.get("from_return"):
            uri = view.output_uri(name, out["name"], index)
            staged = view.store.staging_path(uri)
            where = f"step {name!r}" + (f" (output {out['name']!r})" if out["name"] != "output" else "")
            try:
                kind, meta, module = materializers.save(
                    value, staged, name=out.get("materializer") or materializers.AUTO, allow_pickle=allow_pickle, where=where)
            except StackhopError as exc:
                raise StepError(str(exc)) from None
            digest = content_digest(staged)
            view.store.commit(staged, uri)
            record["artifacts"][out["name"]] = {"uri": uri, "type": "Artifact", "digest": digest, "metadata": {},
                                                "materializer": kind, "materializer_meta": meta,
                                                "materializer_module": module}
        else:
            value = check_scalar(name, out["name"], out["type"], value)
            record["scalars"][out["name"]] = _json_output(name, out["name"], value)
    for out_name, (artifact, uri) in outputs.items():
        record["artifacts"][out_name] = _commit_artifact(view, name, artifact, uri)
    return record


def _path_params(fn: Any) -> set[str]:
    """Parameters annotated InputPath/OutputPath: the function is handed local path strings for them."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return set()
    raw = {n: p.annotation for n, p in params.items()}
    if not any(isinstance(a, str) and "Path(" in a or type(a).__name__ in _PATH_MARKERS for a in raw.values()):
        return set()  # the common case, without resolving annotations or importing the DSL
    from stackhop.core.containers import InputPath, OutputPath

    hints = _annotations(fn)
    return {n for n, a in raw.items() if isinstance(hints.get(n, a), (InputPath, OutputPath))}


_PATH_MARKERS = ("InputPath", "OutputPath")


def _scalar_file(scratch: str, direction: str, key: str, value: Any) -> str:
    """A file for a scalar behind InputPath (holding its text) or OutputPath (for the step to write)."""
    path = os.path.join(scratch, direction, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if value is not None or direction == "inputs":
        with open(path, "w") as f:
            f.write(_as_text(value))
    return path


def _beside(args: argparse.Namespace) -> int:
    """Stage a container step's inputs, or save its outputs, from a container beside its own."""
    index: Index = tuple(int(x) for x in args.index.split(",") if x != "")
    saving = bool(args.save_outputs)
    stopped = []
    if saving:  # first: the kubelet may stop this sidecar the moment the step's command exits
        signal.signal(signal.SIGTERM, lambda signum, frame: stopped.append(signum))
    view = RunView(read_spec(args.spec))
    step = view.steps.get(args.step)
    if step is None or step["kind"] != "container":
        print(f"error: run spec has no container step {args.step!r}", file=sys.stderr)
        return 2
    root = args.save_outputs or args.stage_inputs
    try:
        if not saving:
            stage_container_inputs(view, step, index, root)
            return 0
        with open(os.path.join(root, SAVER_READY), "w"):
            pass
        waited = 0.0
        while not stopped:  # a short sleep, not pause(): a signal between the test and pause() would be lost
            time.sleep(0.2)
            waited += 0.2
            if waited > SIDECAR_PROOF_SECONDS and not os.path.exists(os.path.join(root, STAGE_STARTED)):
                raise StepError(  # before 1.29 this is an ordinary init container, and nothing runs after it
                    f"step {args.step!r}: the save-outputs container is not running as a native sidecar (the stager "
                    f"beside it never started); container steps need Kubernetes 1.29 or later.")
        record = save_container_outputs(view, step, index, root)
    except Exception as exc:
        message = str(exc) if isinstance(exc, (StepError, StackhopError)) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, (StepError, StackhopError)):
            traceback.print_exc()
        print(f"stackhop: step {instance_key(args.step, index)} failed: {message}", file=sys.stderr)
        with contextlib.suppress(Exception):
            view.write_meta(args.step, index, "error.json", {"message": message, "type": type(exc).__name__})
        return 1
    view.write_meta(args.step, index, "outputs.json", record)
    return 0


SAVER_READY = ".saver-ready"
STAGE_STARTED = ".stage-started"
SIDECAR_PROOF_SECONDS = float(os.environ.get("STACKHOP_SIDECAR_PROOF_SECONDS", "120"))
"""How long the saver waits for the stager beside it before it concludes it is not a native sidecar."""


def _given(step: dict[str, Any]) -> set[str]:
    """The inputs IfPresent sees as present, decided from the pipeline as compiled, as the command was."""
    from stackhop.core import ir
    from stackhop.core.container_args import present_inputs

    return present_inputs(ir.Step.model_validate(step))


def stage_container_inputs(view: RunView, step: dict[str, Any], index: Index, root: str,
                           saver_wait_seconds: float = 60.0) -> None:
    """Clear this instance's old markers, write DIR/inputs/<name> for each path input, make DIR/outputs.

    Returns only once the output saver beside the step is listening, so a command that exits at
    once cannot be stopped before its outputs are saved."""
    from stackhop.core import ir
    from stackhop.core.container_args import argv_items, placeholders, resolve_presence

    name = step["name"]
    with open(os.path.join(root, STAGE_STARTED), "w"):
        pass
    for marker in ("outputs.json", "error.json"):
        view.store.remove(view.store.step_meta(view.pipeline, view.run_id, name, index, marker))
    types = {i["name"]: i["type"] for i in step["inputs"]}
    by_name = {i["name"]: i for i in step["inputs"]}
    spec = ir.ContainerSpec.model_validate(step["container"])
    os.makedirs(os.path.join(root, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(root, "outputs"), exist_ok=True)
    for item in placeholders(resolve_presence(argv_items(spec), _given(step))):
        if item.placeholder != "input_path":
            continue
        source = by_name[item.name]
        value = view.input_value(source, name, index) if source.get("value") is not None else source.get("default")
        dest = os.path.join(root, "inputs", item.name)
        if types[item.name] in SCALARS:
            with open(dest, "w") as f:
                f.write(_as_text(value))
        elif not os.path.exists(dest):
            view.store.get(value["uri"], dest)
    deadline = time.monotonic() + saver_wait_seconds
    while not os.path.exists(os.path.join(root, SAVER_READY)):
        if time.monotonic() > deadline:
            raise StepError(f"step {name!r}: the save-outputs sidecar did not start within {saver_wait_seconds:g} s; "
                            "container steps need native sidecar containers (Kubernetes 1.29 or later).")
        time.sleep(0.05)


def save_container_outputs(view: RunView, step: dict[str, Any], index: Index, root: str) -> dict[str, Any]:
    """The step record of what the command left in DIR/outputs (and at its OutputUris)."""
    import shutil

    from stackhop.core import ir
    from stackhop.core.container_args import argv_items, placeholders, resolve_presence

    name = step["name"]
    spec = ir.ContainerSpec.model_validate(step["container"])
    used = list(placeholders(resolve_presence(argv_items(spec), _given(step))))
    by_uri = {p.name for p in used if p.placeholder == "output_uri"}
    by_path = {p.name for p in used if p.placeholder == "output_path"}
    out_types = {o["name"]: o["type"] for o in step["outputs"]}
    staged: dict[str, str] = {}
    uris: dict[str, str] = {}
    for key, type_name in out_types.items():
        written = os.path.join(root, "outputs", key)
        staged[key] = written
        if type_name in SCALARS:
            continue
        uris[key] = view.output_uri(name, key, index)
        if key in by_uri - by_path:
            continue
        # the store's commit renames or uploads-then-deletes its staging copy; the emptyDir stays as it is
        staged[key] = view.store.staging_path(uris[key])
        if os.path.isdir(written):
            shutil.copytree(written, staged[key])
        elif os.path.exists(written):
            shutil.copyfile(written, staged[key])
    return collect_container_outputs(view, name, out_types, staged, uris, by_uri - by_path)


def _commit_artifact(view: RunView, step: str, artifact: Artifact, uri: str) -> dict[str, Any]:
    staged = artifact.path
    metadata = _json_metadata(step, artifact.name, artifact.metadata)
    if not os.path.exists(staged):
        if artifact.type_name in ("Metrics", "ClassificationMetrics"):
            with open(staged, "w") as f:
                json.dump(metadata, f, sort_keys=True)
        else:
            raise StepError(
                f"step {step!r} did not write output {artifact.name!r}; write a file or directory at {artifact.name}.path."
            )
    digest = content_digest(staged)
    view.store.commit(staged, uri)
    return {"uri": uri, "type": artifact.type_name, "digest": digest, "metadata": metadata, "materializer": None}


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _run_container(view: RunView, step: dict[str, Any], index: Index) -> dict[str, Any]:
    """Run the command on this host with placeholders filled; the image is the backend's business."""
    from stackhop.core import ir
    from stackhop.core.container_args import argv_items, placeholders, render

    name = step["name"]
    types = {i["name"]: i["type"] for i in step["inputs"]}
    out_types = {o["name"]: o["type"] for o in step["outputs"]}
    spec = ir.ContainerSpec.model_validate(step["container"])
    by_uri = {p.name for p in placeholders(argv_items(spec)) if p.placeholder == "output_uri"}
    by_path = {p.name for p in placeholders(argv_items(spec)) if p.placeholder == "output_path"}
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="stackhop-step-"))
        values: dict[str, Any] = {}
        present: set[str] = set()
        for spec_in in step["inputs"]:
            if spec_in.get("value") is not None:
                values[spec_in["name"]] = view.input_value(spec_in, name, index)
                present.add(spec_in["name"]) if values[spec_in["name"]] is not None else None
            elif spec_in.get("has_default"):
                values[spec_in["name"]] = spec_in.get("default")
        staged: dict[str, str] = {}
        uris: dict[str, str] = {}
        for out in step["outputs"]:
            if out["type"] in SCALARS:
                staged[out["name"]] = os.path.join(scratch, "outputs", out["name"])
                os.makedirs(os.path.dirname(staged[out["name"]]), exist_ok=True)
            else:
                uris[out["name"]] = view.output_uri(name, out["name"], index)
                staged[out["name"]] = view.store.staging_path(uris[out["name"]])

        def fill(item: ir.Placeholder) -> str:
            key, kind = item.name, item.placeholder
            if kind == "output_path":
                return staged[key]
            if kind == "output_uri":
                return uris[key]
            value = values[key]
            if kind == "input_uri":
                return value["uri"]
            if kind == "input_value":
                return _as_text(value)
            if types[key] in SCALARS:
                path = os.path.join(scratch, "inputs", key)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(_as_text(value))
                return path
            return stack.enter_context(view.store.local_copy(value["uri"]))

        in_image = None
        if view.spec.get("container_runtime"):  # the local stack's settings.container_runtime
            from stackhop.adapters.local.container_runtime import InImage, container_name

            in_image = InImage(view.spec["container_runtime"], step, container_name(
                view.run_id, os.environ.get("STACKHOP_STEP", instance_key(name, index)),
                os.environ.get("STACKHOP_ATTEMPT", "1")), scratch)
            fill = in_image.placing(fill)
        argv = render(argv_items(spec), present, fill)
        sys.stdout.flush()
        try:
            proc = subprocess.run(argv if in_image is None else in_image.argv(argv), stdin=subprocess.DEVNULL)
        except OSError as exc:
            started = argv[0] if in_image is None else in_image.runtime
            raise StepError(f"step {name!r}: command {started!r} cannot start ({exc.strerror}); check the command "
                            "is installed and on PATH.") from None
        if proc.returncode != 0:
            err = StepError(f"command {argv[0]!r} exited with code {proc.returncode}" if in_image is None
                            else in_image.failure(argv, proc.returncode))
            err.exit_code = proc.returncode if 0 < proc.returncode < 126 else 1  # type: ignore[attr-defined]
            raise err
        if in_image is not None:
            in_image.collect(staged)
        return collect_container_outputs(view, name, out_types, staged, uris, by_uri - by_path)


def collect_container_outputs(view: RunView, name: str, out_types: dict[str, str], staged: dict[str, str],
                              uris: dict[str, str], written_at_uri: set[str]) -> dict[str, Any]:
    """The step record of a finished command: scalars parsed from their files, artifacts committed to the store."""
    record: dict[str, Any] = {"scalars": {}, "artifacts": {}}
    for key, type_name in out_types.items():
        path = staged[key]
        if type_name in SCALARS:
            if not os.path.exists(path):
                raise StepError(f"step {name!r} did not write scalar output {key!r} at its OutputPath.")
            with open(path) as f:
                record["scalars"][key] = _parse_scalar(name, key, type_name, f.read())
        elif key in written_at_uri:
            if not view.store.exists(uris[key]):
                raise StepError(f"step {name!r} did not write output {key!r} at its OutputUri {uris[key]}.")
            with view.store.local_copy(uris[key]) as local:
                digest = content_digest(local)
            record["artifacts"][key] = {"uri": uris[key], "type": type_name, "digest": digest, "metadata": {},
                                        "materializer": None}
        else:
            record["artifacts"][key] = _commit_artifact(view, name, ARTIFACT_CLASSES[type_name](key, uris[key], path), uris[key])
    return record


def _parse_scalar(step: str, key: str, type_name: str, text: str) -> Any:
    text = text[:-1] if text.endswith("\n") else text  # the one newline `echo` adds; others are the value
    try:
        if type_name == "str":
            return text
        if type_name == "bool":
            if text.strip().lower() not in ("true", "false"):
                raise ValueError(text)
            return text.strip().lower() == "true"
        value = json.loads(text)
        return _as_json(check_scalar(step, key, type_name, value))
    except (ValueError, StepError, _NotJson):
        raise StepError(f"step {step!r} wrote {text[:80]!r} to output {key!r}, which is not a valid {type_name}.") from None


if __name__ == "__main__":
    sys.exit(main())
