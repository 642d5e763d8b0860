"""A release: one pipeline, traced once, with everything needed to run it on any stack later.

The manifest holds the IR itself (so promotion never re-traces Python), the code archive's
digest, the image each step resolved to on the source stack, and the compiled document for
every stack in the promotion order with its digest. Its id is the hash of that content, so
releasing the same thing twice gives the same id; who released it, when and from which commit
are recorded beside the content, not in it. Manifests live in `.stackhop/releases/` and in the
source stack's artifact store.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from stackhop.core.canonical import canonical_json
from stackhop.core.stack import LoadedConfig, Stack, load_config, load_stack
from stackhop.errors import StackhopError

RELEASE_DIR = "_stackhop/releases"


class ReleaseError(StackhopError):
    """A release cannot be made, found or read."""


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def local_dir(config: LoadedConfig) -> Path:
    return Path(os.environ.get("STACKHOP_HOME") or config.project_dir / ".stackhop") / "releases"


def create_release(pipeline: Any, stack_name: str | None, config: LoadedConfig | None = None) -> dict[str, Any]:
    from stackhop.core.api import _prepare, compile, needs_source_tree, to_ir
    from stackhop.core.artifacts import ArtifactStore
    from stackhop.core.code_archive import upload

    config = config or load_config()
    source = load_stack(stack_name, config=config)
    ir, root = to_ir(pipeline)
    effective, *_ = _prepare(ir, root, source, config)
    code = None
    if root is not None and needs_source_tree(ir):
        uri, digest = upload(ArtifactStore(source.artifact_root), root)
        code = {"archive_uri": uri, "digest": digest}
    order = config.file.promotion or [source.name]
    if source.name not in order:
        raise ReleaseError(f"stack {source.name!r} is not in the promotion order {order}; release from one of them "
                           "or add it to `promotion:` in stackhop.yaml.")
    compiled: dict[str, Any] = {}
    documents: dict[str, dict[str, bytes]] = {}
    for name in order:
        try:
            doc = compile(ir, name, config=config)
        except StackhopError as exc:  # e.g. prod requires digests the release has not got yet: say so, per stack
            compiled[name] = {"error": str(exc)}
            continue
        compiled[name] = {"adapter": doc.adapter, "digest": doc.digest(), "files": sorted(doc.files)}
        documents[name] = doc.files
    content = {
        "pipeline": ir.name, "ir_digest": ir.digest(), "ir": json.loads(ir.to_json()), "code": code,
        "built": _built_references(ir, source, root),
        "source_stack": source.name, "promotion": order,
        "images": {s.name: s.settings.image for s in effective.steps if s.settings.image},
        "parameters": {p.name: p.default for p in ir.parameters if p.has_default},
        "compiled": compiled,
    }
    digest = hashlib.sha256(canonical_json(content).encode()).hexdigest()
    release_id = f"r-{digest[:16]}"
    manifest = {"release_id": release_id, "digest": f"sha256:{digest}", "content": content,
                "created": {"by": os.environ.get("GITHUB_ACTOR") or getpass.getuser(), "at": time.time(),
                            "git_commit": os.environ.get("GITHUB_SHA") or _git("rev-parse", "HEAD"),
                            "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
                            "stackhop": _version()}}
    store = ArtifactStore(source.artifact_root)
    base = f"{store.root}/{RELEASE_DIR}/{release_id}"
    for name, files in documents.items():
        for file_name, data in files.items():
            store.write_bytes(f"{base}/compiled/{name}/{file_name}", data)
    store.write_json(f"{base}/manifest.json", manifest)
    manifest["location"] = f"{base}/manifest.json"
    path = local_dir(config) / f"{release_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def published(config: LoadedConfig, release_id: str) -> tuple[str, dict[str, Any]] | None:
    """A release manifest from the artifact store of a stack in the promotion order (a CI job on a fresh runner)."""
    from stackhop.core.artifacts import ArtifactStore

    for name in config.file.promotion or list(config.file.stacks):
        try:
            root = load_stack(name, config=config).artifact_root
            uri = f"{ArtifactStore(root).root}/{RELEASE_DIR}/{release_id}/manifest.json"
            store = ArtifactStore.for_uri(uri)
            if store.exists(uri):
                return uri, store.read_json(uri)
        except StackhopError:
            continue
    return None


def publish(manifest: dict[str, Any], artifact_root: str) -> str:
    from stackhop.core.artifacts import ArtifactStore

    store = ArtifactStore(artifact_root)
    uri = f"{store.root}/{RELEASE_DIR}/{manifest['release_id']}/manifest.json"
    if not store.exists(uri):
        store.write_json(uri, {k: v for k, v in manifest.items() if k != "location"})
    return uri


def _built_references(ir: Any, source: Stack, root: Path | None) -> dict[str, str]:
    """step -> the content-hash reference its image was built as on the source stack (what promotion may carry)."""
    from stackhop.core.stack import apply_stack

    effective = apply_stack(ir, source)
    if not source.config.images.registry or not any(s.settings.image_build for s in effective.steps):
        return {}
    from stackhop.images.plan import plan_images

    return {step: spec.reference for step, spec in plan_images(effective, source, root).step_build.items()}


def load_release(release_id: str, config: LoadedConfig | None = None) -> dict[str, Any]:
    config = config or load_config()
    directory = local_dir(config)
    path = directory / f"{release_id}.json"
    if path.exists():
        where, manifest = str(path), json.loads(path.read_text())
    else:
        matches = sorted(directory.glob(f"{release_id}*.json")) if directory.exists() else []
        found = published(config, release_id) if not matches else None
        if len(matches) == 1:
            where, manifest = str(matches[0]), json.loads(matches[0].read_text())
        elif found is not None:
            where, manifest = found
        else:
            raise ReleaseError(f"no release {release_id!r} in {directory} or in the artifact stores of the promotion "
                               "order; make one with `stackhop release FILE --stack S`.")
    path = where  # type: ignore[assignment]
    content = manifest["content"]
    if "sha256:" + hashlib.sha256(canonical_json(content).encode()).hexdigest() != manifest["digest"]:
        raise ReleaseError(f"release {manifest['release_id']} at {path} does not match its digest; it was edited, "
                           "so make a new release.")
    return manifest


def _version() -> str:
    import stackhop

    return stackhop.__version__
