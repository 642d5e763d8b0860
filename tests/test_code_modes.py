"""How step code reaches a remote container: an archive in the artifact store, the image, or a git commit.

The git mode is proven with real git: a repository with a bare `origin` on disk, a Vertex stack
emulated against the Cloud Storage emulator, and steps that import their code from a clone of
the exact commit the run recorded.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import stackhop
from stackhop.core.code_archive import extract
from stackhop.core.code_git import git_ref
from stackhop.core.runs import RunStatus
from stackhop.errors import StackhopError

PIPELINE = """
from stackhop import ImageSettings, pipeline, step

@step
def answer() -> int:
    return 42

@pipeline(image=ImageSettings(code="{mode}"))
def shipped():
    answer()
"""

STACK = """
stacks:
  vertex:
    adapter: vertex
    artifact_root: gs://ml-artifacts/code-modes
    images: {registry: "127.0.0.1:5000/ml"}
    settings: {project: p}
"""


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(project: Path, write_config) -> Path:
    write_config(STACK)
    origin = project.parent / f"{project.name}-origin.git"
    git("init", "--quiet", "--bare", str(origin), cwd=project)
    git("init", "--quiet", cwd=project)
    for key, value in (("user.email", "ci@example.com"), ("user.name", "CI")):
        git("config", key, value, cwd=project)
    (project / ".gitignore").write_text(".stackhop/\n.code-cache/\n")
    (project / "shipped.py").write_text(PIPELINE.format(mode="git"))
    git("add", "-A", cwd=project)
    git("commit", "--quiet", "-m", "pipeline", cwd=project)
    git("remote", "add", "origin", str(origin), cwd=project)
    git("push", "--quiet", "origin", "HEAD", cwd=project)
    return project


def test_a_git_ref_names_the_remote_and_the_clean_commit(repo: Path) -> None:
    uri, digest = git_ref(repo)
    assert uri.startswith("git+file://") and uri.endswith("-origin.git")
    assert digest == f"git:{git('rev-parse', 'HEAD', cwd=repo)}:"


def test_a_dirty_tree_or_a_missing_remote_is_refused_in_one_sentence(repo: Path) -> None:
    (repo / "shipped.py").write_text(PIPELINE.format(mode="git") + "\n# edited\n")
    with pytest.raises(StackhopError, match=r"has uncommitted changes; commit or stash them"):
        git_ref(repo)
    git("checkout", "--", "shipped.py", cwd=repo)
    git("remote", "remove", "origin", cwd=repo)
    with pytest.raises(StackhopError, match=r"has no 'origin' remote; add one the steps can clone from"):
        git_ref(repo)


def test_a_step_clones_the_recorded_commit_once(repo: Path, tmp_path: Path) -> None:
    uri, digest = git_ref(repo)
    first = Path(extract(uri, digest, str(tmp_path / "cache")))
    assert (first / "shipped.py").read_text() == PIPELINE.format(mode="git")
    (repo / "shipped.py").write_text("changed after the run started\n")
    assert Path(extract(uri, digest, str(tmp_path / "cache"))) == first
    assert (first / "shipped.py").read_text() == PIPELINE.format(mode="git")


def test_a_run_in_git_mode_imports_its_steps_from_the_clone(repo: Path, write_pipeline, gcs) -> None:
    module = write_pipeline((repo / "shipped.py").read_text(), name="shipped")
    handle = stackhop.run(module.shipped, "vertex", emulate=True)
    assert handle.status is RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("answer", "output").value == 42
    commit = git("rev-parse", "HEAD", cwd=repo)
    assert (repo / ".code-cache" / f"git-{commit}" / "shipped.py").exists()


def test_code_in_the_image_ships_no_archive(project: Path, write_config, write_pipeline) -> None:
    from stackhop.core.code_shipping import code_mode, code_ref
    from stackhop.core.plugins import adapter_class
    from stackhop.core.stack import load_stack

    write_config(STACK)
    module = write_pipeline(PIPELINE.format(mode="image"))
    stack = load_stack("vertex")
    adapter = adapter_class("vertex", where="t")(stack)
    from stackhop.core.stack import apply_stack

    assert code_mode(apply_stack(module.shipped.build(), stack), adapter) == "image"
    assert code_ref(project, stack, adapter, "image").archive_uri is None
