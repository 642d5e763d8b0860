"""The grammar of every image setting that is written into a rendered Dockerfile.

A Dockerfile is line-based and its RUN lines go to a shell, so a newline in a user name or a
`;` in a package name would become an instruction or a command of its own. Each setting is
checked against the grammar of what it names (OCI references, user names, variable names,
Debian package names, pip requirements, paths) when the settings are loaded, so a hostile or
mistyped value fails in stackhop.yaml or the pipeline, not inside a build. Values that may
hold anything (environment and build-argument values) are only refused control characters,
which no Dockerfile word can carry; the renderer quotes them.

Each check raises ValueError with a clause (no final period) that pydantic places after the
setting's location, and returns the value unchanged otherwise.
"""

from __future__ import annotations

import posixpath
import re

from stackhop.core.image_reference import check_repository_prefix, parse_reference
from stackhop.errors import ImageError

_NAME = r"[A-Za-z_][A-Za-z0-9_.-]{0,31}"
_ID = r"[0-9]{1,10}"
_USER = re.compile(rf"(?:{_NAME}|{_ID})(?::(?:{_NAME}|{_ID}))?")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEBIAN_NAME = r"[a-z0-9][a-z0-9+.-]+"
_DEBIAN_VERSION = r"(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*"
_APT = re.compile(rf"{_DEBIAN_NAME}(?::[a-z0-9][a-z0-9-]*)?(?:={_DEBIAN_VERSION}|/[a-z0-9][a-z0-9.+-]*)?")
_PYTHON = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*|(?:/[A-Za-z0-9_.+-]+)+")
_IMAGE_SEGMENT = re.compile(r"[A-Za-z0-9._+@%=,~-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def reference(value: str) -> str:
    try:
        parse_reference(value)
    except ImageError as exc:
        raise ValueError(str(exc).rstrip(".")) from None
    return value


def repository_prefix(value: str) -> str:
    """Where images are pushed (`images.registry`): host[:port][/path], no scheme, tag or digest."""
    try:
        check_repository_prefix(value)
    except ImageError as exc:
        raise ValueError(getattr(exc, "why", str(exc).rstrip("."))) from None
    return value


def registries(values: dict[str, str]) -> dict[str, str]:
    """`images.registries`: a short image name (as written in `image=`) -> the full repository it stands for."""
    for short, target in values.items():
        try:
            ref = parse_reference(short)
        except ImageError as exc:
            raise ValueError(f"the short name {short!r} is not an image name ({getattr(exc, 'why', exc)}); write it "
                             "as it appears in image=, without a tag, e.g. train") from None
        if ref.tag is not None or ref.digest is not None:
            raise ValueError(f"the short name {short!r} has a tag or digest; write the name alone, e.g. "
                             f"{short.split('@')[0].rsplit(':', 1)[0]!r}, and the tag is kept from each image=")
        try:
            check_repository_prefix(target)
        except ImageError as exc:
            raise ValueError(f"{short}: {getattr(exc, 'why', exc)}") from None
    return values


def user(value: str) -> str:
    if not _USER.fullmatch(value):
        raise ValueError(f"{value!r} is not a user; write a user name (letters, digits, '_', '.', '-', not starting "
                         "with a digit or '-') or a uid, optionally followed by ':group' or ':gid', e.g. app or 10001:10001")
    return value


def apt_package(value: str) -> str:
    if not _APT.fullmatch(value):
        raise ValueError(f"{value!r} is not a Debian package name; write name[:arch][=version] as Debian policy "
                         "spells them (lowercase letters, digits, '+', '-', '.'), e.g. libgomp1 or curl=7.88.1-10")
    return value


def requirement(value: str) -> str:
    from packaging.requirements import InvalidRequirement, Requirement

    if _CONTROL.search(value):
        raise ValueError(f"{value!r} contains a newline or another control character; write one requirement per entry")
    if value.lstrip().startswith("-"):
        raise ValueError(f"{value!r} is a pip option, not a requirement; list only requirements here, and set an index "
                         "with build_args PIP_INDEX_URL or in a requirements_file")
    try:
        Requirement(value)
    except InvalidRequirement as exc:
        why = str(exc).splitlines()[0].rstrip(".") if str(exc) else "it does not parse"
        raise ValueError(f"{value!r} is not a pip requirement ({why}); write one requirement per entry, "
                         "e.g. numpy==2.1.0") from None
    return value


def python_executable(value: str) -> str:
    if not _PYTHON.fullmatch(value):
        raise ValueError(f"{value!r} is not a Python executable; write a command name like python3.11 or an absolute "
                         "path like /usr/local/bin/python3 (letters, digits, '_', '.', '+', '-')")
    return value


def project_path(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError(f"the path {value!r} contains a newline or another control character; fix the path")
    return value


def variables(values: dict[str, str], what: str) -> dict[str, str]:
    """Names as POSIX shells and Dockerfiles read them; values anything a Dockerfile word can carry."""
    for key, value in values.items():
        if not _VARIABLE.fullmatch(key):
            raise ValueError(f"{key!r} is not {what} name; use letters, digits and '_', not starting with a digit, "
                             "e.g. OMP_NUM_THREADS")
        if _CONTROL.search(value):
            raise ValueError(f"the value of {key!r} contains a newline or another control character, which a "
                             "Dockerfile cannot carry; set multi-line values in the step's env, or ship them as extra_files")
    return values


def image_path(value: str) -> str:
    """A destination inside the image: absolute, and only characters COPY takes literally."""
    body = value[1:].removesuffix("/")
    if (not value.startswith("/") or not body
            or any(s in (".", "..") or not _IMAGE_SEGMENT.fullmatch(s) for s in body.split("/"))):
        raise ValueError(f"the destination {value!r} is not an absolute path in the image made of letters, digits "
                         "and '._-+@%=,~' between '/'s; write it like /etc/app/config.toml")
    return value


def source_path(value: str, dest: str) -> str:
    """A file in the project: relative, and never leading out of it."""
    if _CONTROL.search(value) or value.startswith("/") or not value.strip():
        raise ValueError(f"the source {value!r} for {dest!r} is not a relative path in the project; write it "
                         "relative to the folder holding stackhop.yaml, e.g. config/app.toml")
    if posixpath.normpath(value.replace("\\", "/")).split("/")[0] == "..":
        raise ValueError(f"the source {value!r} for {dest!r} leads out of the project; keep extra files inside it")
    return value


def extra_files(values: dict[str, str]) -> dict[str, str]:
    for dest, src in values.items():
        image_path(dest)
        source_path(src, dest)
    return values
