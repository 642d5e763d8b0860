"""What a PipelineSpec step process (Vertex AI, Kubeflow Pipelines) needs beyond the run layout.

The KFP launcher fills the command's placeholders: scalar inputs as text, artifact inputs and
outputs as URIs it chose (so the backend records lineage), scalar outputs as local files it
reads back, and a hidden `stackhop_meta` artifact for `outputs.json`, `error.json` and the
step's log. Imported at step start, so it stays light: no pydantic, no protobuf.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any, Callable

from stackhop.core.artifacts import ArtifactStore
from stackhop.core.wiring import SharedSpecWiring, StepError, check_scalar, name_value

if TYPE_CHECKING:
    from stackhop.core.resolve import Index, RunView

_TEE_CHILD = "STACKHOP_ENTRYPOINT_TEED"
FINAL_STATUS_ENV = "STACKHOP_PIPELINE_TASK_FINAL_STATUS"
ITERATION_FILE = "iteration.json"
"""The loop items a step in a loop was handed: the backend lists iterations in no set order, so readers match these."""


class PipelineSpecWiring(SharedSpecWiring):
    name = "pipelinespec"

    def __init__(self, *, meta: str | None = None, run_root: str | None = None, mirror_step: str | None = None,
                 input: list[tuple[str, str]] | None = None, input_artifact: list[tuple[str, str]] | None = None,
                 output_artifact: list[tuple[str, str]] | None = None,
                 output_parameter: list[tuple[str, str]] | None = None, final_status: str | None = None,
                 input_artifact_list: list[str] | None = None, executor_input: str | None = None,
                 upstream_list: list[tuple[str, str]] | None = None, **shared: Any) -> None:
        super().__init__(**shared)
        self.input_lists = list(input_artifact_list or [])
        self.executor_input = executor_input
        self.upstream_lists = dict(upstream_list or [])
        self.meta = meta.rstrip("/") if meta else None
        if self.run_id is None and self.meta and run_root:
            self.run_id = run_of(self.meta, run_root)
        self.mirror = (mirror_uri(run_root.rsplit("/", 1)[0], run_root.rsplit("/", 1)[1], self.run_id, mirror_step,
                                  hashlib.sha256(self.meta.encode()).hexdigest()[:16])
                       if mirror_step and run_root and self.meta and self.run_id else None)
        self.inputs = dict(input or [])
        self.input_artifacts = dict(input_artifact or [])
        self.output_artifacts = dict(output_artifact or [])
        self.output_parameters = dict(output_parameter or [])
        self.final_status = final_status
        self.items: dict[str, dict[str, Any]] = {}
        """The loop items this step was handed, by loop and field: which iteration it is, for run readers."""

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--meta", help="URI for this step instance's outputs.json, error.json and log.txt")
        parser.add_argument("--run-root", help="{artifact_root}/{pipeline}: the run is the folder below it that the "
                                               "backend put --meta in (each run has its own pipeline root there)")
        parser.add_argument("--mirror-step", help="also write the meta files into the run layout of this step, where "
                                                  "readers find them when the backend names no output locations")
        parser.add_argument("--input", action="append", type=name_value, metavar="NAME=TEXT",
                            help="a scalar input's value")
        parser.add_argument("--input-artifact", action="append", type=name_value, metavar="NAME=URI",
                            help="an artifact input")
        parser.add_argument("--output-artifact", action="append", type=name_value, metavar="NAME=URI",
                            help="where to write an artifact output")
        parser.add_argument("--output-parameter", action="append", type=name_value, metavar="NAME=PATH",
                            help="a local file the backend reads a scalar output from")
        parser.add_argument("--final-status", help="the pipeline task final status an exit step receives (JSON)")
        parser.add_argument("--input-artifact-list", action="append", metavar="NAME",
                            help="an input that is a list of artifacts, read from --executor-input")
        parser.add_argument("--executor-input", help="the launcher's ExecutorInput ({{$}}), JSON")
        parser.add_argument("--upstream-list", action="append", type=name_value, metavar="STEP=INPUT",
                            help="the list input holding every iteration's _stackhop files of an in-loop step")

    def execute(self, argv: list[str], run: Callable[[], int]) -> int:
        if self.final_status:
            os.environ[FINAL_STATUS_ENV] = self.final_status
        if self.meta and not os.environ.get(_TEE_CHILD):
            return _tee(argv, [m for m in (self.meta, self.mirror) if m])
        return run()

    def input(self, view: "RunView", spec: dict[str, Any], step: str, index: "Index") -> Any:
        name = spec["name"]
        if name in self.input_lists:  # only the launcher knows how many there are: its ExecutorInput lists them
            return self._artifact_list(view, spec)
        if name in self.inputs:
            value = _parse_input(step, name, spec["type"], self.inputs[name])
            ref = spec.get("value") or {}
            if ref.get("kind") == "loop_item":
                self.items.setdefault(ref["loop"], {})[ref.get("field") or ""] = value
            return value
        if name in self.input_artifacts:
            try:
                record = dict(view.value(spec["value"], step, index))
            except Exception:  # no producer record reachable: the URI alone still names the data
                record = {"type": spec["type"], "metadata": {}, "materializer": None}
            record["uri"] = self.input_artifacts[name]
            return record
        return super().input(view, spec, step, index)

    def _artifact_list(self, view: "RunView", spec: dict[str, Any]) -> list[dict[str, Any]]:
        """Each iteration's artifact, with the metadata and digest its step recorded where the records are listed."""
        given = json.loads(self.executor_input or "{}").get("inputs", {}).get("artifacts", {})
        uris = [a["uri"] for a in given.get(spec["name"], {}).get("artifacts", [])]
        ref = spec["value"]
        metas = [a["uri"] for a in given.get(self.upstream_lists.get(ref["step"], ""), {}).get("artifacts", [])]
        out = []
        for i, uri in enumerate(uris):
            record: dict[str, Any] = {"type": spec["type"], "metadata": {}, "materializer": None}
            if i < len(metas):
                try:
                    record = dict(view.store.read_json(f"{metas[i].rstrip('/')}/outputs.json")["artifacts"][ref["output"]])
                except Exception:  # no record reachable: the URI alone still names the data
                    pass
            out.append({**record, "uri": uri})
        return out

    def output_uri(self, view: "RunView", step: str, output: str, index: "Index") -> str:
        if output in self.output_artifacts:
            return self.output_artifacts[output].rstrip("/")
        return super().output_uri(view, step, output, index)

    def deliver(self, view: "RunView", step: dict[str, Any], index: "Index", record: dict[str, Any]) -> None:
        for name, path in self.output_parameters.items():
            if name not in record["scalars"]:
                raise StepError(f"step {step['name']!r} has no scalar output {name!r} to hand the backend.")
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            value = record["scalars"][name]
            with open(path, "w") as f:
                f.write(value if isinstance(value, str) else json.dumps(value))

    def write_meta(self, view: "RunView", step: str, index: "Index", name: str, data: Any) -> None:
        if not self.meta:
            super().write_meta(view, step, index, name, data)
            return
        files = [(name, data)]
        if self.items and name in ("outputs.json", "error.json"):
            files.insert(0, (ITERATION_FILE, {"items": self.items}))
        for base in filter(None, (self.mirror, self.meta)):  # the backend's own location last: it commits
            for file, content in files:
                ArtifactStore.for_uri(base).write_json(f"{base}/{file}", content)


def mirror_uri(root: str, pipeline: str, run_id: str, step: str, task_id: str) -> str:
    """Where a Kubeflow step's meta is mirrored: inside the step's `_stackhop` folder, so run readers skip it.
    `task_id` is the digest of the meta URI the launcher gave the task, unique to each task of a run."""
    return f"{root}/{pipeline}/{run_id}/{step}/_stackhop/tasks/{task_id}"


def run_of(meta: str, run_root: str) -> str:
    """The run whose pipeline root holds `meta`; for a document submitted by hand, under another root, a name of
    its own (so its files still land in a folder of their own)."""
    prefix = run_root.rstrip("/") + "/"
    if meta.startswith(prefix) and "/" in meta[len(prefix):]:
        return meta[len(prefix):].split("/", 1)[0]
    return "external-" + hashlib.sha256(meta.encode()).hexdigest()[:12]


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
    return check_scalar(step, name, type_name, value)


def _tee(argv: list[str], metas: list[str]) -> int:
    """Run the entrypoint as a child and copy its output to our stdout and to `log.txt` in each meta folder.

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
