"""How a run's steps get the user's code: the source tree, a content-addressed archive, a git clone, or the image."""

from __future__ import annotations

from pathlib import Path

from stackhop.core.adapter import Adapter, CodeRef
from stackhop.core.artifacts import ArtifactStore
from stackhop.core.code_archive import upload
from stackhop.core.code_git import git_ref
from stackhop.core.ir import Pipeline
from stackhop.core.stack import Stack


def code_mode(ir: Pipeline, adapter: Adapter) -> str:
    """How code reaches remote steps: 'git' if any step's image asks for it, 'image' if every step's has it baked in.

    `ir` is the pipeline with the stack applied, before images are resolved to references."""
    if not adapter.uses_images:
        return "artifact_store"
    modes = [s.settings.image_build.code if s.settings.image_build else None for s in ir.steps]
    if "git" in modes:
        return "git"
    return "image" if modes and all(m == "image" for m in modes) else "artifact_store"


def needs_source_tree(ir: Pipeline) -> bool:
    """False when every Python step travels by value from a notebook or REPL and imports no project module.

    A script's steps get the tree like `stackhop run` gives it: their lines may read files beside them."""
    return any(s.python is not None and (not s.python.by_value or s.python.imports_project or s.python.script)
               for s in ir.steps)


def code_ref(root: Path | None, stack: Stack, adapter: Adapter, mode: str = "artifact_store",
              ir: Pipeline | None = None) -> CodeRef:
    if root is None or (ir is not None and not needs_source_tree(ir)):
        return CodeRef()
    if not adapter.wants_code_archive():
        return CodeRef(source_dir=str(root))
    if mode == "image":
        return CodeRef()
    if mode == "git":
        uri, digest = git_ref(root)
        return CodeRef(archive_uri=uri, digest=digest)
    uri, digest = upload(ArtifactStore(stack.artifact_root), root)
    return CodeRef(archive_uri=uri, digest=digest)
