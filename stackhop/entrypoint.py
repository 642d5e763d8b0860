"""What runs inside every step's process or container, on every backend.

    python -m stackhop.entrypoint --spec URI --step NAME [--index 0,2]

It reads the run spec, loads the step's inputs from the artifact store, calls the function
(or runs the container command with its placeholders filled), writes each output atomically,
and writes `outputs.json` last: that file is the commit marker downstream steps and caches
trust. On failure it writes `error.json` and exits non-zero; nothing already committed is
touched. Kept free of pydantic and fsspec imports for local roots, so a step starts in tens
of milliseconds.
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
import traceback
from dataclasses import dataclass, field
from typing import Any

from stackhop.core.artifact_types import ARTIFACT_CLASSES, Artifact
from stackhop.core.artifacts import ArtifactStore, content_digest
from stackhop.core.resolve import Index, RunView, instance_key
from stackhop.errors import StackhopError

SCALARS = ("str", "int", "float", "bool", "list", "dict")
_TEE_CHILD = "STACKHOP_ENTRYPOINT_TEED"


@dataclass
class Wiring:
    """Values and locations a PipelineSpec backend hands the step through placeholders.

    Empty for the other backends, where inputs are read from upstream `outputs.json` files
    and outputs go to the run's own prefix.
    """

    meta: str | None = None
    mirror: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    input_artifacts: dict[str, str] = field(default_factory=dict)
    output_artifacts: dict[str, str] = field(default_factory=dict)
    output_parameters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Wiring":
        def pairs(items: list[str]) -> dict[str, str]:
            return dict(item.split("=", 1) for item in items)

        return cls(args.meta.rstrip("/") if args.meta else None,
                   args.meta_mirror.rstrip("/") if args.meta_mirror else None, pairs(args.input),
                   pairs(args.input_artifact), pairs(args.output_artifact), pairs(args.output_parameter))

    def input(self, view: RunView, spec: dict[str, Any], step: str, index: Index) -> Any:
        name = spec["name"]
        if name in self.inputs:
            return _parse_input(step, name, spec["type"], self.inputs[name])
        if name in self.input_artifacts:
            uri = self.input_artifacts[name]
            try:
                record = dict(view.value(spec["value"], step, index))
            except Exception:  # no producer record reachable: the URI alone still names the data
                record = {"type": spec["type"], "metadata": {}, "materializer": None}
            record["uri"] = uri
            return record
        return view.value(spec["value"], step, index)

    def output_uri(self, view: RunView, step: str, output: str, index: Index) -> str:
        if output in self.output_artifacts:
            return self.output_artifacts[output].rstrip("/")
        return view.store.output_uri(view.pipeline, view.run_id, step, output, index)

    def write_output_parameters(self, step: dict[str, Any], record: dict[str, Any]) -> None:
        for name, path in self.output_parameters.items():
            if name not in record["scalars"]:
                raise StepError(f"step {step['name']!r} has no scalar output {name!r} to hand the backend.")
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            value = record["scalars"][name]
            with open(path, "w") as f:
                f.write(value if isinstance(value, str) else json.dumps(value))


def _parse_input(step: str, name: str, type_name: str, text: str) -> Any:
    """A placeholder's text as the declared type: strings verbatim, everything else as JSON."""
    if type_name == "str":
        return text
    try:
        value = json.loads(text)
    except ValueError:
        raise StepError(f"step {step!r}: input {name!r} is {type_name}, and the backend passed {text[:80]!r}.") from None
    if type_name == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    if type_name == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return _check_scalar(step, name, type_name, value)


def _write_meta(view: RunView, step: str, index: Index, name: str, data: Any) -> None:
    """outputs.json and error.json: in the run's own layout, or where the backend's wiring says."""
    wiring = view.wiring
    if not wiring.meta:
        view.store.write_json(view.store.step_meta(view.pipeline, view.run_id, step, index, name), data)
        return
    for base in filter(None, (wiring.mirror, wiring.meta)):  # the backend's own location last: it commits
        ArtifactStore.for_uri(base).write_json(f"{base}/{name}", data)


def _arm_timeout(seconds: float) -> None:
    def expire(signum: int, frame: Any) -> None:
        raise StepError(f"the step ran longer than its timeout of {seconds:g} s")

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _tee(argv: list[str], metas: list[str]) -> int:
    """Run this entrypoint as a child and copy its output to our stdout and to `log.txt` in each meta folder.

    The backend keeps its own log (Cloud Logging, pod logs); this copy lives beside the step's
    outputs, so `stackhop logs` reads it the same way for every backend.
    """
    env = {**os.environ, _TEE_CHILD: "1"}
    child = subprocess.Popen([sys.executable, "-m", "stackhop.entrypoint", *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def forward(signum: int, frame: Any) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    with tempfile.NamedTemporaryFile(prefix="stackhop-log-", suffix=".txt", delete=False) as log:
        assert child.stdout is not None
        for chunk in iter(lambda: child.stdout.read1(65536), b""):  # type: ignore[union-attr]
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            log.write(chunk)
    code = child.wait()
    for meta in metas:
        try:
            uri = meta.rstrip("/") + "/log.txt"
            ArtifactStore.for_uri(uri).put_file(log.name, uri)
        except Exception as exc:  # the step's result stands even if its log copy cannot be stored
            print(f"stackhop: could not store the step log at {meta}: {exc}", file=sys.stderr)
    os.unlink(log.name)
    return code


class StepError(Exception):
    """A failure of the step itself (its code, its command, or an output it did not write)."""


def read_spec(uri: str) -> dict[str, Any]:
    if "://" not in uri:
        with open(uri) as f:
            return json.load(f)
    return ArtifactStore.for_uri(uri).read_json(uri)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stackhop.entrypoint")
    parser.add_argument("--spec", required=True, help="URI or path of the run spec (run.json)")
    parser.add_argument("--step", help="the step to run")
    parser.add_argument("--index", default="", help="loop indexes, comma-separated")
    parser.add_argument("--driver", help="run a backend's driver for the whole run instead of one step")
    # Per-execution values a backend supplies when the run spec is shared by many executions:
    parser.add_argument("--run-id", help="this execution's run id (overrides the spec's)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a pipeline parameter for this execution (JSON, or a plain string)")
    parser.add_argument("--code", default="", help="code archive as URI#DIGEST (overrides the spec's)")
    parser.add_argument("--upstream", action="append", default=[], metavar="STEP=URI",
                        help="where an upstream step's _stackhop files are (e.g. a SageMaker step property)")
    parser.add_argument("--property-dir", help="also write outputs.json here (a directory the backend uploads)")
    # Wiring a PipelineSpec backend (Vertex AI, Kubeflow) fills in through its placeholders:
    parser.add_argument("--meta", help="URI for this step instance's outputs.json, error.json and log.txt")
    parser.add_argument("--meta-mirror", help="a second URI that receives the same files")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=TEXT", help="a scalar input's value")
    parser.add_argument("--input-artifact", action="append", default=[], metavar="NAME=URI", help="an artifact input")
    parser.add_argument("--output-artifact", action="append", default=[], metavar="NAME=URI",
                        help="where to write an artifact output")
    parser.add_argument("--output-parameter", action="append", default=[], metavar="NAME=PATH",
                        help="a local file the backend reads a scalar output from")
    parser.add_argument("--timeout", type=float, help="fail the step after this many seconds")
    parser.add_argument("--final-status", help="the pipeline task final status an exit step receives (JSON)")
    args = parser.parse_args(argv)
    if args.meta and not os.environ.get(_TEE_CHILD):
        return _tee(argv if argv is not None else sys.argv[1:], [args.meta, *filter(None, [args.meta_mirror])])
    if args.driver:
        from stackhop.core.plugins import adapter_class

        return adapter_class(args.driver, where="--driver").drive(args.spec)
    if not args.step:
        parser.error("--step is required unless --driver is given")
    index: Index = tuple(int(x) for x in args.index.split(",") if x != "")
    view = RunView(with_overrides(read_spec(args.spec), args))
    view.wiring = Wiring.from_args(args)
    step = view.steps.get(args.step)
    if step is None:
        print(f"error: run spec has no step {args.step!r}", file=sys.stderr)
        return 2
    if args.final_status:
        os.environ["STACKHOP_PIPELINE_TASK_FINAL_STATUS"] = args.final_status
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
        view.wiring.write_output_parameters(step, record)
    except BaseException as exc:  # report every failure, then exit non-zero
        if isinstance(exc, KeyboardInterrupt):
            raise
        message = str(exc) if isinstance(exc, StepError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, StepError):
            traceback.print_exc()
        print(f"stackhop: step {instance_key(args.step, index)} failed: {message}", file=sys.stderr)
        with contextlib.suppress(Exception):
            _write_meta(view, args.step, index, "error.json", {"message": message, "type": type(exc).__name__})
        return getattr(exc, "exit_code", None) or 1
    _write_meta(view, args.step, index, "outputs.json", record)
    if args.property_dir:
        os.makedirs(args.property_dir, exist_ok=True)
        with open(os.path.join(args.property_dir, "outputs.json"), "w") as f:
            json.dump(record, f, sort_keys=True)
    return 0


def with_overrides(spec: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Apply what the backend passed on the command line for this execution."""
    spec = dict(spec)
    if args.run_id:
        spec["run_id"] = args.run_id
    if args.param:
        params = dict(spec.get("parameters") or {})
        declared = {p["name"]: p["type"] for p in spec["pipeline"].get("parameters", [])}
        for item in args.param:
            name, _, raw = item.partition("=")
            if declared.get(name) == "str":
                params[name] = raw
            else:
                try:
                    params[name] = json.loads(raw)
                except ValueError:
                    params[name] = raw
        spec["parameters"] = params
    if args.code:
        uri, _, digest = args.code.partition("#")
        spec["code"] = {"source_dir": None, "archive_uri": uri, "digest": digest}
    if args.upstream:
        spec["upstream"] = dict(u.split("=", 1) for u in args.upstream)
    return spec


def run_step(view: RunView, step: dict[str, Any], index: Index) -> dict[str, Any]:
    if getattr(view, "wiring", None) is None:
        view.wiring = Wiring()  # type: ignore[attr-defined]
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
    call = step["python"]
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


def _check_scalar(step: str, name: str, type_name: str, value: Any) -> Any:
    checks: dict[str, tuple[type, ...]] = {
        "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "list": (list, tuple), "dict": (dict,)
    }
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()  # numpy.float64(0.93) for a `-> float` step
    if (type_name in ("int", "float") and isinstance(value, bool)) or not isinstance(value, checks[type_name]):
        raise StepError(
            f"step {step!r} returned {type(value).__name__} {value!r} for output {name!r}, which is declared {type_name}."
        )
    if type_name == "float":
        return float(value)
    if type_name == "list":
        return value if isinstance(value, list) else list(value)
    return value


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
    with contextlib.ExitStack() as stack:
        for spec in step["inputs"]:
            if spec.get("value") is None:
                continue
            value = view.wiring.input(view, spec, name, index)
            if spec["type"] in SCALARS:
                kwargs[spec["name"]] = float(value) if spec["type"] == "float" and isinstance(value, int) else value
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
            if out["type"] in SCALARS or out.get("from_return"):
                continue
            uri = view.wiring.output_uri(view, name, out["name"], index)
            staged = view.store.staging_path(uri)
            artifact = ARTIFACT_CLASSES[out["type"]](out["name"], uri, staged)
            artifact.step = name
            outputs[out["name"]] = (artifact, uri)
            kwargs[out["name"]] = artifact
        result = fn(**kwargs)
    returns = [o for o in step["outputs"] if o["type"] in SCALARS or o.get("from_return")]
    if not returns and result is not None:
        print(f"stackhop: step {name!r} returned a {type(result).__name__}, which is not stored because the function "
              "has no return annotation; annotate it (e.g. `-> int`, `-> pd.DataFrame`) to make it the step's output.",
              file=sys.stderr)
    values = _returned(name, result, returns) if returns else {}
    for out in returns:
        value = values[out["name"]]
        if out.get("from_return"):
            uri = view.wiring.output_uri(view, name, out["name"], index)
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
            value = _check_scalar(name, out["name"], out["type"], value)
            record["scalars"][out["name"]] = _json_output(name, out["name"], value)
    for out_name, (artifact, uri) in outputs.items():
        record["artifacts"][out_name] = _commit_artifact(view, name, artifact, uri)
    return record


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
    name = step["name"]
    types = {i["name"]: i["type"] for i in step["inputs"]}
    out_types = {o["name"]: o["type"] for o in step["outputs"]}
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="stackhop-step-"))
        values: dict[str, Any] = {}
        for spec in step["inputs"]:
            if spec.get("value") is not None:
                values[spec["name"]] = view.wiring.input(view, spec, name, index)
            elif spec.get("has_default"):
                values[spec["name"]] = spec.get("default")
        staged: dict[str, str] = {}
        uris: dict[str, str] = {}
        for out in step["outputs"]:
            if out["type"] in SCALARS:
                staged[out["name"]] = os.path.join(scratch, "outputs", out["name"])
                os.makedirs(os.path.dirname(staged[out["name"]]), exist_ok=True)
            else:
                uris[out["name"]] = view.wiring.output_uri(view, name, out["name"], index)
                staged[out["name"]] = view.store.staging_path(uris[out["name"]])

        def fill(item: Any) -> str:
            if isinstance(item, str):
                return item
            key, kind = item["name"], item["placeholder"]
            if kind == "output_path":
                return staged[key]
            value = values[key]
            if kind == "input_value":
                if types[key] not in SCALARS:
                    raise StepError(f"step {name!r}: InputValue({key!r}) is an artifact; use InputPath({key!r}).")
                return _as_text(value)
            if types[key] in SCALARS:
                path = os.path.join(scratch, "inputs", key)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(_as_text(value))
                return path
            return stack.enter_context(view.store.local_copy(value["uri"]))

        spec = step["container"]
        argv = [fill(x) for x in (*spec["command"], *spec["args"])]
        sys.stdout.flush()
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            err = StepError(f"command {argv[0]!r} exited with code {proc.returncode}")
            err.exit_code = proc.returncode if 0 < proc.returncode < 126 else 1  # type: ignore[attr-defined]
            raise err
        record: dict[str, Any] = {"scalars": {}, "artifacts": {}}
        for key, type_name in out_types.items():
            path = staged[key]
            if type_name in SCALARS:
                if not os.path.exists(path):
                    raise StepError(f"step {name!r} did not write scalar output {key!r} at its OutputPath.")
                record["scalars"][key] = _parse_scalar(name, key, type_name, open(path).read())
            else:
                record["artifacts"][key] = _commit_artifact(view, name, ARTIFACT_CLASSES[type_name](key, uris[key], path), uris[key])
        return record


def _parse_scalar(step: str, key: str, type_name: str, text: str) -> Any:
    text = text.rstrip("\n")
    try:
        if type_name == "str":
            return text
        if type_name == "bool":
            if text.strip().lower() not in ("true", "false"):
                raise ValueError(text)
            return text.strip().lower() == "true"
        value = json.loads(text)
        return _as_json(_check_scalar(step, key, type_name, value))
    except (ValueError, StepError, _NotJson):
        raise StepError(f"step {step!r} wrote {text[:80]!r} to output {key!r}, which is not a valid {type_name}.") from None


if __name__ == "__main__":
    sys.exit(main())
