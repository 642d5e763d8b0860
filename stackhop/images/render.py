"""ImageSettings -> a Dockerfile and its build context, deterministically.

Layers go from what changes least to what changes most, so a rebuild reuses the most cache:
parent -> apt packages -> environment -> the project's pinned requirements -> the step's own
requirements -> stackhop itself -> extra files -> code (only when the code is in the image).
stackhop is copied from the installation doing the build, with its dependencies pinned to the
versions installed here, so the image runs the same stackhop that compiled the pipeline.
The tag is the sha256 of the Dockerfile and every context file: same inputs, same tag.

Settings are validated again here, whatever path they came by, and every value is written
through `quoting`, so no setting can add an instruction or a shell command.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pydantic

from stackhop.core.image_settings import ImageSettings
from stackhop.images import quoting
from stackhop.images.errors import ImageError

DEFAULT_PARENT = "python:3.11-slim"
DEFAULT_USER = "10001"
STACKHOP_HOME = "/opt/stackhop"
CODE_DIR = "/app"
_CORE_DEPS = ("pydantic", "pydantic-core", "pluggy", "typer", "rich", "pyyaml", "fsspec", "annotated-types",
              "typing-extensions", "typing-inspection", "click", "markdown-it-py", "mdurl", "pygments", "shellingham",
              "packaging")
_STORE_DEPS = {"s3": ("s3fs", "aiobotocore", "botocore", "boto3"), "gs": ("gcsfs", "google-cloud-storage")}
_PINNED = re.compile(r"^[A-Za-z0-9_.\[\],-]+\s*===?\s*[^\s;]+")
_NON_DEBIAN = ("alpine", "busybox", "distroless", "scratch", "ubi", "fedora", "centos", "amazonlinux", "rockylinux")


@dataclass(frozen=True)
class Rendered:
    dockerfile: str
    context: tuple[tuple[str, bytes], ...]
    key: str
    """sha256 hex of the Dockerfile and context: the image's identity."""
    warnings: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        return "h-" + self.key[:32]


def _read(project: Path, rel: str, what: str, where: str) -> bytes:
    path = (project / rel).resolve()
    if not path.is_relative_to(project.resolve()):
        raise ImageError(f"{where}: {what} {rel!r} is outside the project {str(project)!r}; keep it inside.")
    if not path.is_file():
        raise ImageError(f"{where}: {what} {rel!r} does not exist under {str(project)!r}; fix the path.")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{where}: {what} {rel!r} cannot be read ({exc.strerror}); check its permissions.") from None


def _text(data: bytes, rel: str, what: str, where: str) -> str:
    """A file the build reads as text (pip, the Dockerfile frontend): UTF-8, as both expect."""
    fix = "save it as UTF-8 text"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        why = "is UTF-16, as PowerShell's `>` writes it (e.g. `pip freeze > requirements.txt`)"
        fix = f"save it as UTF-8 (in PowerShell: `pip freeze | Out-File -Encoding utf8 {rel}`)"
    elif b"\0" in data:
        why = "is not text (it holds NUL bytes)"
    else:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[:exc.start].count(b"\n") + 1
            why = f"is not UTF-8 (line {line} has the byte 0x{data[exc.start]:02x})"
    raise ImageError(f"{where}: {what} {rel!r} {why}; {fix}.")


# Options pip reads from a requirements file that need nothing but the file itself and the network.
_SAFE_OPTIONS = ("-i", "--index-url", "--extra-index-url", "--trusted-host", "--pre", "--prefer-binary",
                 "--only-binary", "--no-binary", "--require-hashes", "--no-index")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_LOCAL = re.compile(r"(?:\.|/|~|file:|[A-Za-z]:[\\/])")


def _requirement_lines(text: str, rel: str, where: str) -> list[str]:
    """The requirements in a requirements file, one per logical line (continuations joined, comments dropped).

    The file is shipped as it is and nothing else of the project goes with it, so a line that points
    pip at another file or at a folder here (`-r base.txt`, `-e .`, `./libs/x`, `-f wheels/`) is
    refused, naming its line: in the image it could only fail."""
    out: list[str] = []
    physical = text.splitlines()
    i = 0
    while i < len(physical):
        number, line = i + 1, physical[i]
        while line.endswith("\\") and i + 1 < len(physical):
            i += 1
            line = line[:-1] + physical[i]
        i += 1
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line:
            continue
        at = f"{where}: requirements_file {rel}:{number}: {line!r}"
        if line.startswith("--"):
            option = re.split(r"[=\s]", line, maxsplit=1)[0]
            value = line[len(option):].lstrip(" \t=")
        elif line.startswith("-"):
            option, value = line[:2], line[2:].lstrip(" \t=")
        else:
            option, value = "", line
        if option in ("-r", "--requirement", "-c", "--constraint"):
            raise ImageError(f"{at} reads another file, which is not copied into the image; put that file's lines "
                             f"into {rel} in its place, or point requirements_file at a file that includes no other.")
        if option in ("-e", "--editable"):
            raise ImageError(f"{at} is an editable install, which the image cannot make from a requirements file "
                             "shipped alone; list the package as name==version or a URL instead (the project's own "
                             "code reaches steps through the image setting `code`).")
        if option in ("-f", "--find-links"):
            if not _URL.match(value):
                raise ImageError(f"{at} points pip at a folder on this machine, which is not copied into the image; "
                                 "use an http(s) URL, or set an index with build_args PIP_INDEX_URL.")
            continue
        if option:
            if option not in _SAFE_OPTIONS:
                raise ImageError(f"{at} is a pip option stackhop does not ship in a requirements_file; keep only "
                                 f"requirements and {', '.join(_SAFE_OPTIONS[:5])} lines there.")
            continue
        target = line.split(" @ ", 1)[1].strip() if " @ " in line else line
        if _LOCAL.match(target):
            raise ImageError(f"{at} installs from a path on this machine, which is not in the image; list the package "
                             "as name==version or a URL instead (the project's own code reaches steps through the "
                             "image setting `code`).")
        out.append(line)
    return out


def _installed_pins(names: tuple[str, ...]) -> list[str]:
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return pins


def _stackhop_files() -> list[tuple[str, bytes]]:
    import stackhop

    root = Path(stackhop.__file__).resolve().parent
    out = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".json", ".typed") and "__pycache__" not in path.parts:
            out.append((f"stackhop/{path.relative_to(root).as_posix()}", path.read_bytes()))
    return out


def _revalidated(settings: ImageSettings, where: str) -> ImageSettings:
    """Settings made with model_construct or model_copy skipped validation; nothing unchecked is rendered."""
    data = settings.model_dump()
    try:
        return ImageSettings.model_validate(data)
    except pydantic.ValidationError as exc:
        from stackhop.core.ir_build import describe_pydantic_error

        raise ImageError(f"{where}: image settings {describe_pydantic_error(exc, data)}") from None


def _install(python: str, installer: str, requirements: str) -> list[list[str]]:
    pip = [python, "-m", "pip", "install", "--no-cache-dir"]
    if installer == "pip":
        return [[*pip, "--no-input", "-r", requirements]]
    return [[*pip, "uv"], [python, "-m", "uv", "pip", "install", "--system", "--no-cache", "-r", requirements]]


def render(settings: ImageSettings, *, project: Path, where: str, artifact_scheme: str = "file",
           code_root: Path | None = None, reproducible: bool = False) -> Rendered:
    """The Dockerfile and context for `settings`; `where` names the pipeline or step in errors."""
    settings = _revalidated(settings, where)
    if settings.dockerfile:
        return _custom(settings, project, where)
    parent = settings.parent_image or DEFAULT_PARENT
    if settings.apt_packages and any(word in parent.lower() for word in _NON_DEBIAN):
        raise ImageError(f"{where}: apt_packages need a Debian-based parent image, and {parent!r} is not one; "
                         "use a Debian-based parent or drop apt_packages.")
    if settings.code == "git" and "git" not in settings.apt_packages:  # steps clone their commit at start
        settings = settings.model_copy(update={"apt_packages": (*settings.apt_packages, "git")})
        if any(word in parent.lower() for word in _NON_DEBIAN):
            raise ImageError(f"{where}: code 'git' needs git in the image, installed with apt, and {parent!r} is not "
                             "Debian-based; use a Debian-based parent or code 'image'.")
    python = settings.python or "python"
    installer = settings.installer or "pip"
    context: dict[str, bytes] = {}
    lines = ["# syntax=docker/dockerfile:1", "# Rendered by stackhop; the tag is this file's and the context's sha256.",
             f"FROM {parent}", "USER 0"]
    for key, value in sorted(settings.build_args.items()):
        lines.append(f"ARG {key}={quoting.word(value, f'build argument {key!r}')}")
    if settings.apt_packages:
        lines.append(quoting.run(["apt-get", "update"],
                                 ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
                                  "--no-install-recommends", *sorted(settings.apt_packages)],
                                 "rm -rf /var/lib/apt/lists/*"))
    env = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": f"{CODE_DIR}:{STACKHOP_HOME}", **settings.environment}
    lines.append("ENV " + " ".join(f"{k}={quoting.word(v, f'environment variable {k!r}')}" for k, v in sorted(env.items())))
    warnings = []
    requirements = list(settings.requirements)
    if settings.requirements_file:
        data = _read(project, settings.requirements_file, "requirements_file", where)
        requirements_from_file = _requirement_lines(_text(data, settings.requirements_file, "requirements_file", where),
                                                    settings.requirements_file, where)
        context["requirements/project.txt"] = data
        lines += ["COPY requirements/project.txt /tmp/stackhop-req/project.txt",
                  quoting.run(*_install(python, installer, "/tmp/stackhop-req/project.txt"))]
    else:
        requirements_from_file = []
    if requirements:
        context["requirements/step.txt"] = ("\n".join(requirements) + "\n").encode()
        lines += ["COPY requirements/step.txt /tmp/stackhop-req/step.txt",
                  quoting.run(*_install(python, installer, "/tmp/stackhop-req/step.txt"))]
    loose = [r for r in requirements_from_file + requirements if not _PINNED.match(r)]
    if reproducible and loose:
        warnings.append(f"{where}: requirement(s) {', '.join(loose)} are not pinned with ==, so rebuilding this image "
                        "can install different versions; pin them.")
    deps = _installed_pins(_CORE_DEPS + _STORE_DEPS.get(artifact_scheme, ()))
    context["stackhop/requirements.txt"] = ("\n".join(deps) + "\n").encode()
    for rel, data in _stackhop_files():
        context[f"stackhop/src/{rel}"] = data
    lines += [f"COPY stackhop/requirements.txt {STACKHOP_HOME}/requirements.txt",
              quoting.run(*_install(python, installer, f"{STACKHOP_HOME}/requirements.txt")),
              f"COPY stackhop/src/ {STACKHOP_HOME}/"]
    for dest, src in sorted(settings.extra_files.items()):
        name = "files/" + hashlib.sha256(dest.encode()).hexdigest()[:16]
        context[name] = _read(project, src, "extra file", where)
        lines.append(quoting.copy(name, dest))
    if (settings.code or "artifact_store") == "image":
        if code_root is None:
            raise ImageError(f"{where}: code 'image' needs the pipeline's source folder; run from a pipeline file.")
        from stackhop.core.code_archive import source_files

        for path in source_files(code_root):
            context[f"code/{path.relative_to(code_root).as_posix()}"] = path.read_bytes()
        lines.append(f"COPY code/ {CODE_DIR}/")
    lines += [f"WORKDIR {CODE_DIR}", f"USER {settings.user or DEFAULT_USER}"]
    dockerfile = "\n".join(lines) + "\n"
    items = tuple(sorted(context.items()))
    return Rendered(dockerfile, items, _key(dockerfile, items, settings), tuple(warnings))


def _custom(settings: ImageSettings, project: Path, where: str) -> Rendered:
    """Your own Dockerfile: used as written, its context files hashed into the tag."""
    assert settings.dockerfile is not None
    text = _text(_read(project, settings.dockerfile, "dockerfile", where), settings.dockerfile, "dockerfile", where)
    context_dir = (project / (settings.build_context or str(Path(settings.dockerfile).parent))).resolve()
    if not context_dir.is_relative_to(project.resolve()) or not context_dir.is_dir():
        raise ImageError(f"{where}: build_context {str(context_dir)!r} must be a folder inside the project.")
    dockerfile_path = (project / settings.dockerfile).resolve()
    if not dockerfile_path.is_relative_to(context_dir):
        raise ImageError(f"{where}: dockerfile {settings.dockerfile!r} is outside its build context "
                         f"{str(context_dir)!r}; move it in or widen build_context.")
    from stackhop.core.code_archive import source_files

    items = tuple((p.relative_to(context_dir).as_posix(), p.read_bytes()) for p in source_files(context_dir)
                  if p != dockerfile_path)
    return Rendered(text, items, _key(text, items, settings))


def _key(dockerfile: str, context: tuple[tuple[str, bytes], ...], settings: ImageSettings) -> str:
    h = hashlib.sha256()
    h.update(dockerfile.encode() + b"\0")
    for rel, data in context:
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    h.update(json.dumps({"platform": settings.platform, "args": settings.build_args}, sort_keys=True).encode())
    return h.hexdigest()
