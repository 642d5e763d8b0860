"""Image references, parsed and normalised the way `docker pull` reads them.

`python:3.11` and `docker.io/library/python:3.11` must compare equal and resolve to the same
registry, or a lock file, a digest pin and a cache key would disagree about one image. The
rules: the first path segment is a registry host when it contains "." or ":" or is
"localhost" (and something follows it); otherwise the image is on Docker Hub, whose
single-segment names live under "library/". Docker Hub is shown as `docker.io` (what people
write and what credentials are filed under) but its API answers at `registry-1.docker.io`.

It lives in core because the IR and stack config refuse malformed references when they are
written, before any builder or registry is involved; `stackhop.images` re-exports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from stackhop.errors import ImageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io"})

_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# Only the registered algorithms: an unknown one could never be verified when pulled.
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")
_MAX_NAME = 255
_FORM = "write it as [registry/]repository[:tag][@sha256:<64 hex digits>]"


def is_digest(value: str) -> bool:
    """True for a content digest stackhop can verify ("sha256:<64 hex>" or "sha512:<128 hex>")."""
    return _DIGEST.fullmatch(value) is not None


def is_loopback(host: str) -> bool:
    """True when a registry host (with or without port) is this machine, where plain http is the norm."""
    if host.startswith("["):
        name = host[1:host.find("]")] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name == "localhost" or name == "::1" or name.startswith("127.")


@dataclass(frozen=True)
class ImageRef:
    """A parsed, normalised reference; `str()` gives the canonical form, which parses back to itself."""

    registry: str
    """Display host, e.g. "docker.io", "ghcr.io", "127.0.0.1:5000"."""
    repository: str
    """Path on that registry, e.g. "library/python", "ml/train"."""
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """Registry and repository, without tag or digest: what `docker push` calls the name."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_registry(self) -> str:
        """The host that answers the distribution API (Docker Hub's differs from its display name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def reference(self) -> str:
        """What goes after /manifests/ in the API: the digest when pinned, else the tag (default latest)."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> "ImageRef":
        """The same image pinned by `digest`; the tag is dropped because a digest alone names one manifest."""
        if not is_digest(digest):
            raise _bad(f"{self.name}@{digest}", f"the digest {digest!r} is not sha256:<64 hex> or sha512:<128 hex>")
        return replace(self, tag=None, digest=digest)

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _bad(ref: str, why: str) -> ImageError:
    error = ImageError(f"Image reference {ref!r} is not valid: {why}; {_FORM}.")
    error.why = why  # type: ignore[attr-defined]  # the clause alone, for callers that name the setting themselves
    return error


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(value: str) -> str | None:
    """"https" for "https://registry.example.com/ml": a URL where a reference (which has no scheme) belongs."""
    match = _SCHEME.match(value)
    return match.group(1) if match else None


def parse_reference(ref: str) -> ImageRef:
    """Parse and normalise `ref`; raises ImageError (one sentence) when it is malformed."""
    if not ref or ref != ref.strip() or any(c.isspace() for c in ref):
        raise _bad(ref, "it is empty or contains whitespace")
    scheme = scheme_of(ref)
    if scheme:
        raise _bad(ref, f"a reference has no scheme, so drop the {scheme}://")
    name, at, digest = ref.partition("@")
    if at and not is_digest(digest):
        raise _bad(ref, f"the digest {digest!r} is not sha256:<64 hex> or sha512:<128 hex>")
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise _bad(ref, f"the tag {tag!r} must be 1-128 of letters, digits, '_', '.', '-' and not start with '.' or '-'")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        registry, path = first, rest
        if not _HOST.fullmatch(registry):
            raise _bad(ref, f"the registry host {registry!r} is not a host name with an optional port")
        if registry in _HUB_ALIASES:
            registry = DOCKER_HUB
    else:
        registry, path = DOCKER_HUB, name
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if path != path.lower():
        raise _bad(ref, f"the repository {path!r} must be lowercase")
    for component in path.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise _bad(ref, f"the repository {path!r} must be '/'-separated lowercase words joined by '.', '_', '__' or '-'")
    if len(registry) + 1 + len(path) > _MAX_NAME:
        raise _bad(ref, f"the name is longer than {_MAX_NAME} characters")
    return ImageRef(registry=registry, repository=path, tag=tag, digest=digest or None)


def check_repository_prefix(prefix: str) -> None:
    """A place to push to, `host[:port][/path]` or a Docker Hub namespace: no scheme, tag or digest.

    Raises ImageError whose `why` is a clause saying what is wrong and how to write it."""
    how = ("write a registry host with an optional port and path, e.g. registry.example.com/ml or "
           "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml")
    scheme = scheme_of(prefix)
    if scheme:
        why = f"{prefix!r} is a URL, and a repository has no scheme; drop the {scheme}:// and write {prefix[len(scheme) + 3:]!r}"
    elif not prefix or any(c.isspace() for c in prefix):
        why = f"{prefix!r} is empty or contains whitespace; {how}"
    elif "@" in prefix:
        why = f"{prefix!r} has a digest, and images are pushed to a repository, not a digest; drop the @... and {how}"
    else:
        try:
            parse_reference(prefix.rstrip("/") + "/x")
            if not prefix.startswith("/") and "//" not in prefix:
                return
        except ImageError:
            pass
        try:
            ref = parse_reference(prefix.rstrip("/"))
            problem = f"it ends in the tag {ref.tag!r}, and the tag is stackhop's to choose" if ref.tag else \
                "it has an empty path segment"
        except ImageError as exc:
            problem = getattr(exc, "why", str(exc))
        why = f"{prefix!r} is not a repository ({problem}); {how}"
    error = ImageError(f"{why[0].upper()}{why[1:]}.")
    error.why = why  # type: ignore[attr-defined]
    raise error
