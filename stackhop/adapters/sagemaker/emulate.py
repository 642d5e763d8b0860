"""Run a compiled SageMaker pipeline definition on this machine, as SageMaker would.

This reads the definition JSON, not the IR, so it proves the document we would upload: it
resolves `Get` (Parameters, Execution variables, step properties), `Std:Join` and
`Std:JsonGet`, evaluates each ConditionStep for the steps in its branches, and runs each
Processing or Training step's ContainerEntrypoint and ContainerArguments with its Environment.
Each LocalPath is a directory of the attempt; ProcessingInputs are downloaded into it first and
ProcessingOutputs uploaded from it afterwards, as SageMaker does: the object or directory an
input's S3Uri names lands at `<LocalPath>/<its last segment>`. The image is not used: a Python
step runs with this Python, and a container step's command runs with this machine's binaries
(`sh`, `awk` ... in place of the image's). That needs the emulation's one liberty: the
`/opt/ml/processing/...` paths in a container's argv and environment are rewritten to the host
directories standing in for them. After a container step, its `-outputs` record step runs too,
as SageMaker would run it next, so the step counts as done only once its outputs are recorded.
The core scheduler decides when each step runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

from stackhop.adapters.sagemaker.definition import CODE_PARAM, instance_names, record_names
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.emulation import Command, EmulatedRun, EmulationError, Emulator, Index, this_python
from stackhop.core.resolve import instance_key

_STEP_REF = re.compile(r"^Steps\.([A-Za-z0-9_-]+)\.(.+)$")
_OUTPUT_URI = re.compile(r"^ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri$")
_COMPARE = {"Equals": lambda a, b: a == b, "NotEquals": lambda a, b: a != b, "GreaterThan": lambda a, b: a > b,
            "GreaterThanOrEqualTo": lambda a, b: a >= b, "LessThan": lambda a, b: a < b,
            "LessThanOrEqualTo": lambda a, b: a <= b}
DEFINITION_FILE = "sagemaker-pipeline.json"


class DefinitionEmulator(Emulator):
    """One pipeline execution of a definition, a step at a time."""

    def __init__(self, files: dict[str, bytes], run: EmulatedRun):
        super().__init__(files, run)
        self.definition = json.loads(files[DEFINITION_FILE])
        self._params: dict[str, Any] | None = None
        self.steps: dict[str, dict[str, Any]] = {}
        self.branch_of: dict[str, tuple[str, bool]] = {}
        for step in self.definition["Steps"]:
            self.steps[step["Name"]] = step
            if step["Type"] == "Condition":
                for branch, taken in (("IfSteps", True), ("ElseSteps", False)):
                    for inner in step["Arguments"].get(branch, []):
                        self.steps[inner["Name"]] = inner
                        self.branch_of[inner["Name"]] = (step["Name"], taken)
        self.names = {key: sm for sm, key in instance_names(run.pipeline).items()}
        from stackhop.core import ir

        self.records = {instance_key(step, index): name
                        for (step, index), name in record_names(ir.Pipeline.model_validate(run.pipeline)).items()}

    @property
    def params(self) -> dict[str, Any]:
        if self._params is None:
            self._params = self._parameters(_execution_parameters(self.run))
        return self._params

    def _parameters(self, given: dict[str, Any]) -> dict[str, Any]:
        casts = {"String": str, "Integer": int, "Float": float, "Boolean": lambda v: str(v).lower() == "true"}
        out: dict[str, Any] = {}
        for p in self.definition.get("Parameters", []):
            if p["Name"] in given:
                out[p["Name"]] = casts[p.get("Type", "String")](given[p["Name"]])
            elif "DefaultValue" in p:
                out[p["Name"]] = p["DefaultValue"]
            else:
                raise EmulationError(f"pipeline parameter {p['Name']!r} has no default and no value was given")
        return out

    def _named(self, step: str, index: Index) -> dict[str, Any]:
        key = instance_key(step, index)
        name = self.names.get(key)
        if name is None or name not in self.steps:
            raise EmulationError(f"the compiled definition has no SageMaker step for {key}")
        return self.steps[name]

    # -------------------------------------------------------------- expressions
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self._get(value["Get"])
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return join.get("On", "").join(_text(self.resolve(v)) for v in join["Values"])
        if set(value) == {"Std:JsonGet"}:
            return self._json_get(value["Std:JsonGet"])
        return {k: self.resolve(v) for k, v in value.items()}

    def _get(self, path: str) -> Any:
        if path.startswith("Parameters."):
            name = path.split(".", 1)[1]
            if name not in self.params:
                raise EmulationError(f"{{'Get': {path!r}}} names a parameter the definition does not declare")
            return self.params[name]
        if path == "Execution.PipelineExecutionId":
            return self.run.run_id
        if path == "Execution.PipelineExecutionArn":
            return f"arn:aws:sagemaker:local:000000000000:pipeline/{self.run.pipeline['name']}/execution/{self.run.run_id}"
        m = _STEP_REF.match(path)
        if m:
            step, rest = m.groups()
            out = _OUTPUT_URI.match(rest)
            if out and step in self.steps:
                return self._output_uri(step, out.group(1))
        raise EmulationError(f"cannot resolve {{'Get': {path!r}}}")

    def _output_uri(self, step: str, output: str) -> str:
        """A step property is what the step's own definition says, evaluated for this execution."""
        outputs = self.steps[step].get("Arguments", {}).get("ProcessingOutputConfig", {}).get("Outputs", [])
        for out in outputs:
            if out["OutputName"] == output:
                return str(self.resolve(out["S3Output"]["S3Uri"]))
        raise EmulationError(f"step {step!r} has no processing output {output!r}")

    def _json_get(self, spec: dict[str, Any]) -> Any:
        ref = spec["PropertyFile"]["Get"]
        m = re.match(r"^Steps\.([A-Za-z0-9_-]+)\.PropertyFiles\.(.+)$", ref)
        if not m or m.group(1) not in self.steps:
            raise EmulationError(f"Std:JsonGet needs a step property file, got {ref!r}")
        step, file_name = m.groups()
        prop = next((p for p in self.steps[step].get("PropertyFiles", []) if p["PropertyFileName"] == file_name), None)
        if prop is None:
            raise EmulationError(f"step {step!r} has no property file {file_name!r}")
        uri = self._output_uri(step, prop["OutputName"]).rstrip("/") + "/" + prop["FilePath"]
        try:
            value: Any = ArtifactStore.for_uri(uri).read_json(uri)
            for part in re.findall(r"[^.\[\]]+|\[\d+\]", spec["Path"]):
                value = value[int(part[1:-1])] if part.startswith("[") else value[part]
        except (KeyError, IndexError, TypeError) as exc:
            raise EmulationError(f"Std:JsonGet found no {spec['Path']!r} in {uri}: {exc}") from None
        except Exception as exc:
            raise EmulationError(f"Std:JsonGet could not read {uri}: {exc}") from None
        return value

    def _holds(self, cond: dict[str, Any]) -> bool:
        kind = cond["Type"]
        if kind in _COMPARE:
            return bool(_COMPARE[kind](self.resolve(cond["LeftValue"]), self.resolve(cond["RightValue"])))
        if kind == "In":
            return self.resolve(cond["QueryValue"]) in self.resolve(cond["Values"])
        if kind == "Not":
            return not self._holds(cond["Expression"])
        if kind == "Or":
            return any(self._holds(c) for c in cond["Conditions"])
        raise EmulationError(f"condition type {kind!r} is not emulated")

    def condition(self, step: str, index: Index) -> bool | None:
        if any(s["name"] == step and s["kind"] == "importer" for s in self.run.pipeline["steps"]):
            return None  # the definition has no step for an importer: its readers name its URI

        name = self._named(step, index)["Name"]
        if name not in self.branch_of:
            return None
        check, taken = self.branch_of[name]
        outcome = all(self._holds(c) for c in self.steps[check]["Arguments"]["Conditions"])
        return outcome == taken

    # -------------------------------------------------------------- jobs
    def command(self, step: str, index: Index, workdir: str) -> Command:
        doc = self._named(step, index)
        kind = doc["Type"]
        if kind == "Fail":
            raise EmulationError(str(self.resolve(doc.get("Arguments", {}).get("ErrorMessage", "a Fail step ran"))))
        if kind not in ("Processing", "Training"):
            raise EmulationError(f"step type {kind!r} is not emulated")
        args = self.resolve(doc["Arguments"])
        limit = args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds")
        if kind == "Training":
            if args.get("InputDataConfig"):
                raise EmulationError(f"step {doc['Name']}: Training input channels are not emulated")
            algo = args["AlgorithmSpecification"]
            argv = [_text(x) for x in (*algo.get("ContainerEntrypoint", []), *algo.get("ContainerArguments", []))]
            return Command(argv, {k: _text(v) for k, v in args.get("Environment", {}).items()}, limit)
        local = self._local_paths(args, workdir)
        for inp in args.get("ProcessingInputs", []):
            s3 = inp["S3Input"]
            uri = str(s3["S3Uri"]).rstrip("/")
            store = ArtifactStore.for_uri(uri)
            if not store.exists(uri):
                raise EmulationError(f"step {doc['Name']}: ProcessingInput {inp.get('InputName')!r} names {uri}, "
                                     "which does not exist")
            store.get(uri, os.path.join(local[s3["LocalPath"]], uri.rsplit("/", 1)[-1]))
        app = args["AppSpecification"]
        if not app.get("ContainerEntrypoint"):
            raise EmulationError(f"step {doc['Name']} runs its image's own entrypoint, which emulation cannot know; "
                                 "give the container step a command")
        return self._localized(args, local, limit)

    @staticmethod
    def _localized(args: dict[str, Any], local: dict[str, str], limit: Any = None) -> Command:
        """The job's argv and environment with each container path replaced by its host directory."""

        def localize(text: Any) -> str:
            text = _text(text)
            for container_path, host_path in sorted(local.items(), key=lambda kv: -len(kv[0])):
                text = text.replace(container_path, host_path)
            return text

        app = args["AppSpecification"]
        argv = [localize(x) for x in (*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", []))]
        return Command(argv, {k: localize(v) for k, v in args.get("Environment", {}).items()}, limit)

    @staticmethod
    def _local_paths(args: dict[str, Any], workdir: str) -> dict[str, str]:
        """Container path -> a directory of this attempt, for every LocalPath the job names."""
        local: dict[str, str] = {}
        for inp in args.get("ProcessingInputs", []):
            path = local.setdefault(inp["S3Input"]["LocalPath"], os.path.join(workdir, f"in{len(local)}"))
            os.makedirs(path, exist_ok=True)
        for out in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
            path = local.setdefault(out["S3Output"]["LocalPath"], os.path.join(workdir, f"out{len(local)}"))
            os.makedirs(path, exist_ok=True)
        return local

    def collect(self, step: str, index: Index, workdir: str) -> None:
        doc = self._named(step, index)
        if doc["Type"] != "Processing":
            return
        self._upload(self.resolve(doc["Arguments"]), workdir)
        record = self.records.get(instance_key(step, index))
        if record is not None:
            self._record(record, os.path.join(workdir, "record"))

    def _record(self, name: str, workdir: str) -> None:
        """Run a container step's record step as SageMaker would next; its failure is the container step's."""
        if name not in self.steps:
            raise EmulationError(f"the compiled definition has no record step {name!r}")
        args = self.resolve(self.steps[name]["Arguments"])
        command = self._localized(args, self._local_paths(args, workdir))
        done = subprocess.run(this_python(command.argv), env={**os.environ, **command.env}, cwd=workdir,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode != 0:
            said = [line for line in done.stderr.splitlines() if line.strip()]
            reason = next((line.split(" failed: ", 1)[1] for line in reversed(said) if " failed: " in line),
                          said[-1] if said else f"exit code {done.returncode}")
            raise EmulationError(reason)
        self._upload(args, workdir)

    def _upload(self, args: dict[str, Any], workdir: str) -> None:
        local = self._local_paths(args, workdir)
        for out in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
            s3 = out["S3Output"]
            store = ArtifactStore.for_uri(s3["S3Uri"])
            for root, _, files in os.walk(local[s3["LocalPath"]]):
                for fn in files:
                    full = os.path.join(root, fn)
                    rel = os.path.relpath(full, local[s3["LocalPath"]]).replace(os.sep, "/")
                    store.put_file(full, s3["S3Uri"].rstrip("/") + "/" + rel)


def _execution_parameters(run: EmulatedRun) -> dict[str, Any]:
    """What StartPipelineExecution would be given: strings, and the code archive as its own parameter."""
    values: dict[str, Any] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in run.parameters.items()}
    if run.code.get("archive_uri"):
        values[CODE_PARAM] = f"{run.code['archive_uri']}#{run.code.get('digest') or ''}"
    return values


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
