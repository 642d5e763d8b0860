"""A run store written by an earlier stackhop opens with this one: the columns it lacks are added, its runs read."""

from __future__ import annotations

import json
import sqlite3

from stackhop.core.store import RunStore

EARLIER = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, stack TEXT NOT NULL, adapter TEXT NOT NULL,
    status TEXT NOT NULL, created_at REAL NOT NULL, finished_at REAL, parameters TEXT NOT NULL,
    backend_ref TEXT NOT NULL, ir_digest TEXT NOT NULL, artifact_root TEXT NOT NULL,
    stack_source TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '', steps TEXT NOT NULL DEFAULT '{}'
);
"""


def test_a_store_from_before_outputs_and_resume_opens_and_reads_its_runs(tmp_path) -> None:
    path = tmp_path / "runs.db"
    with sqlite3.connect(path) as db:
        db.executescript(EARLIER)
        db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   ("r1", "train", "dev", "local", "SUCCEEDED", 1.0, 2.0, json.dumps({"n": 1}), "{}", "sha256:x",
                    "file:///tmp/a", "stackhop.yaml", "", "{}"))

    record = RunStore(path).get("r1")

    assert (record.parameters, record.outputs, record.origin_run_id, record.source) == ({"n": 1}, {}, "", {})
    assert [r.run_id for r in RunStore(path).list()] == ["r1"], "and it opens again, the columns there already"
