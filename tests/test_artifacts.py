"""The artifact store, the code archive and the run store."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

import stackhop
from stackhop import RunStatus
from stackhop.core.artifacts import ArtifactStore, content_digest, normalize_root, safe_segment
from stackhop.core.code_archive import build_archive, extract, upload
from stackhop.core.store import RunRecord, RunStore
from stackhop.errors import ArtifactError, StackhopError


@pytest.mark.parametrize("name", ["..", "../etc", "a/b", "/abs", "", "_hidden", "x" * 200, "a\\b", "sp ace"])
def test_names_that_could_escape_their_prefix_are_refused(name: str) -> None:
    with pytest.raises(ArtifactError, match="cannot be used in an artifact path"):
        safe_segment(name, "output name")


def test_artifact_uris_follow_root_pipeline_run_step_output(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    assert store.output_uri("train-pipe", "r1", "train", "model") == f"{tmp_path.as_uri()}/train-pipe/r1/train/model"
    assert store.output_uri("p", "r1", "square", "output", (2, 0)) == f"{tmp_path.as_uri()}/p/r1/square/2/0/output"
    with pytest.raises(ArtifactError):
        store.output_uri("p", "../other-run", "s", "o")


def test_relative_roots_resolve_against_the_project_dir(tmp_path: Path) -> None:
    assert normalize_root(".stackhop/artifacts", tmp_path) == (tmp_path / ".stackhop/artifacts").as_uri()
    assert normalize_root("s3://bucket/prefix/") == "s3://bucket/prefix"


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    uri = store.run_meta("p", "r", "state.json")
    store.write_json(uri, {"a": 1})
    store.write_json(uri, {"a": 2})
    assert store.read_json(uri) == {"a": 2}
    assert [p.name for p in Path(store.local_path(uri)).parent.iterdir()] == ["state.json"]


def test_committing_a_directory_replaces_it_whole(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path))
    uri = store.output_uri("p", "r", "s", "model")
    for content in ("old", "new"):
        staged = store.staging_path(uri)
        os.makedirs(staged)
        Path(staged, "weights.txt").write_text(content)
        store.commit(staged, uri)
    target = Path(store.local_path(uri))
    assert (target / "weights.txt").read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]


def test_content_digest_covers_file_names_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("1")
    first = content_digest(str(tmp_path / "a"))
    (tmp_path / "a" / "x.txt").rename(tmp_path / "a" / "y.txt")
    assert content_digest(str(tmp_path / "a")) != first


def test_the_fsspec_path_reads_and_writes_like_an_object_store(tmp_path: Path) -> None:
    store = ArtifactStore(f"memory://bucket-{os.getpid()}")
    assert not store.is_local
    uri = store.output_uri("p", "r", "s", "data")
    staged = store.staging_path(uri)
    Path(staged).write_text("payload")
    store.commit(staged, uri)
    assert store.read_bytes(uri) == b"payload"
    store.write_json(store.step_meta("p", "r", "s", (), "outputs.json"), {"ok": True})
    found = store.list_json(store.run_prefix("p", "r"), "outputs.json")
    assert [data for _, data in found] == [{"ok": True}]
    with store.local_copy(uri) as path:
        assert Path(path).read_text() == "payload"


def test_a_whole_run_works_through_fsspec_as_remote_roots_will(project: Path, write_pipeline, write_config) -> None:
    write_config(f"""
        default_stack: viafsspec
        stacks:
          viafsspec:
            adapter: local
            artifact_root: local://{project}/remote-root
    """)
    module = write_pipeline("""
        from stackhop import step, pipeline, Output, Input, Dataset, Metrics

        @step
        def make(data: Output[Dataset], metrics: Output[Metrics]) -> None:
            open(data.path, "w").write("abc")
            metrics.log_metric("rows", 3)

        @step
        def size(data: Input[Dataset]) -> int:
            print("sizing")
            return len(open(data.path).read())

        @pipeline
        def remote_like():
            size(data=make().outputs["data"])
    """)
    handle = stackhop.run(module.remote_like)
    assert handle.status == RunStatus.SUCCEEDED, handle.state().message
    assert handle.artifact("size", "output").load() == 3
    assert handle.artifact("make", "data").uri.startswith("local://")
    assert handle.artifact("make", "data").load() == b"abc"
    assert "sizing" in handle.logs("size")
    assert (project / "remote-root" / "remote-like" / handle.run_id / "make" / "data").read_text() == "abc"


# ------------------------------------------------------------------------- code archive


def _tree(root: Path) -> None:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "steps.py").write_text("X = 1\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")


def test_the_code_archive_is_reproducible_and_skips_caches_and_vcs(tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    data1, digest1 = build_archive(tmp_path / "src")
    os.utime(tmp_path / "src" / "pkg" / "steps.py", (0, 12345))
    data2, digest2 = build_archive(tmp_path / "src")
    assert data1 == data2 and digest1 == digest2
    import io
    import tarfile

    names = tarfile.open(fileobj=io.BytesIO(data1)).getnames()
    assert names == ["pkg/__init__.py", "pkg/steps.py"]
    (tmp_path / "src" / "pkg" / "steps.py").write_text("X = 2\n")
    assert build_archive(tmp_path / "src")[1] != digest1


def test_the_archive_is_uploaded_once_and_verified_when_extracted(tmp_path: Path) -> None:
    _tree(tmp_path / "src")
    store = ArtifactStore(str(tmp_path / "artifacts"))
    uri, digest = upload(store, tmp_path / "src")
    assert upload(store, tmp_path / "src") == (uri, digest)
    target = extract(uri, digest, str(tmp_path / "cache"))
    assert Path(target, "pkg", "steps.py").read_text() == "X = 1\n"
    Path(store.local_path(uri)).write_bytes(b"tampered")
    with pytest.raises(StackhopError, match="expected"):
        extract(uri, digest, str(tmp_path / "other-cache"))


# ------------------------------------------------------------------------- run store


def _record(run_id: str, created: float) -> RunRecord:
    return RunRecord(run_id=run_id, pipeline="p", stack="local", adapter="local", status="PENDING", created_at=created,
                     finished_at=None, parameters={"a": 1}, backend_ref={}, ir_digest="sha256:x",
                     artifact_root="file:///tmp", stack_source="built-in", message="", steps={})


def _writer(path: str, worker: int) -> None:
    store = RunStore(path)
    for i in range(25):
        run_id = f"w{worker}-{i}"
        store.add(_record(run_id, worker * 100 + i))
        store.set_status(run_id, "SUCCEEDED", finished=True)


def test_the_run_store_survives_concurrent_writers(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.db")
    RunStore(path)
    procs = [multiprocessing.get_context("spawn").Process(target=_writer, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    records = RunStore(path).list(limit=1000)
    assert len(records) == 100 and all(r.status == "SUCCEEDED" and r.finished_at for r in records)


def test_runs_are_listed_newest_first_and_found_by_prefix(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    store.add(_record("20260101-aaa", 1.0))
    store.add(_record("20260102-bbb", 2.0))
    assert [r.run_id for r in store.list()] == ["20260102-bbb", "20260101-aaa"]
    assert store.get("20260101").run_id == "20260101-aaa"
    with pytest.raises(StackhopError, match="stackhop runs list"):
        store.get("2026")
    assert json.loads(json.dumps(store.get("20260102-bbb").to_dict()))["parameters"] == {"a": 1}
