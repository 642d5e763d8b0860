"""The step after a container step on SageMaker: its outputs as a stackhop record, in the stackhop image.

    python -m stackhop.adapters.sagemaker.record --spec URI --step NAME [--index 0,1]
        --wiring REF [SageMakerWiring arguments] --output NAME=URI ...

The user's image holds nothing of stackhop, so something else must turn the files its command
wrote into what conditions and downstream steps read: `outputs.json` (artifact URIs with their
digests, scalars parsed as on every backend) in the artifact store and in the PropertyFile
directory SageMaker uploads, plus each scalar as text under `values/`. Each `--output` is where
SageMaker put that output, which for a step served from SageMaker's cache is under the execution
that ran it. A missing or malformed output fails this step with the sentence a local run gives.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from typing import Any

from stackhop.core.artifacts import ArtifactStore
from stackhop.core.resolve import RunView, instance_key, read_spec
from stackhop.core.wiring import StepError, name_value, resolve_wiring
from stackhop.errors import ConfigError

_SCALARS = ("str", "int", "float", "bool", "list", "dict")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    at = argv.index("--wiring") if "--wiring" in argv else len(argv)
    own, rest = argv[: at + 2], argv[at + 2:]
    parser = argparse.ArgumentParser(prog="python -m stackhop.adapters.sagemaker.record", allow_abbrev=False)
    parser.add_argument("--spec", required=True)
    parser.add_argument("--step", required=True)
    parser.add_argument("--index", default="")
    parser.add_argument("--wiring", required=True)
    args = parser.parse_args(own)
    outputs_parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    outputs_parser.add_argument("--output", action="append", type=name_value, default=[])
    found, wiring_args = outputs_parser.parse_known_args(rest)
    try:
        wiring = resolve_wiring(args.wiring).from_argv(wiring_args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    index = tuple(int(x) for x in args.index.split(",") if x != "")
    view = RunView(wiring.prepare(read_spec(args.spec)), wiring=wiring)
    step = view.steps.get(args.step)
    if step is None or step["kind"] != "container":
        print(f"error: run spec has no container step {args.step!r}", file=sys.stderr)
        return 2
    try:
        record = collect(view, step, dict(found.output))
        wiring.deliver(view, step, index, record)
    except (StepError, ConfigError) as exc:
        print(f"stackhop: step {instance_key(args.step, index)} failed: {exc}", file=sys.stderr)
        with contextlib.suppress(Exception):
            view.write_meta(args.step, index, "error.json", {"message": str(exc), "type": type(exc).__name__})
        return 1
    view.write_meta(args.step, index, "outputs.json", record)
    return 0


def collect(view: RunView, step: dict[str, Any], where: dict[str, str]) -> dict[str, Any]:
    """The record of a finished container command whose outputs SageMaker uploaded to `where`."""
    from stackhop.entrypoint import collect_container_outputs

    name = step["name"]
    out_types = {o["name"]: o["type"] for o in step["outputs"]}
    missing = sorted(set(out_types) - set(where))
    if missing:
        raise StepError(f"step {name!r}: the compiled definition names no location for output {missing[0]!r}; "
                        "compile the pipeline again.")
    for key in out_types:
        if not ArtifactStore.for_uri(where[key]).exists(where[key]):
            raise StepError(f"step {name!r} did not write output {key!r}: nothing was uploaded to {where[key]}; write "
                            f"a file or directory at its OutputPath (or the artifact at its OutputUri).")
    with tempfile.TemporaryDirectory(prefix="stackhop-record-") as scratch:
        staged: dict[str, str] = dict(where)  # an artifact stays where SageMaker uploaded it
        for key, type_name in out_types.items():
            if type_name in _SCALARS:
                staged[key] = os.path.join(scratch, key)
                ArtifactStore.for_uri(where[key]).get(where[key], staged[key])
        artifacts = {k for k, t in out_types.items() if t not in _SCALARS}
        return collect_container_outputs(view, name, out_types, staged, where, artifacts)


if __name__ == "__main__":
    sys.exit(main())
