"""A step's `packages_to_install`, installed in the step process before its module is imported.

pip installs them with `--target` into a folder named by the sorted requirements and the Python
version, so every step (and every later run) asking for the same set reuses one install; the folder
appears whole (installed beside it, then renamed) or not at all, so a crash never leaves a half
install that looks complete. Kept free of pydantic: it runs at the start of every such step.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

from stackhop.core.wiring import StepError

_DONE = ".stackhop-installed"


def cache_root() -> str:
    explicit = os.environ.get("STACKHOP_PACKAGE_CACHE")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "stackhop", "packages")


def install_dir(requirements: list[str] | tuple[str, ...]) -> str:
    key = json.dumps({"python": list(sys.version_info[:2]), "requirements": sorted(requirements)})
    return os.path.join(cache_root(), hashlib.sha256(key.encode()).hexdigest()[:24])


def ensure_installed(step: str, requirements: list[str] | tuple[str, ...]) -> str:
    """The folder holding `requirements`, installed now unless an earlier step already did; put on sys.path."""
    target = install_dir(requirements)
    if not os.path.exists(os.path.join(target, _DONE)):
        _install(step, list(requirements), target)
    if target not in sys.path:
        sys.path.insert(0, target)
    import importlib

    importlib.invalidate_caches()
    return target


def _install(step: str, requirements: list[str], target: str) -> None:
    parent = os.path.dirname(target)
    try:
        os.makedirs(parent, exist_ok=True)
        work = tempfile.mkdtemp(prefix=os.path.basename(target) + ".", dir=parent)
    except OSError as exc:
        raise StepError(f"step {step!r}: cannot create the packages_to_install cache at {parent} ({exc.strerror}); "
                        "set STACKHOP_PACKAGE_CACHE to a folder the step can write.") from None
    print(f"stackhop: step {step!r} installs packages_to_install: {', '.join(requirements)}", file=sys.stderr)
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
            "--no-warn-script-location", "--target", work, "--", *requirements]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        sys.stderr.write(proc.stdout)
        culprit = _culprit(requirements, proc.stdout)
        why = next((line.strip() for line in reversed(proc.stdout.splitlines()) if line.strip().startswith("ERROR")),
                   f"pip exited with code {proc.returncode}")
        raise StepError(f"step {step!r}: pip could not install {culprit} from packages_to_install ({why}); check the "
                        "requirement's name and version and that the step reaches its package index, or bake it into "
                        "the step's image.")
    with open(os.path.join(work, _DONE), "w") as f:
        json.dump(sorted(requirements), f)
    try:
        os.rename(work, target)
    except OSError:  # another step installed the same set meanwhile: theirs is as good
        shutil.rmtree(work, ignore_errors=True)
        if not os.path.exists(os.path.join(target, _DONE)):
            raise StepError(f"step {step!r}: cannot move the installed packages_to_install into {target}; remove that "
                            "folder and run again.") from None


def _culprit(requirements: list[str], output: str) -> str:
    """The requirement pip's output names, else all of them."""
    import re

    for req in requirements:
        name = re.split(r"[\s<>=!~;\[@]", req, maxsplit=1)[0]
        if name and (req in output or re.search(r"\b" + re.escape(name) + r"\b", output)):
            return repr(req)
    return ", ".join(repr(r) for r in requirements)
