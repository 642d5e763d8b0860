"""A container step as a pod: its own image runs its own command; stackhop works beside it.

KFP's launcher copies itself into a component's pod so that any image can run; this does the
same with plain Kubernetes. An init container in the stackhop image writes the inputs the
command reads by path into an emptyDir at `/stackhop`, the main container runs the step's image
with the command as written (placeholders point into `/stackhop`), and a native sidecar (an
init container with `restartPolicy: Always`, Kubernetes 1.29+) saves the outputs when the
kubelet stops it after the main container has exited. A value known only when the step starts
(a parameter, an upstream output, a URI) reaches the command as a `$(VAR)` reference to an
env var the driver fills in when it creates the Job; literal text is escaped so Kubernetes'
own `$(VAR)` expansion leaves it as written.
"""

from __future__ import annotations

import json
import re
from typing import Any

from stackhop.core import ir
from stackhop.core.container_args import present_inputs, resolve_presence

MOUNT = "/stackhop"
VOLUME = "stackhop-data"
STAGE = "stage-inputs"
SAVE = "save-outputs"
ANN_FILL = "stackhop.dev/fill"
SIDECARS_SINCE = (1, 29)
"""SidecarContainers is on by default from 1.29; earlier API servers drop an init container's restartPolicy."""

_ENV_PREFIX = {"input_value": "STACKHOP_INPUT_", "input_uri": "STACKHOP_INPUT_URI_", "output_uri": "STACKHOP_OUTPUT_URI_"}


def escape(text: str) -> str:
    """Text that Kubernetes' `$(VAR)` expansion turns back into `text` ("$(" and "$$" are its syntax)."""
    return re.sub(r"\$(?=[$(])", "$$", text)


def as_text(value: Any) -> str:
    """A value on a command line: strings as they are, anything else as JSON (as the entrypoint does)."""
    return value if isinstance(value, str) else json.dumps(value)


class MainCommand:
    """The main container's command, args and the env vars the driver fills per run."""

    def __init__(self, step: ir.Step):
        assert step.container is not None
        self.step = step
        self.inputs = {i.name: i for i in step.inputs}
        self.fill: dict[str, list[str]] = {}
        self._names: dict[tuple[str, str], str] = {}
        given = present_inputs(step)
        self.paths = False
        self.command = self._render(resolve_presence(step.container.command, given))
        self.args = self._render(resolve_presence(step.container.args, given))
        self.moves_data = self.paths or bool(step.outputs)
        """Whether stackhop must work beside the command; a step with no path inputs and no outputs runs alone."""

    def _render(self, items: list[Any]) -> list[str]:
        out = []
        for item in items:
            parts = item.concat if isinstance(item, ir.Concat) else (item,)
            out.append("".join(escape(p) if isinstance(p, str) else self._place(p) for p in parts))
        return out

    def _place(self, item: ir.Placeholder) -> str:
        kind, name = item.placeholder, item.name
        self.paths = self.paths or kind in ("input_path", "output_path")
        if kind == "input_path":
            return f"{MOUNT}/inputs/{name}"
        if kind == "output_path":
            return f"{MOUNT}/outputs/{name}"
        if kind == "input_value":
            known = self._known(name)
            if known is not None:
                return escape(known)
        return f"$({self._env(kind, name)})"

    def _known(self, name: str) -> str | None:
        """A constant or a default the pipeline fixes: written into the command, as the user wrote it."""
        spec = self.inputs[name]
        if isinstance(spec.value, ir.Const) and spec.value.value is not None:
            return as_text(spec.value.value)
        if spec.value is None and spec.has_default and spec.default is not None:
            return as_text(spec.default)
        return None

    def _env(self, kind: str, name: str) -> str:
        key = (kind, name)
        if key not in self._names:
            base = _ENV_PREFIX[kind] + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
            env, n = base, 2
            while env in self.fill:
                env, n = f"{base}_{n}", n + 1
            self._names[key] = env
            self.fill[env] = [kind, name]
        return self._names[key]


def pod_parts(step: ir.Step, stackhop_image: str, stackhop_env: list[dict[str, Any]], python: str,
              grace_seconds: int) -> dict[str, Any]:
    """The pod-spec fields around the main container: the volume, the stager and the saver."""
    mount = [{"name": VOLUME, "mountPath": MOUNT}]

    def beside(name: str, flag: str) -> dict[str, Any]:
        return {
            "name": name, "image": stackhop_image, "command": [python],
            "args": ["-m", "stackhop.entrypoint", "--spec", "$(STACKHOP_RUN_SPEC)", "--step", step.name, flag, MOUNT],
            "env": stackhop_env, "volumeMounts": mount,
        }

    saver = {**beside(SAVE, "--save-outputs"), "restartPolicy": "Always"}
    return {
        "volumes": [{"name": VOLUME, "emptyDir": {}}],
        # the saver first: the stager returns only once the saver listens, so a command that exits
        # at once cannot be stopped before its outputs are saved
        "initContainers": [saver, beside(STAGE, "--stage-inputs")],
        "terminationGracePeriodSeconds": grace_seconds,
        "_mounts": mount,
    }


def fill_values(view: Any, step: dict[str, Any], index: tuple[int, ...], fill: dict[str, list[str]]) -> dict[str, str]:
    """The run's values of the env vars a container step's command refers to, escaped for expansion."""
    by_name = {i["name"]: i for i in step["inputs"]}
    out: dict[str, str] = {}
    for env, (kind, name) in fill.items():
        if kind == "output_uri":
            text = view.output_uri(step["name"], name, index)
        else:
            spec = by_name[name]
            value = view.input_value(spec, step["name"], index) if spec.get("value") is not None else spec.get("default")
            if kind == "input_uri":
                text = value["uri"]
            else:
                text = "" if value is None else as_text(value)
        out[env] = escape(text)
    return out
