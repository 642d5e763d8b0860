"""A container step's command and args as SageMaker expressions, and the ProcessingInputs/Outputs they name.

The data conventions are the ones every backend shares (see `stackhop.core.container_args`):
an InputValue is the value as text (`Get` of a parameter, `Std:JsonGet` of an upstream record),
an InputPath is a file under `/opt/ml/processing/input/<input>/` that a ProcessingInput
downloads, an InputUri or OutputUri is the artifact's S3 URI, and an OutputPath is
`/opt/ml/processing/output/<name>/<name>`. A scalar reaches a file only from an upstream step's
record (`values/<output>` beside its `outputs.json`): a parameter or constant has no S3 object
for SageMaker to download, so its InputPath is refused in favour of InputValue.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from stackhop.core import ir
from stackhop.core.container_args import Flat, present_inputs, resolve_presence
from stackhop.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from stackhop.adapters.sagemaker.definition import _Compiler

_SCALARS = ("str", "int", "float", "bool", "list", "dict")


def as_text(value: Any) -> str:
    """A constant as a command sees it: a string as-is, anything else as JSON (`true`, `3`, `[1, 2]`)."""
    return value if isinstance(value, str) else json.dumps(value)


class ContainerArgs:
    """The translated command and args of one step instance, with the ProcessingInputs and Outputs they need.

    Upstream steps are reached through `Get` inside `Std:JsonGet`, which SageMaker (and the stand-in's
    checks) read as data dependencies, so no DependsOn is added here."""

    def __init__(self, compiler: "_Compiler", step: ir.Step, index: tuple[int, ...]):
        from stackhop.adapters.sagemaker.definition import CONTAINER_INPUT, CONTAINER_OUTPUT

        assert step.container is not None
        self.c, self.step, self.index = compiler, step, index
        self.input_dir, self.output_dir = CONTAINER_INPUT, CONTAINER_OUTPUT
        self.inputs: list[dict[str, Any]] = []
        self.outputs: list[dict[str, Any]] = []
        self._staged: dict[str, str] = {}
        self._uploaded: set[str] = set()
        present = present_inputs(step)
        self.command = [self.item(x) for x in resolve_presence(step.container.command, present)]
        self.args = [self.item(x) for x in resolve_presence(step.container.args, present)]
        by_uri = {x.name for x in _placeholders(resolve_presence((*step.container.command, *step.container.args), present))
                  if x.placeholder == "output_uri"}
        for out in step.outputs:  # an output no placeholder names still fails the step when it is missing
            if out.name not in by_uri:
                self.output_path(out.name)
        self.written_at_uri = sorted(by_uri - {o["OutputName"] for o in self.outputs})

    def where(self) -> str:
        return self.c.where(self.step.name)

    def item(self, item: Flat) -> Any:
        if isinstance(item, str):
            return item
        if isinstance(item, ir.Placeholder):
            got = self.fill(item)
            # ContainerArguments are strings: a number parameter or a JSON value is joined into text, as the
            # SageMaker SDK's PipelineVariable.to_string() does
            return got if isinstance(got, str) or "Std:Join" in got else {"Std:Join": {"On": "", "Values": [got]}}
        parts = [x if isinstance(x, str) else self.fill(x) for x in item.concat]
        if all(isinstance(x, str) for x in parts):
            return "".join(parts)
        return {"Std:Join": {"On": "", "Values": parts}}

    def fill(self, p: ir.Placeholder) -> Any:
        if p.placeholder == "output_path":
            return self.output_path(p.name)
        if p.placeholder == "output_uri":
            return {"Std:Join": {"On": "/", "Values": [self.c.step_dir(self.step.name, self.index), p.name]}}
        spec = self.step.input(p.name)
        assert spec is not None  # the DSL checked the names
        value = spec.value
        if value is None or (isinstance(value, ir.Const) and value.value is None):
            if not spec.has_default or spec.default is None:
                raise PipelineDefinitionError(
                    f"{self.where()}: {_CLASS[p.placeholder]}({p.name!r}) names an input this step is not given and "
                    f"that has no default; pass {p.name}=..., or wrap the placeholder in IfPresent({p.name!r}, ...).")
            value = ir.Const(value=spec.default)
        artifact = spec.type not in _SCALARS
        if p.placeholder == "input_value":
            if artifact:
                raise PipelineDefinitionError(
                    f"{self.where()}: input {p.name!r} is a {spec.type} artifact, which has no value to put in a "
                    f"command; use InputPath({p.name!r}) or InputUri({p.name!r}).")
            return self.value(value)
        if not isinstance(value, ir.OutputRef):
            raise PipelineDefinitionError(
                f"{self.where()}: {_CLASS[p.placeholder]}({p.name!r}) needs a file in S3, but input {p.name!r} is "
                f"{ir.describe_value(value, prose=True)}, which SageMaker has no object for; use InputValue({p.name!r}).")
        if p.placeholder == "input_uri":
            if not artifact:
                raise PipelineDefinitionError(
                    f"{self.where()}: input {p.name!r} is a {spec.type}, not an artifact, so it has no URI; use "
                    f"InputValue({p.name!r}) or InputPath({p.name!r}).")
            if self.c.p.step(value.step).kind == "importer":
                return self.c.imported_uri(value)
            return self.c.record_value(value, self.index, f"artifacts.{value.output}.uri")
        return self.input_path(p.name, value, artifact)

    def value(self, value: Any) -> Any:
        if isinstance(value, ir.CollectedRef):
            raise PipelineDefinitionError(
                f"{self.where()} takes {ir.describe_value(value, prose=True)}, and a SageMaker container step gets only "
                "single values in its command; collect into a Python step, which reads every iteration's record.")
        if isinstance(value, ir.Const):
            return as_text(value.value)
        if isinstance(value, ir.LoopItemRef):
            return as_text(self.c.loop_item(self.step, value, self.index))
        if isinstance(value, ir.ParamRef):
            return {"Get": f"Parameters.{value.name}"}
        self.upstream(value)
        return self.c.record_value(value, self.index, f"scalars.{value.output}")

    def upstream(self, ref: ir.OutputRef) -> None:
        if ref.step in self.c.settings.training_steps:
            raise PipelineDefinitionError(
                f"{self.where()} reads output {ref.output!r} of step {ref.step!r}, which the stack runs as a Training "
                "job; a container step reads Processing steps' records, so remove it from settings.training_steps.")

    def input_path(self, name: str, ref: ir.OutputRef, artifact: bool) -> str:
        """A ProcessingInput per input: the artifact (or scalar text file) lands at `<LocalPath>/<output name>`."""
        if name not in self._staged and self.c.p.step(ref.step).kind == "importer":
            uri = self.c.imported_uri(ref)
            if not isinstance(uri, str):
                raise PipelineDefinitionError(
                    f"{self.where()}: InputPath({name!r}) reads an importer whose URI is a pipeline parameter, and "
                    "SageMaker names the downloaded file only after the object it fetched; write the URI in the "
                    f"pipeline, or pass InputUri({name!r}) and fetch it in the command.")
            local = f"{self.input_dir}/{name}"
            self.inputs.append({"InputName": name, "S3Input": {
                "S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated"}})
            self._staged[name] = f"{local}/{uri.rstrip('/').rsplit('/', 1)[-1]}"
        if name not in self._staged:
            self.upstream(ref)
            if artifact:
                uri: Any = self.c.record_value(ref, self.index, f"artifacts.{ref.output}.uri")
            else:
                up = self.c.p.step(ref.step)
                uri = {"Std:Join": {"On": "/", "Values": [self.c.record_uri(up.name, self.index), "values", ref.output]}}
            local = f"{self.input_dir}/{name}"
            self.inputs.append({"InputName": name, "S3Input": {
                "S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix", "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated"}})
            self._staged[name] = f"{local}/{ref.output}"
        return self._staged[name]

    def output_path(self, name: str) -> str:
        """Each output's directory uploads into the step's prefix, so `<name>/<name>` becomes `{step}/<name>`."""
        if name not in self._uploaded:
            self._uploaded.add(name)
            self.outputs.append({"OutputName": name, "S3Output": {
                "S3Uri": self.c.step_dir(self.step.name, self.index), "LocalPath": f"{self.output_dir}/{name}",
                "S3UploadMode": "EndOfJob"}})
        return f"{self.output_dir}/{name}/{name}"


_CLASS = {"input_value": "InputValue", "input_path": "InputPath", "input_uri": "InputUri", "output_path": "OutputPath",
          "output_uri": "OutputUri"}


def _placeholders(items: list[Flat]) -> list[ir.Placeholder]:
    out: list[ir.Placeholder] = []
    for item in items:
        if isinstance(item, ir.Placeholder):
            out.append(item)
        elif isinstance(item, ir.Concat):
            out += [x for x in item.concat if isinstance(x, ir.Placeholder)]
    return out
