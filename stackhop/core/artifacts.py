"""The artifact store: one URI scheme for every backend, atomic writes, names that cannot escape.

URIs are `{root}/{pipeline}/{run_id}/{step}[/{loop index}...]/{output}`; run metadata lives
under `_stackhop/` segments, which no step or output name can take. Local roots use the
filesystem directly (step processes start faster without fsspec); every other scheme goes
through fsspec, imported on first use.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlparse

from stackhop.errors import ArtifactError

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
META = "_stackhop"
_OBJECT_STORES = ("s3", "gs", "gcs")


def safe_segment(name: str, what: str) -> str:
    """Reject anything that could climb out of its prefix ('..', '/', absolute paths)."""
    if not _SEGMENT.match(name) or ".." in name:
        raise ArtifactError(
            f"{what} {name!r} cannot be used in an artifact path; use letters, digits, '.', '_' and '-' only."
        )
    return name


def normalize_root(root: str, base_dir: str | os.PathLike[str] | None = None) -> str:
    """Plain paths become absolute file:// URIs (relative to `base_dir`); others pass through."""
    if "://" in root:
        return root.rstrip("/")
    path = Path(root).expanduser()
    if not path.is_absolute():
        path = Path(base_dir or os.getcwd()) / path
    return path.resolve().as_uri()


class ArtifactStore:
    def __init__(self, root: str):
        self.root = normalize_root(root)
        self.scheme = urlparse(self.root).scheme
        self.is_local = self.scheme == "file"
        self._fs: Any = None

    @classmethod
    def for_uri(cls, uri: str) -> "ArtifactStore":
        parsed = urlparse(uri)
        return cls(f"{parsed.scheme}://{parsed.netloc}" if parsed.scheme != "file" else "file:///")

    # ------------------------------------------------------------------ layout
    def run_prefix(self, pipeline: str, run_id: str) -> str:
        return f"{self.root}/{safe_segment(pipeline, 'pipeline name')}/{safe_segment(run_id, 'run id')}"

    def step_prefix(self, pipeline: str, run_id: str, step: str, index: tuple[int, ...] = ()) -> str:
        parts = [safe_segment(step, "step name"), *(str(int(i)) for i in index)]
        return self.run_prefix(pipeline, run_id) + "/" + "/".join(parts)

    def output_uri(self, pipeline: str, run_id: str, step: str, output: str, index: tuple[int, ...] = ()) -> str:
        return self.step_prefix(pipeline, run_id, step, index) + "/" + safe_segment(output, "output name")

    def step_meta(self, pipeline: str, run_id: str, step: str, index: tuple[int, ...], name: str) -> str:
        return self.step_prefix(pipeline, run_id, step, index) + f"/{META}/{name}"

    def run_meta(self, pipeline: str, run_id: str, name: str) -> str:
        return self.run_prefix(pipeline, run_id) + f"/{META}/{name}"

    def shared_meta(self, *parts: str) -> str:
        return self.root + f"/{META}/" + "/".join(safe_segment(p, "path segment") for p in parts)

    # ------------------------------------------------------------------ primitives
    @staticmethod
    def local_path(uri: str) -> str:
        parsed = urlparse(uri)
        if parsed.scheme not in ("file", ""):
            raise ArtifactError(f"{uri!r} is not a local file URI.")
        return unquote(parsed.path)

    @property
    def fs(self) -> Any:
        if self._fs is None:
            import fsspec

            # lazy: store_access (and socket) only for remote roots; the step entrypoint imports this module
            from stackhop.core.store_access import preflight

            options: dict[str, Any] = {}
            if self.scheme == "s3":
                if os.environ.get("AWS_ENDPOINT_URL_S3"):
                    options["endpoint_url"] = os.environ["AWS_ENDPOINT_URL_S3"]
                options["config_kwargs"] = {"connect_timeout": 5, "retries": {"max_attempts": 2}}
            preflight(self.scheme, self.root)
            try:
                self._fs = fsspec.filesystem(self.scheme, **options)
            except (ImportError, ValueError) as exc:
                hint = {"s3": "install it with `pip install 'stackhop[aws]'`",
                        "gs": "install it with `pip install 'stackhop[gcp]'`", "gcs": "install it with `pip install 'stackhop[gcp]'`"}.get(
                    self.scheme, "install the fsspec implementation for that scheme")
                raise ArtifactError(
                    f"artifact root {self.root!r} needs a filesystem for {self.scheme}:// that is not installed "
                    f"({exc}); {hint}."
                ) from None
        return self._fs

    def exists(self, uri: str) -> bool:
        if self.is_local or uri.startswith("file://"):
            return os.path.exists(self.local_path(uri))
        with self._remote(uri):
            return bool(self.fs.exists(uri))

    def version(self, uri: str) -> str:
        """What changes when the object at `uri` does: its content digest here, the store's own version (ETag,
        generation, size and time) remotely, where reading a whole dataset to hash it would cost a download."""
        if self.is_local or uri.startswith("file://"):
            return content_digest(self.local_path(uri))
        with self._remote(uri):
            info = self.fs.info(uri)
        kept = {k: str(info[k]) for k in ("ETag", "etag", "md5Hash", "generation", "size", "LastModified", "updated")
                if info.get(k) is not None}
        return "version:" + hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()

    def read_bytes(self, uri: str) -> bytes:
        try:
            if self.is_local or uri.startswith("file://"):
                with open(self.local_path(uri), "rb") as f:
                    return f.read()
            with self._remote(uri):
                return bytes(self.fs.cat_file(uri))
        except FileNotFoundError:
            raise ArtifactError(f"{uri} does not exist.") from None

    def read_json(self, uri: str) -> Any:
        return json.loads(self.read_bytes(uri))

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Atomic: readers see the old content or the new, never a partial file."""
        if self.is_local:
            path = self.local_path(uri)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        else:
            try:
                with self._remote(uri):
                    self._ensure_parent(uri)
                    with self.fs.open(uri, "wb") as f:  # object stores commit a PUT whole
                        f.write(data)
            except (FileNotFoundError, PermissionError) as exc:
                from stackhop.core.store_access import who

                bucket = uri.split("://", 1)[-1].split("/", 1)[0]
                raise ArtifactError(
                    f"{who(uri)}cannot write {uri} ({type(exc).__name__}): bucket {bucket!r} does not exist or these "
                    "credentials may not write to it; create it, or point the stack's artifact_root at one they may."
                ) from None

    def _remote(self, uri: str) -> contextlib.AbstractContextManager[None]:
        from stackhop.core.store_access import access

        return access(self.scheme, uri)

    def _ensure_parent(self, uri: str) -> None:
        """Filesystems need the directory. Object stores need none, and their fsspec makedirs would
        create a missing bucket: a bucket is made on purpose, with its region and policies, never as a side effect."""
        if self.scheme not in _OBJECT_STORES:
            self.fs.makedirs(uri.rsplit("/", 1)[0], exist_ok=True)

    def remove(self, uri: str) -> None:
        """Delete one file if it is there: a stale marker must not outlive the attempt that wrote it."""
        if self.is_local or uri.startswith("file://"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.local_path(uri))
            return
        with self._remote(uri):
            if self.fs.exists(uri):
                self.fs.rm_file(uri)

    def remove_tree(self, prefix: str) -> int:
        """Delete everything under `prefix`; returns the bytes it held (0 when there was nothing)."""
        if self.is_local or prefix.startswith("file://"):
            base = self.local_path(prefix)
            if not os.path.isdir(base):
                return 0
            size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(base) for f in files)
            shutil.rmtree(base)
            return size
        with self._remote(prefix):
            if not self.fs.exists(prefix):
                return 0
            size = int(self.fs.du(prefix, total=True))
            self.fs.rm(prefix, recursive=True)
            return size

    def write_json(self, uri: str, data: Any) -> None:
        self.write_bytes(uri, json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode())

    def staging_path(self, uri: str) -> str:
        """A local path to write an output at; on local roots it sits beside the target, so the
        final commit is a rename rather than a copy."""
        if self.is_local:
            path = self.local_path(uri)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        return os.path.join(tempfile.mkdtemp(prefix="stackhop-out-"), os.path.basename(uri))

    def commit(self, staged: str, uri: str) -> None:
        """Move a staged file or directory to `uri` atomically (rename, or upload then marker)."""
        if self.is_local:
            target = self.local_path(uri)
            if os.path.isdir(target) and not os.path.islink(target):
                trash = f"{target}.old-{uuid.uuid4().hex[:8]}"
                os.replace(target, trash)
                os.replace(staged, target)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(staged, target)
            return
        with self._remote(uri):
            self._ensure_parent(uri)
            if os.path.isdir(staged):
                self.fs.put(staged.rstrip("/") + "/", uri.rstrip("/") + "/", recursive=True)
            else:
                self.fs.put_file(staged, uri)
        shutil.rmtree(os.path.dirname(staged), ignore_errors=True)

    def get(self, uri: str, dest: str) -> None:
        if uri.startswith("file://"):
            src = self.local_path(uri)
            if os.path.isdir(src):
                shutil.copytree(src, dest, dirs_exist_ok=True)
            else:
                os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
                shutil.copyfile(src, dest)
            return
        with self._remote(uri):
            if self.fs.isdir(uri):
                self.fs.get(uri.rstrip("/") + "/", dest.rstrip("/") + "/", recursive=True)
            else:
                os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
                self.fs.get_file(uri, dest)

    @contextlib.contextmanager
    def local_copy(self, uri: str) -> Iterator[str]:
        """A local path with the artifact's content: the file itself on local roots."""
        if uri.startswith("file://"):
            path = self.local_path(uri)
            if not os.path.exists(path):
                raise ArtifactError(f"{uri} does not exist.")
            yield path
            return
        tmp = tempfile.mkdtemp(prefix="stackhop-in-")
        try:
            dest = os.path.join(tmp, os.path.basename(uri.rstrip("/")) or "artifact")
            self.get(uri, dest)
            yield dest
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def put_file(self, local: str, uri: str) -> None:
        if self.is_local:
            path = self.local_path(uri)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{os.getpid()}"
            shutil.copyfile(local, tmp)
            os.replace(tmp, path)
        else:
            with self._remote(uri):
                self._ensure_parent(uri)
                self.fs.put_file(local, uri)

    def list_json(self, prefix: str, name: str) -> list[tuple[str, Any]]:
        """Every `<...>/_stackhop/<name>` below `prefix`, with its parsed content."""
        found: list[tuple[str, Any]] = []
        if self.is_local:
            base = self.local_path(prefix)
            for dirpath, dirnames, filenames in os.walk(base):
                if os.path.basename(dirpath) == META and name in filenames:
                    uri = Path(dirpath, name).as_uri()
                    with contextlib.suppress(OSError, ValueError):
                        found.append((uri, self.read_json(uri)))
                dirnames[:] = [d for d in dirnames if ".tmp-" not in d]
        else:
            with self._remote(prefix):
                paths = self.fs.glob(prefix.rstrip("/") + f"/**/{META}/{name}")
            for path in paths:
                uri = f"{self.scheme}://{path}"
                found.append((uri, self.read_json(uri)))
        return sorted(found)


def content_digest(path: str) -> str:
    """sha256 over a file, or over a directory's relative paths and file contents."""
    h = hashlib.sha256()
    if os.path.isdir(path):
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                rel = os.path.relpath(full, path).replace(os.sep, "/")
                h.update(rel.encode() + b"\0")
                _hash_file(h, full)
        return "sha256:" + h.hexdigest()
    _hash_file(h, path)
    return "sha256:" + h.hexdigest()


def _hash_file(h: Any, path: str) -> None:
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
