"""Run a compiled SageMaker pipeline definition on this machine, as SageMaker would.

This reads the definition JSON, not the IR, so it proves the document we would upload:
it resolves `Get` (Parameters, Execution variables, step properties), `Std:Join` and
`Std:JsonGet`, evaluates ConditionSteps, and runs each Processing step's ContainerEntrypoint
and ContainerArguments as a local process with its Environment. Each LocalPath is a local
directory; ProcessingInputs are downloaded into it first and ProcessingOutputs uploaded from it
afterwards, as SageMaker does. The image is not used: the step runs with this Python.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from stackhop.core.artifacts import ArtifactStore
from stackhop.core.graph import stable_topological

_STEP_REF = re.compile(r"^Steps\.([A-Za-z0-9_-]+)\.(.+)$")
_OUTPUT_URI = re.compile(r"^ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri$")
_COMPARE = {"Equals": lambda a, b: a == b, "NotEquals": lambda a, b: a != b, "GreaterThan": lambda a, b: a > b,
            "GreaterThanOrEqualTo": lambda a, b: a >= b, "LessThan": lambda a, b: a < b,
            "LessThanOrEqualTo": lambda a, b: a <= b}


class EmulationError(Exception):
    pass


class DefinitionEmulator:
    """Executes one pipeline execution of a definition; `run()` returns "Succeeded" or "Failed".

    Processing and Training steps run; Condition and Fail steps are evaluated.
    """
    def __init__(self, definition: dict[str, Any], parameters: dict[str, Any], execution_id: str,
                 env: dict[str, str] | None = None, log_dir: str | None = None):
        self.definition = definition
        self.execution_id = execution_id
        self.env = dict(env or {})
        self.log_dir = log_dir or tempfile.mkdtemp(prefix="stackhop-emulate-")
        self.params = self._parameters(parameters)
        self.steps: dict[str, dict[str, Any]] = {}
        self.branch_of: dict[str, tuple[str, bool]] = {}
        for step in definition["Steps"]:
            self.steps[step["Name"]] = step
            if step["Type"] == "Condition":
                for branch, taken in (("IfSteps", True), ("ElseSteps", False)):
                    for inner in step["Arguments"].get(branch, []):
                        self.steps[inner["Name"]] = inner
                        self.branch_of[inner["Name"]] = (step["Name"], taken)
        self.status: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        self.outputs: dict[str, dict[str, str]] = {}
        self.outcomes: dict[str, bool] = {}

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
            return self.params[path.split(".", 1)[1]]
        if path == "Execution.PipelineExecutionId":
            return self.execution_id
        if path.startswith("Execution."):
            return {"Execution.PipelineExecutionArn": f"arn:aws:sagemaker:local:0:pipeline/x/execution/{self.execution_id}"}.get(path, "")
        m = _STEP_REF.match(path)
        if m:
            step, rest = m.groups()
            out = _OUTPUT_URI.match(rest)
            if out and step in self.outputs:
                return self.outputs[step][out.group(1)]
        raise EmulationError(f"cannot resolve {{'Get': {path!r}}} at this point of the execution")

    def _json_get(self, spec: dict[str, Any]) -> Any:
        ref = spec["PropertyFile"]["Get"]
        m = re.match(r"^Steps\.([A-Za-z0-9_-]+)\.PropertyFiles\.(.+)$", ref)
        if not m:
            raise EmulationError(f"Std:JsonGet needs a step property file, got {ref!r}")
        step, file_name = m.groups()
        prop = next(p for p in self.steps[step].get("PropertyFiles", []) if p["PropertyFileName"] == file_name)
        uri = self.outputs[step][prop["OutputName"]].rstrip("/") + "/" + prop["FilePath"]
        value: Any = ArtifactStore.for_uri(uri).read_json(uri)
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", spec["Path"]):
            value = value[int(part[1:-1])] if part.startswith("[") else value[part]
        return value

    def condition(self, cond: dict[str, Any]) -> bool:
        kind = cond["Type"]
        if kind in _COMPARE:
            return bool(_COMPARE[kind](self.resolve(cond["LeftValue"]), self.resolve(cond["RightValue"])))
        if kind == "In":
            return self.resolve(cond["QueryValue"]) in self.resolve(cond["Values"])
        if kind == "Not":
            return not self.condition(cond["Expression"])
        if kind == "Or":
            return any(self.condition(c) for c in cond["Conditions"])
        raise EmulationError(f"condition type {kind!r} is not emulated")

    # -------------------------------------------------------------- order
    def _dependencies(self, name: str) -> set[str]:
        step = self.steps[name]
        deps = set(step.get("DependsOn", []))
        deps |= {m for m in re.findall(r'"Get": "Steps\.([A-Za-z0-9_-]+)\.', json.dumps(step.get("Arguments", {})))}
        if name in self.branch_of:
            deps.add(self.branch_of[name][0])
        if step["Type"] == "Condition":
            deps -= {s["Name"] for b in ("IfSteps", "ElseSteps") for s in step["Arguments"].get(b, [])}
        return deps - {name}

    def run(self) -> str:
        deps = {n: self._dependencies(n) for n in self.steps}
        order = stable_topological(list(self.steps), [(d, n) for n, ds in deps.items() for d in ds])
        for name in order:
            blocked = [d for d in deps[name] if self.status.get(d) != "Succeeded"]
            if name in self.branch_of:
                check, taken = self.branch_of[name]
                if self.status.get(check) == "Succeeded" and self.outcomes.get(check) != taken:
                    self.status[name] = "NotExecuted"
                    continue
            if blocked:
                self.status[name] = "NotExecuted"
                continue
            step = self.steps[name]
            try:
                if step["Type"] == "Condition":
                    self.outcomes[name] = all(self.condition(c) for c in step["Arguments"]["Conditions"])
                elif step["Type"] == "Processing":
                    self._processing(name, step)
                elif step["Type"] == "Training":
                    self._training(name, step)
                elif step["Type"] == "Fail":
                    raise EmulationError(str(self.resolve(step["Arguments"].get("ErrorMessage", "Fail step"))))
                else:
                    raise EmulationError(f"step type {step['Type']!r} is not emulated")
                self.status[name] = "Succeeded"
            except (EmulationError, OSError) as exc:
                self.status[name], self.messages[name] = "Failed", str(exc)
        return "Failed" if "Failed" in self.status.values() else "Succeeded"

    # -------------------------------------------------------------- processing
    def _run(self, name: str, argv: list[str], env: dict[str, str], timeout: int | None, cwd: str) -> None:
        """Run a job's container command here, with this Python standing in for the image's."""
        if argv and argv[0] in ("python", "python3"):
            argv = [sys.executable, *argv[1:]]
        log_path = os.path.join(self.log_dir, f"{name}.log")
        with open(log_path, "ab") as log:
            try:
                proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env={**os.environ, **self.env, **env}, timeout=timeout, cwd=cwd)
            except subprocess.TimeoutExpired:
                raise EmulationError(f"step {name} exceeded MaxRuntimeInSeconds={timeout}") from None
        if proc.returncode != 0:
            tail = open(log_path, errors="replace").read().strip().splitlines()[-1:]
            raise EmulationError(f"step {name} exited with code {proc.returncode}: {' '.join(tail)}")

    def _training(self, name: str, step: dict[str, Any]) -> None:
        """Channels and model upload are not emulated: stackhop's steps read and write the artifact store."""
        args = self.resolve(step["Arguments"])
        if args.get("InputDataConfig"):
            raise EmulationError(f"step {name}: Training input channels are not emulated")
        algo = args["AlgorithmSpecification"]
        work = tempfile.mkdtemp(prefix=f"stackhop-{name}-")
        try:
            argv = [_text(x) for x in (*algo.get("ContainerEntrypoint", []), *algo.get("ContainerArguments", []))]
            env = {k: _text(v) for k, v in args.get("Environment", {}).items()}
            self._run(name, argv, env, args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"), work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.outputs[name] = {}

    def _processing(self, name: str, step: dict[str, Any]) -> None:
        args = self.resolve(step["Arguments"])
        work = tempfile.mkdtemp(prefix=f"stackhop-{name}-")
        try:
            local = {}
            for inp in args.get("ProcessingInputs", []):
                s3 = inp["S3Input"]
                path = local.setdefault(s3["LocalPath"], os.path.join(work, f"in{len(local)}"))
                ArtifactStore.for_uri(s3["S3Uri"]).get(s3["S3Uri"].rstrip("/"), path)
            outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
            for out in outputs:
                path = local.setdefault(out["S3Output"]["LocalPath"], os.path.join(work, f"out{len(local)}"))
                os.makedirs(path, exist_ok=True)

            def localize(text: Any) -> str:
                text = _text(text)
                for container_path, host_path in sorted(local.items(), key=lambda kv: -len(kv[0])):
                    text = text.replace(container_path, host_path)
                return text

            app = args["AppSpecification"]
            argv = [localize(x) for x in (*app.get("ContainerEntrypoint", []), *app.get("ContainerArguments", []))]
            env = {k: localize(v) for k, v in args.get("Environment", {}).items()}
            self._run(name, argv, env, args.get("StoppingCondition", {}).get("MaxRuntimeInSeconds"), work)
            self.outputs[name] = {}
            for out in outputs:
                s3 = out["S3Output"]
                store = ArtifactStore.for_uri(s3["S3Uri"])
                for root, _, files in os.walk(local[s3["LocalPath"]]):
                    for fn in files:
                        full = os.path.join(root, fn)
                        rel = os.path.relpath(full, local[s3["LocalPath"]]).replace(os.sep, "/")
                        store.put_file(full, s3["S3Uri"].rstrip("/") + "/" + rel)
                self.outputs[name][out["OutputName"]] = s3["S3Uri"]
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def state_document(emulator: DefinitionEmulator, instance_keys: dict[str, str], started: float) -> dict[str, Any]:
    """The emulated execution as the scheduler's state.json, so every reader of runs understands it."""
    words = {"Succeeded": "SUCCEEDED", "Failed": "FAILED", "NotExecuted": "SKIPPED"}
    steps = {}
    for sm_name, key in instance_keys.items():
        word = emulator.status.get(sm_name, "NotExecuted")
        steps[key] = {"status": words[word], "native": word, "attempts": 1 if word != "NotExecuted" else 0,
                      "started_at": None, "finished_at": None, "exit_code": None,
                      "message": emulator.messages.get(sm_name, ""), "backend_name": sm_name}
    failed = [k for k, s in steps.items() if s["status"] == "FAILED"]
    status = "FAILED" if failed else "SUCCEEDED"
    return {"status": status, "native": f"emulated {status.lower()}", "pid": os.getpid(), "order": list(steps),
            "message": f"step {failed[0]} failed: {steps[failed[0]]['message']}" if failed else "",
            "started_at": started, "finished_at": time.time(), "steps": steps}
