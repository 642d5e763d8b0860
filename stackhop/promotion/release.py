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
from stackhop.core.store import RunStore
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


def relied_on(store: RunStore, config: LoadedConfig) -> dict[str, str]:
    """Run id -> the release or promotion that still needs it: the run a promotion's gate read or that a promotion
    started, and each release's latest successful run on every stack it reached (its next gate reads that)."""
    from stackhop.promotion.gates import source_run

    found: dict[str, str] = {}
    reached: dict[str, set[str]] = {}
    for p in store.all_promotions():
        for gate in p.get("gates", []):
            if gate.get("gate") == "successful_run" and isinstance(gate.get("value"), str):
                found.setdefault(gate["value"], f"promotion of release {p['release_id']} to {p['to']} read it")
        if p.get("run_id"):
            found.setdefault(p["run_id"], f"promotion of release {p['release_id']} to {p['to']} started it")
        if p.get("result") == "promoted":
            reached.setdefault(p["release_id"], set()).add(p["to"])
    folder = local_dir(config)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            manifest = json.loads(path.read_text())
            content, release = manifest["content"], manifest["release_id"]
            digest, source = content["ir_digest"], content.get("source_stack", "")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        for stack in sorted({source, *reached.get(release, set())}):
            latest = source_run(store, digest, stack)
            if latest is not None:
                found.setdefault(latest.run_id, f"it is release {release}'s latest successful run on stack "
                                                f"{stack!r}, which its next promotion's gate reads")
    return found
