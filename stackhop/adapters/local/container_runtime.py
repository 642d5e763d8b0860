"""Running a local container step in its own image through docker or podman.

The step process on the host still moves the data (inputs fetched, outputs committed, as for a
command run on the host); only the user's command runs in the image, so nothing of stackhop enters
it. Inputs are mounted read-only at /stackhop/inputs/<name>; each OutputPath gets a read-write
directory at /stackhop/outputs/<name> whose `data` entry is what the command writes, moved to the
output's staging path afterwards. The container has a name derived from the run, step and
attempt, so the runner can stop it on cancel or timeout even when the client process is gone.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import threading
from typing import Any, Callable

from stackhop.core import ir
from stackhop.core.wiring import StepError

INPUTS = "/stackhop/inputs"
OUTPUTS = "/stackhop/outputs"


def container_name(run_id: str, key: str, attempt: int | str) -> str:
    """The same name from the step process that starts the container and from the runner that stops it."""
    raw = f"stackhop-{run_id}-{key}-{attempt}"
    return re.sub(r"[^a-zA-Z0-9_.-]+", "_", raw)[:200]


def stop_container(runtime: str, name: str, grace_seconds: float | None) -> None:
    """Ask the runtime to stop (grace given) or remove (no grace) the container, without waiting for it."""
    argv = [runtime, "rm", "-f", name] if grace_seconds is None else [
        runtime, "stop", "--time", str(max(0, math.ceil(grace_seconds))), name]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        return
    threading.Thread(target=proc.wait, daemon=True).start()


class InImage:
    """One attempt of a container step as `<runtime> run`: mounts, placeholders and the argv."""

    def __init__(self, runtime: str, step: dict[str, Any], name: str, scratch: str, env: dict[str, str] | None = None):
        self.runtime = runtime
        self.step = step
        self.name = name
        self.scratch = scratch
        self.env = os.environ if env is None else env
        self.mounts: dict[str, tuple[str, bool]] = {}
        self.written: dict[str, str] = {}

    def placing(self, fill: Callable[[ir.Placeholder], str]) -> Callable[[ir.Placeholder], str]:
        """`fill` with host paths turned into the container paths the command sees."""
        def place(item: ir.Placeholder) -> str:
            host = fill(item)
            kind, key = item.placeholder, item.name
            if kind == "input_path":
                return self._mount(host, f"{INPUTS}/{key}", read_only=True)
            if kind == "output_path":
                outdir = os.path.join(self.scratch, "in-image", "outputs", key)
                os.makedirs(outdir, exist_ok=True)
                self.written[key] = os.path.join(outdir, "data")
                self._mount(outdir, f"{OUTPUTS}/{key}", read_only=False)
                return f"{OUTPUTS}/{key}/data"
            if kind in ("input_uri", "output_uri") and host.startswith("file://"):
                from stackhop.core.artifacts import ArtifactStore

                path = ArtifactStore.local_path(host)
                if kind == "input_uri":
                    self._mount(path, path, read_only=True)
                else:  # the command writes the artifact itself: give it the directory the URI sits in
                    parent = os.path.dirname(path)
                    os.makedirs(parent, exist_ok=True)
                    self._mount(parent, parent, read_only=False)
            return host
        return place

    def _mount(self, host: str, target: str, read_only: bool) -> str:
        if "," in host or '"' in host:
            raise StepError(f"step {self.step['name']!r}: {self.runtime} cannot mount {host!r} because the path holds "
                            "a comma or a quote; move the project or artifact root to a path without one.")
        if target not in self.mounts or not read_only:
            self.mounts[target] = (host, read_only)
        return target

    def argv(self, command: list[str]) -> list[str]:
        settings = self.step.get("settings") or {}
        image = settings.get("image") or self.step["container"]["image"]
        argv = [self.runtime, "run", "--rm", "--init", "--name", self.name]
        for target, (host, read_only) in sorted(self.mounts.items()):
            argv += ["--mount", f"type=bind,source={host},target={target}" + (",readonly" if read_only else "")]
        names = sorted({*(settings.get("env") or {}), *(s["env"] for s in self.step.get("secrets", []))})
        for var in names:  # values travel through the client's environment, never its argv
            argv += ["--env", var]
        argv += self._user() + self._resources(settings.get("resources") or {})
        argv += ["--", image, *command]
        return argv

    def _user(self) -> list[str]:
        if self.runtime == "podman" and os.getuid() != 0:
            return ["--userns=keep-id"]
        return ["--user", f"{os.getuid()}:{os.getgid()}"]

    def _resources(self, resources: dict[str, Any]) -> list[str]:
        out: list[str] = []
        cpu = resources.get("cpu_limit_millicores") or resources.get("cpu_millicores")
        if cpu:
            out += ["--cpus", f"{cpu / 1000:g}"]
        memory = resources.get("memory_limit_bytes") or resources.get("memory_bytes")
        if memory:
            out += ["--memory", str(memory)]
        gpus = [g for g in self.env.get("CUDA_VISIBLE_DEVICES", "").split(",") if g] if resources.get("accelerator") else []
        if gpus and self.runtime == "docker":
            out += ["--gpus", f'"device={",".join(gpus)}"']
        for gpu in gpus if self.runtime == "podman" else []:
            out += ["--device", f"nvidia.com/gpu={gpu}"]
        return out

    def collect(self, staged: dict[str, str]) -> None:
        """Move what the command wrote at each OutputPath to where the host-side commit expects it."""
        for key, path in self.written.items():
            if os.path.lexists(path):
                if os.path.lexists(staged[key]):
                    shutil.rmtree(staged[key]) if os.path.isdir(staged[key]) else os.remove(staged[key])
                shutil.move(path, staged[key])

    def failure(self, command: list[str], rc: int) -> str:
        """The sentence for a non-zero exit: the runtime's own codes (125-127) are not the command's."""
        if rc == 125:
            return (f"{self.runtime} could not run image {self.argv([])[-1]!r} (exit code 125); its message is in the "
                    "step log")
        if rc in (126, 127):
            return (f"command {command[0]!r} {'cannot be executed' if rc == 126 else 'was not found'} in the image "
                    f"(exit code {rc}); check the step's command and image")
        return f"command {command[0]!r} exited with code {rc} in its image"
