"""One image to build: a rendered Dockerfile, its build context, and the reference it is pushed to."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class BuildSpec:
    """Everything a builder needs, and nothing it has to decide: the tag is the content hash."""

    name: str
    """A human label, e.g. "training-pipeline" or "training-pipeline/train_model"."""
    repository: str
    """Registry host and path, e.g. "127.0.0.1:5000/ml/training-pipeline"."""
    tag: str
    """"h-" + the first 32 hex digits of the sha256 of the Dockerfile and context."""
    dockerfile: str
    context: tuple[tuple[str, bytes], ...] = ()
    """(relative path, bytes), sorted; the Dockerfile itself is written as `Dockerfile`."""
    platform: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    steps: tuple[str, ...] = field(default=(), compare=False)
    """The steps that run in this image."""

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    def write_context(self, directory: str | os.PathLike[str]) -> Path:
        """Write `Dockerfile` and the context files under `directory`; returns it."""
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        (root / "Dockerfile").write_text(self.dockerfile)
        for rel, data in self.context:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return root

    def context_tar(self) -> bytes:
        """The context as a reproducible tar.gz (fixed mtimes, owners and order), for remote builders."""
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
            for rel, data in (("Dockerfile", self.dockerfile.encode()), *self.context):
                info = tarfile.TarInfo(rel)
                info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()
