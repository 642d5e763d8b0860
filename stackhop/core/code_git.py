"""Ship the user's code as a git commit: steps clone the exact commit instead of an archive.

For teams whose step images may reach their git server but whose runs should not upload
code: the run records the remote and commit, the tree must be clean (so the commit is the
code), and each step clones it once into a cache keyed by commit. Commands are argv lists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from stackhop.errors import StackhopError

PREFIX = "git+"


def _git(*args: str, cwd: str | Path | None = None) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise StackhopError("code mode 'git' needs git on this machine and in the step image; install it.") from None
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise StackhopError(f"`git {' '.join(args)}` failed: {last[0]}.") from None
    return done.stdout.strip()


def git_ref(root: str | Path) -> tuple[str, str]:
    """(uri, digest) for the code root's commit: `git+<remote>` and `git:<commit>:<subdir>`."""
    top = Path(_git("rev-parse", "--show-toplevel", cwd=root))
    if _git("status", "--porcelain", "--untracked-files=no", cwd=top):
        raise StackhopError(f"code mode 'git': {top} has uncommitted changes; commit or stash them so the commit is the code.")
    commit = _git("rev-parse", "HEAD", cwd=top)
    try:
        remote = _git("remote", "get-url", "origin", cwd=top)
    except StackhopError:
        raise StackhopError(f"code mode 'git': {top} has no 'origin' remote; add one the steps can clone from.") from None
    if "://" not in remote and not remote.startswith("git@"):
        remote = Path(top, remote).resolve().as_uri()
    subdir = Path(root).resolve().relative_to(top.resolve()).as_posix()
    return PREFIX + remote, f"git:{commit}:{'' if subdir == '.' else subdir}"


def checkout(uri: str, digest: str, cache_dir: Path) -> str:
    """Clone `uri` at the digest's commit once; return the code root inside it."""
    _, commit, subdir = digest.split(":", 2)
    target = cache_dir / f"git-{commit}"
    if not (target / ".stackhop-complete").exists():
        tmp = Path(f"{target}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        _git("clone", "--quiet", "--no-checkout", uri.removeprefix(PREFIX), str(tmp))
        _git("-c", "advice.detachedHead=false", "checkout", "--quiet", commit, cwd=tmp)
        if _git("rev-parse", "HEAD", cwd=tmp) != commit:
            raise StackhopError(f"{uri} did not check out commit {commit}; re-submit the run.")
        (tmp / ".stackhop-complete").touch()
        try:
            os.replace(tmp, target)
        except OSError:  # another step process won the race; its checkout is identical
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target / subdir) if subdir else str(target)
