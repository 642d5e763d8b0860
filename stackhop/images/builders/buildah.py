"""Build with buildah: no daemon, so it runs on CI machines, in containers and as root alike.

Defaults suit an unprivileged container: the `vfs` storage driver (no overlay mounts) and
`chroot` isolation (no user namespaces). `buildah bud` builds from a temporary directory
holding the spec's context; `buildah push --digestfile` pushes and reports the digest the
registry stored, which is what the step is pinned to. Loopback registries are plain http,
so TLS verification is off for them unless `tls_verify` says otherwise. Credentials are
buildah's own business (it reads docker's and podman's auth files); `--authfile` is passed
only when `$REGISTRY_AUTH_FILE` names one, so the build and the push agree on it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from pydantic import Field

from stackhop.images.builder import Builder, BuilderSettings
from stackhop.images.errors import ImageError

if TYPE_CHECKING:
    from stackhop.images.spec import BuildSpec


_MAX_TAIL = 400  # an error line can hold a whole pip log; the rest went to `log`


def run_logged(argv: Sequence[str], log: Callable[[str], None], *, image: str, action: str, fix: str,
               env: dict[str, str] | None = None) -> list[str]:
    """Run `argv`, passing each output line to `log`; on failure, ImageError naming `image`, the last line and `fix`.

    stderr is merged into stdout so the last line is the tool's error, not a progress line
    written to the other stream. Returns the output lines.
    """
    lines: list[str] = []
    last = ""
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1, env=env)
    except OSError as err:
        raise ImageError(f"Could not run {argv[0]} to {action} the image {image} ({err.strerror}); "
                         f"check that it is installed.") from None
    assert proc.stdout is not None
    with proc:
        for raw in proc.stdout:
            line = raw.rstrip("\r\n")
            lines.append(line)
            log(line)
            last = line.strip() or last
    if proc.returncode != 0:
        tail = last or f"exit status {proc.returncode}, no output"
        if len(tail) > _MAX_TAIL:
            tail = tail[:_MAX_TAIL] + "..."
        raise ImageError(f"Could not {action} the image {image}: {tail.rstrip('.')}; "
                         f"{fix}.")
    return lines


BUILD_FIX = "fix the Dockerfile or its context and build again"
PUSH_FIX = "check that the registry is up and that you are logged in to it, then build again"


def from_images(dockerfile: str) -> list[str]:
    """The images a Dockerfile's FROM lines pull (not `scratch`, earlier stages, or `$ARG` ones)."""
    images, stages = [], set()
    for raw in dockerfile.splitlines():
        words = raw.split()
        if len(words) < 2 or words[0].upper() != "FROM":
            continue
        rest = [w for w in words[1:] if not w.startswith("--")]
        if not rest:
            continue
        image = rest[0]
        if len(rest) >= 3 and rest[1].upper() == "AS":
            stages.add(rest[2].lower())
        if image.lower() != "scratch" and image.lower() not in stages and "$" not in image:
            images.append(image)
    return images


def _registry_of(image: str) -> str | None:
    from stackhop.images.reference import parse_reference

    try:
        return parse_reference(image).registry
    except ImageError:
        return None  # buildah will say what is wrong with it


class BuildahSettings(BuilderSettings):
    storage_driver: str = Field(default="vfs", description="vfs works everywhere; overlay is faster where allowed.")
    isolation: str = Field(default="chroot", description="chroot works in containers; oci or rootless elsewhere.")
    tls_verify: bool | None = Field(default=None, description="Default: off for loopback registries, on otherwise.")
    extra_args: list[str] = Field(default_factory=list, description="Added to `buildah bud`, before the context.")
    binary: str = "buildah"
    root: str | None = Field(default=None, description="Storage root; default buildah's (/var/lib/containers/storage).")
    runroot: str | None = Field(default=None, description="State directory; default buildah's.")


class BuildahBuilder(Builder):
    name = "buildah"
    Settings = BuildahSettings
    settings: BuildahSettings

    def unavailable(self) -> str | None:
        if shutil.which(self.settings.binary) is None:
            return (f"{self.settings.binary} is not installed; install it (apt-get install buildah) "
                    f"or set images.builder_settings.binary.")
        return None

    # argv is built separately from running it so it can be checked without buildah.

    def global_args(self) -> list[str]:
        s = self.settings
        argv = [s.binary, "--storage-driver", s.storage_driver]
        if s.root:
            argv += ["--root", s.root]
        if s.runroot:
            argv += ["--runroot", s.runroot]
        return argv

    def _tls_off(self, registries: Sequence[str | None]) -> bool:
        if self.settings.tls_verify is not None:
            return not self.settings.tls_verify
        from stackhop.images.reference import is_loopback

        return any(r is not None and is_loopback(r) for r in registries)

    def _auth_args(self) -> list[str]:
        auth_file = os.environ.get("REGISTRY_AUTH_FILE")
        return ["--authfile", auth_file] if auth_file else []

    def bud_argv(self, spec: "BuildSpec", context_dir: Path) -> list[str]:
        argv = [*self.global_args(), "bud", "--isolation", self.settings.isolation, "--layers=false",
                "-f", str(context_dir / "Dockerfile"), "-t", spec.reference]
        if spec.platform:
            argv += ["--platform", spec.platform]
        for key, value in spec.build_args:
            argv += ["--build-arg", f"{key}={value}"]
        if self._tls_off([_registry_of(i) for i in from_images(spec.dockerfile)]):
            argv.append("--tls-verify=false")  # a loopback base image is served over plain http
        argv += [*self._auth_args(), *self.settings.extra_args, str(context_dir)]
        return argv

    def push_argv(self, spec: "BuildSpec", digest_file: Path) -> list[str]:
        argv = [*self.global_args(), "push", "--digestfile", str(digest_file)]
        if self._tls_off([_registry_of(spec.reference)]):
            argv.append("--tls-verify=false")
        argv += [*self._auth_args(), spec.reference, f"docker://{spec.reference}"]
        return argv

    def build(self, spec: "BuildSpec", log: Callable[[str], None]) -> str:
        from stackhop.images.reference import is_digest

        with tempfile.TemporaryDirectory(prefix="stackhop-buildah-") as tmp:
            context_dir = spec.write_context(Path(tmp) / "context")
            digest_file = Path(tmp) / "digest"
            image = f"{spec.name} ({spec.reference})"
            run_logged(self.bud_argv(spec, context_dir), log, image=image, action="build", fix=BUILD_FIX)
            run_logged(self.push_argv(spec, digest_file), log, image=image, action="push", fix=PUSH_FIX)
            digest = digest_file.read_text().strip() if digest_file.exists() else ""
        if not is_digest(digest):
            raise ImageError(f"buildah pushed {spec.reference} but reported no digest ({digest or 'empty'}); "
                             f"check the buildah version (1.20 or later writes --digestfile).")
        return digest
