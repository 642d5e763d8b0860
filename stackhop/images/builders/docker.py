"""Build with the docker CLI, for machines that already run a Docker daemon (Docker Desktop, CI with dind).

`docker build` then `docker push`; the pushed digest is read from push's "digest: sha256:..."
line, or from the image's RepoDigests when the output format changes. The daemon holds the
credentials (`docker login`) and decides which registries are insecure, so this builder has
no TLS or auth settings of its own.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pydantic import Field

from stackhop.images.builder import Builder, BuilderSettings
from stackhop.images.builders.buildah import BUILD_FIX, PUSH_FIX, run_logged
from stackhop.images.errors import ImageError

if TYPE_CHECKING:
    from stackhop.images.spec import BuildSpec

_PUSHED = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_INFO_TIMEOUT = 20.0
_ALTERNATIVE = "or use the buildah builder (images.builder: buildah)"


class DockerSettings(BuilderSettings):
    binary: str = "docker"
    extra_args: list[str] = Field(default_factory=list, description="Added to `docker build`, before the context.")


class DockerBuilder(Builder):
    name = "docker"
    Settings = DockerSettings
    settings: DockerSettings

    def unavailable(self) -> str | None:
        binary = self.settings.binary
        if shutil.which(binary) is None:
            return f"{binary} is not installed; install Docker, {_ALTERNATIVE}."
        try:
            done = subprocess.run(self.info_argv(), capture_output=True, text=True, timeout=_INFO_TIMEOUT,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            return f"The Docker daemon did not answer `docker info` within {_INFO_TIMEOUT:.0f} s; start it, {_ALTERNATIVE}."
        except OSError as err:
            return f"{binary} cannot run ({err.strerror}); reinstall Docker, {_ALTERNATIVE}."
        if done.returncode != 0 or not done.stdout.strip():
            lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
            # Only the first sentence: docker's own line goes on with "Is the docker daemon running?".
            why = lines[-1].split(". ")[0].rstrip(".") if lines else f"exit status {done.returncode}"
            return f"The Docker daemon is not reachable ({why}); start it, {_ALTERNATIVE}."
        return None

    # argv is built separately from running it so it can be checked without a daemon.

    def info_argv(self) -> list[str]:
        return [self.settings.binary, "info", "--format", "{{.ServerVersion}}"]

    def build_argv(self, spec: "BuildSpec", context_dir: Path) -> list[str]:
        argv = [self.settings.binary, "build", "-f", str(context_dir / "Dockerfile"), "-t", spec.reference]
        if spec.platform:
            argv += ["--platform", spec.platform]
        for key, value in spec.build_args:
            argv += ["--build-arg", f"{key}={value}"]
        return [*argv, *self.settings.extra_args, str(context_dir)]

    def push_argv(self, spec: "BuildSpec") -> list[str]:
        return [self.settings.binary, "push", spec.reference]

    def inspect_argv(self, spec: "BuildSpec") -> list[str]:
        return [self.settings.binary, "image", "inspect", "--format", "{{json .RepoDigests}}", spec.reference]

    def build(self, spec: "BuildSpec", log: Callable[[str], None]) -> str:
        image = f"{spec.name} ({spec.reference})"
        with tempfile.TemporaryDirectory(prefix="stackhop-docker-") as tmp:
            context_dir = spec.write_context(Path(tmp) / "context")
            run_logged(self.build_argv(spec, context_dir), log, image=image, action="build", fix=BUILD_FIX)
        pushed = run_logged(self.push_argv(spec), log, image=image, action="push", fix=PUSH_FIX)
        for line in reversed(pushed):
            if match := _PUSHED.search(line):
                return match.group(1)
        return self._repo_digest(spec, image)

    def _repo_digest(self, spec: "BuildSpec", image: str) -> str:
        """The digest docker recorded for `spec.repository`, when push printed none."""
        from stackhop.images.reference import parse_reference

        lines = run_logged(self.inspect_argv(spec), lambda _line: None, image=image, action="inspect", fix=PUSH_FIX)
        try:
            repo_digests = json.loads("".join(lines)) or []
        except ValueError:
            repo_digests = []
        wanted = parse_reference(spec.repository).name
        for entry in repo_digests:
            name, _, digest = str(entry).partition("@")
            if parse_reference(name).name == wanted and digest:
                return digest
        raise ImageError(f"docker pushed {image} but recorded no digest for {spec.repository}; "
                         f"check the output of `docker push` and push again.")
