"""Where remote builders find a build context: a content-addressed object under the artifact root.

Remote builders (kaniko, CodeBuild, Cloud Build) run somewhere that cannot see this machine's
files, but can read the stack's object store. The context is uploaded once per content, to
`<artifact_root>/_stackhop/build-contexts/<sha256>.<suffix>`, so rebuilding the same image
(or building it from another machine) re-uses the object instead of uploading it again.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import TYPE_CHECKING, Callable
from urllib.parse import urlparse

from stackhop.images.errors import ImageError

if TYPE_CHECKING:
    from stackhop.core.stack import Stack
    from stackhop.images.spec import BuildSpec

CONTEXTS = "build-contexts"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def require_scheme(stack: "Stack", schemes: tuple[str, ...], builder: str, image: str) -> str:
    """The artifact root, or one sentence saying the builder cannot read from it."""
    root = stack.artifact_root
    scheme = urlparse(root).scheme
    if scheme not in schemes:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise ImageError(
            f"The {builder} builder cannot build image {image}: it reads the build context from {wanted}, "
            f"but stack {stack.name!r} has artifact_root {root!r}; set the stack's artifact_root to a {wanted} URI."
        )
    return root


def upload_context(stack: "Stack", data: bytes, suffix: str, log: Callable[[str], None]) -> str:
    """Upload `data` under its sha256 unless it is already there; returns its URI."""
    from stackhop.core.artifacts import ArtifactStore

    store = ArtifactStore(stack.artifact_root)
    uri = store.shared_meta(CONTEXTS, f"{hashlib.sha256(data).hexdigest()}.{suffix}")
    if store.exists(uri):
        log(f"build context already at {uri}")
    else:
        store.write_bytes(uri, data)
        log(f"uploaded build context ({len(data)} bytes) to {uri}")
    return uri


def split_bucket(uri: str) -> tuple[str, str]:
    """("bucket", "path/to/object") of an s3:// or gs:// URI."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def context_zip(spec: "BuildSpec") -> bytes:
    """The context as a reproducible zip (fixed times and modes), for services that only take zips.

    CodeBuild's S3 source must be a zip archive, not the tar.gz kaniko and Cloud Build read, so
    this holds the same entries as `BuildSpec.context_tar()` in that format.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for rel, data in (("Dockerfile", spec.dockerfile.encode()), *spec.context):
            info = zipfile.ZipInfo(rel, date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buf.getvalue()
