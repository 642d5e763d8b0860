"""Ship the user's code to a step as a content-addressed, reproducible archive.

The archive is byte-identical for identical sources (sorted entries, zeroed times and owners),
so its digest names it: an unchanged tree is uploaded once and every backend fetches the
same object. Remote adapters put `archive_uri` in the run spec; the entrypoint extracts it
into a cache keyed by digest before importing the step's module.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

from stackhop.core.artifacts import ArtifactStore
from stackhop.errors import StackhopError

EXCLUDED_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "__pycache__", ".stackhop", "node_modules",
                 ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox", "build", "dist", ".idea", ".vscode"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
MAX_BYTES = 200 * 2**20


def source_files(root: str | os.PathLike[str]) -> list[Path]:
    """The files that ship as the user's code, sorted; caches, VCS and virtualenvs left out."""
    root = Path(root)
    files: list[Path] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS and not d.endswith(".egg-info"))
        for fn in sorted(filenames):
            if fn.endswith(EXCLUDED_SUFFIXES):
                continue
            path = Path(dirpath, fn)
            if path.is_symlink() or not path.is_file():
                continue
            total += path.stat().st_size
            files.append(path)
    if total > MAX_BYTES:
        raise StackhopError(
            f"the code under {str(root)!r} is {total // 2**20} MiB, over the {MAX_BYTES // 2**20} MiB archive limit; "
            "move data files out of the source tree or into the artifact store."
        )
    return files


def build_archive(root: str | os.PathLike[str]) -> tuple[bytes, str]:
    root = Path(root)
    files = source_files(root)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            rel = path.relative_to(root).as_posix()
            info = tarfile.TarInfo(rel)
            info.size = path.stat().st_size
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(path, "rb") as f:
                tar.addfile(info, f)
    data = gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def upload(store: ArtifactStore, root: str | os.PathLike[str]) -> tuple[str, str]:
    """Upload the archive unless the store already has it; return (uri, digest)."""
    data, digest = build_archive(root)
    uri = store.shared_meta("code", digest.split(":", 1)[1] + ".tar.gz")
    if not store.exists(uri):
        store.write_bytes(uri, data)
    return uri, digest


def extract(uri: str, digest: str, cache_dir: str | None = None) -> str:
    """Extract once per digest into a cache dir; verify the digest before trusting the bytes."""
    base = Path(cache_dir or os.environ.get("STACKHOP_CODE_CACHE") or Path.home() / ".cache" / "stackhop" / "code")
    if uri.startswith("git+"):
        from stackhop.core.code_git import checkout

        return checkout(uri, digest, base)
    target = base / digest.split(":", 1)[1]
    if (target / ".complete").exists():
        return str(target)
    data = ArtifactStore.for_uri(uri).read_bytes(uri)
    actual = "sha256:" + hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise StackhopError(f"code archive {uri} has digest {actual}, expected {digest}; re-submit the run.")
    tmp = Path(f"{target}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(tmp, filter="data")
    (tmp / ".complete").touch()
    try:
        os.replace(tmp, target)
    except OSError:  # another process won the race; theirs is identical
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return str(target)
