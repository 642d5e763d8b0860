"""How a step process reads its inputs and places its outputs: the seam between the entrypoint and a backend.

The entrypoint is one program on every backend. What differs is who moves the data. Where
the scheduler walks the graph (the local runner, the Kubernetes driver, every emulator),
each file sits in the run layout, `{artifact_root}/{pipeline}/{run_id}/{step}/...`, and
`Wiring`, the base class here, is that layout. Orchestrators that hand data around
themselves (SageMaker step properties, KFP placeholders) need the step to read and write
where they say, so each such adapter ships a `Wiring` subclass in its own runtime module,
registers it through the `stackhop_wirings` hook, and its compiled command names it:

    python -m stackhop.entrypoint --spec URI --step NAME --wiring MODULE:CLASS [the wiring's own arguments]

The wiring is named as `module:Class` rather than by its registered name because resolving a
name reads every installed distribution's entry points, which costs more than the rest of a
step's start-up together; `resolve_wiring` still accepts a registered name for hand-written
commands. Kept free of pydantic, fsspec and pluggy: this module is imported at every step start.
"""

from __future__ import annotations

import argparse
import importlib
import json
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from stackhop.errors import ConfigError

if TYPE_CHECKING:
    from stackhop.core.resolve import Index, RunView


class StepError(Exception):
    """A failure of the step itself (its code, its command, or an output it did not write)."""


class Wiring:
    """The run layout: inputs from upstream `outputs.json` files, outputs under the run's own prefix.

    Subclasses override only what their backend hands over differently; every method gets the
    `RunView`, so one wiring object serves the whole step process.
    """

    name: ClassVar[str] = "run-layout"
    override: ClassVar[bool] = False

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Declare the arguments that follow `--wiring` in a compiled command."""

    @classmethod
    def from_argv(cls, argv: list[str]) -> "Wiring":
        """A wiring parses its own arguments, so the entrypoint needs to know no backend's flags."""
        parser = argparse.ArgumentParser(prog=f"python -m stackhop.entrypoint ... --wiring {cls.name}",
                                         allow_abbrev=False)
        cls.add_arguments(parser)
        return cls(**vars(parser.parse_args(argv)))

    def prepare(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The run spec as this execution sees it (a compiled document's spec is shared by executions)."""
        return spec

    def execute(self, argv: list[str], run: Callable[[], int]) -> int:
        """Run the step; a wiring may wrap it, e.g. in a child process whose log it keeps."""
        return run()

    def outputs_location(self, view: "RunView", step: str, index: "Index") -> str:
        """Where a finished step's `outputs.json` is read from."""
        return view.outputs_uri(step, index)

    def input(self, view: "RunView", spec: dict[str, Any], step: str, index: "Index") -> Any:
        """A step input's value: a scalar, or an artifact's output record (a dict with "uri")."""
        return view.value(spec["value"], step, index)

    def output_uri(self, view: "RunView", step: str, output: str, index: "Index") -> str:
        """Where an artifact output is committed."""
        return view.store.output_uri(view.pipeline, view.run_id, step, output, index)

    def deliver(self, view: "RunView", step: dict[str, Any], index: "Index", record: dict[str, Any]) -> None:
        """Hand the backend what it reads besides the artifact store; runs before `outputs.json` commits."""

    def write_meta(self, view: "RunView", step: str, index: "Index", name: str, data: Any) -> None:
        """Write `outputs.json` or `error.json`; `outputs.json` is the commit marker, so it is written last."""
        view.store.write_json(view.store.step_meta(view.pipeline, view.run_id, step, index, name), data)


def check_scalar(step: str, name: str, type_name: str, value: Any) -> Any:
    """`value` as the declared scalar type, or a StepError naming the step, the output and both types."""
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


def name_value(item: str) -> tuple[str, str]:
    """`NAME=VALUE` as argparse reads it, so a malformed pair is a usage error naming the pair."""
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{item!r} is not NAME=VALUE; write the name, '=', then the value.")
    return name, value


class SharedSpecWiring(Wiring):
    """For compiled documents whose one run spec serves every execution: the backend passes what differs.

    The run id, parameter values and code archive of this execution, and where upstream steps'
    `_stackhop` files are when the backend, not the run layout, decides that (a step served
    from the backend's cache ran under another execution's id).
    """

    def __init__(self, run_id: str | None = None, param: list[tuple[str, str]] | None = None, code: str = "",
                 upstream: list[tuple[str, str]] | None = None) -> None:
        self.run_id = run_id
        self.params = list(param or [])
        self.code = code
        self.upstream = dict(upstream or [])

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--run-id", help="this execution's run id (overrides the spec's)")
        parser.add_argument("--param", action="append", type=name_value, metavar="NAME=VALUE",
                            help="a pipeline parameter for this execution (JSON, or a plain string)")
        parser.add_argument("--code", default="", help="code archive as URI#DIGEST (overrides the spec's)")
        parser.add_argument("--upstream", action="append", type=name_value, metavar="STEP=URI",
                            help="where an upstream step's _stackhop files are")

    def prepare(self, spec: dict[str, Any]) -> dict[str, Any]:
        spec = dict(spec)
        if self.run_id:
            spec["run_id"] = self.run_id
        if self.params:
            params = dict(spec.get("parameters") or {})
            declared = {p["name"]: p["type"] for p in spec["pipeline"].get("parameters", [])}
            for name, raw in self.params:
                if declared.get(name) == "str":
                    params[name] = raw
                else:
                    try:
                        params[name] = json.loads(raw)
                    except ValueError:
                        params[name] = raw
            spec["parameters"] = params
        if self.code:
            uri, _, digest = self.code.partition("#")
            spec["code"] = {"source_dir": None, "archive_uri": uri, "digest": digest}
        return spec

    def outputs_location(self, view: "RunView", step: str, index: "Index") -> str:
        from stackhop.core.resolve import instance_key  # lazy: resolve imports this module

        for key in (instance_key(step, index), step):  # one iteration of a loop a Collected gathers, or the step
            if key in self.upstream:
                return f"{self.upstream[key].rstrip('/')}/outputs.json"
        return super().outputs_location(view, step, index)


def wiring_ref(cls: type[Wiring]) -> str:
    """What a compiler writes after `--wiring` for its adapter's wiring."""
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_wiring(ref: str, *, where: str = "--wiring") -> type[Wiring]:
    """The wiring class a command names, as `module:Class` or as a name a plugin registers.

    A `module:Class` outside stackhop's own adapters must also be a class an installed plugin
    registers, so only third-party wirings pay for reading entry points.
    """
    if ":" not in ref:
        from stackhop.core.plugins import wiring_class

        return wiring_class(ref, where=where)
    module_name, _, qualname = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: wiring {ref!r} cannot be imported ({exc}); install the adapter that compiled "
                          "this document in the step's image.") from None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if not (isinstance(obj, type) and issubclass(obj, Wiring)):
        raise ConfigError(f"{where}: {ref!r} is not a stackhop Wiring class; name one an adapter registers through "
                          "the stackhop_wirings hook.")
    if not module_name.startswith("stackhop.adapters."):
        from stackhop.core.plugins import wirings

        if obj not in wirings().values():
            raise ConfigError(f"{where}: wiring {ref!r} is not registered by any installed plugin; return it from "
                              "the stackhop_wirings hook of the adapter's plugin.")
    return obj
