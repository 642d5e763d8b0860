"""The local run store: every run on every stack, in one SQLite file (WAL mode).

Short-lived connections with a busy timeout make it safe for many runs (and their runner
processes) writing at once. The store only records; each backend stays the authority on a
run's live state, and `RunHandle.refresh()` writes back what it sees.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

from stackhop.errors import RunNotFoundError


def store_path(project_dir: Path) -> Path:
    """Where a project's run store lives: every stack of the project records its runs in the one file."""
    import os

    return Path(os.environ.get("STACKHOP_HOME") or project_dir / ".stackhop") / "runs.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id        TEXT PRIMARY KEY,
    pipeline      TEXT NOT NULL,
    stack         TEXT NOT NULL,
    adapter       TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    REAL NOT NULL,
    finished_at   REAL,
    parameters    TEXT NOT NULL,
    backend_ref   TEXT NOT NULL,
    ir_digest     TEXT NOT NULL,
    artifact_root TEXT NOT NULL,
    stack_source  TEXT NOT NULL DEFAULT '',
    message       TEXT NOT NULL DEFAULT '',
    steps         TEXT NOT NULL DEFAULT '{}',
    outputs       TEXT NOT NULL DEFAULT '{}',
    origin_run_id TEXT NOT NULL DEFAULT '',
    source        TEXT NOT NULL DEFAULT '{}',
    seen_at       REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
CREATE TABLE IF NOT EXISTS promotions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id  TEXT NOT NULL,
    pipeline    TEXT NOT NULL,
    from_stack  TEXT NOT NULL,
    to_stack    TEXT NOT NULL,
    at          REAL NOT NULL,
    result      TEXT NOT NULL,
    record      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS promotions_release ON promotions (release_id, at);
CREATE INDEX IF NOT EXISTS runs_pipeline ON runs (pipeline, created_at);
"""


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    pipeline: str
    stack: str
    adapter: str
    status: str
    created_at: float
    finished_at: float | None
    parameters: dict[str, Any]
    backend_ref: dict[str, Any]
    ir_digest: str
    artifact_root: str
    stack_source: str
    message: str
    steps: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    """The pipeline's outputs: name -> {"step", "output", "type"}, the step output each one is."""
    origin_run_id: str = ""
    """The run this one resumed, reusing its finished steps; empty for a run started afresh."""
    source: dict[str, Any] = field(default_factory=dict)
    """Where the pipeline was defined, {"file", "name"}, so it can be resumed from the code as it is now."""
    seen_at: float = 0.0
    """When its status was last read from the backend (0: never since it was submitted)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_COLUMNS = tuple(f.name for f in fields(RunRecord))
_JSON_COLUMNS = ("parameters", "backend_ref", "steps", "outputs", "source")
_ADDED_COLUMNS = {"outputs": "TEXT NOT NULL DEFAULT '{}'", "origin_run_id": "TEXT NOT NULL DEFAULT ''",
                  "source": "TEXT NOT NULL DEFAULT '{}'", "seen_at": "REAL NOT NULL DEFAULT 0"}
"""Columns a store made by an earlier stackhop lacks, added when it is opened."""


class RunStore:
    """`create=False` is for read commands: a store that does not exist reads as empty and stays absent."""

    def __init__(self, path: str | Path, *, create: bool = True):
        self.path = Path(path)
        self.exists = self.path.is_file()
        if not create and not self.exists:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            have = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column in have:
                    continue
                try:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise
        self.exists = True

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=30000")
        return db

    def add(self, record: RunRecord) -> None:
        with closing(self._connect()) as db, db:
            db.execute(
                f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)})",
                {**record.to_dict(), **{key: json.dumps(getattr(record, key)) for key in _JSON_COLUMNS}},
            )

    def set_status(
        self, run_id: str, status: str, *, finished: bool = False, message: str | None = None,
        steps: dict[str, Any] | None = None, backend_ref: dict[str, Any] | None = None,
    ) -> None:
        sets, args = ["status = ?", "seen_at = ?"], [status, time.time()]
        if finished:
            sets.append("finished_at = COALESCE(finished_at, ?)")
            args.append(time.time())
        if message is not None:
            sets.append("message = ?")
            args.append(message)
        if steps is not None:
            sets.append("steps = ?")
            args.append(json.dumps(steps))
        if backend_ref is not None:
            sets.append("backend_ref = ?")
            args.append(json.dumps(backend_ref))
        with closing(self._connect()) as db, db:
            db.execute(f"UPDATE runs SET {', '.join(sets)} WHERE run_id = ?", [*args, run_id])

    def get(self, run_id: str) -> RunRecord:
        if not self.exists:
            raise RunNotFoundError(
                f"no run {run_id!r}: there is no run store at {self.path} yet; run a pipeline from this project first, "
                "or pass --config (or set STACKHOP_HOME) to read another project's runs."
            )
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                prefix = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")  # a prefix, never a pattern
                rows = db.execute("SELECT * FROM runs WHERE run_id LIKE ? ESCAPE '\\' LIMIT 2",
                                  (prefix + "%",)).fetchall() if run_id else []
                row = rows[0] if len(rows) == 1 else None
        if row is None:
            raise RunNotFoundError(
                f"no run {run_id!r} in {self.path}; list runs with `stackhop runs list`."
            )
        return _record(row)

    def list(self, *, pipeline: str | None = None, stack: str | None = None, limit: int = 50) -> list[RunRecord]:
        where, args = [], []
        if pipeline:
            where.append("pipeline = ?")
            args.append(pipeline)
        if stack:
            where.append("stack = ?")
            args.append(stack)
        if not self.exists:
            return []
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC LIMIT ?"
        with closing(self._connect()) as db:
            return [_record(r) for r in db.execute(sql, [*args, limit]).fetchall()]

    def delete(self, run_id: str) -> None:
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def all_promotions(self) -> list[dict[str, Any]]:
        if not self.exists:
            return []
        with closing(self._connect()) as db:
            rows = db.execute("SELECT record FROM promotions ORDER BY at, id").fetchall()
        return [json.loads(r["record"]) for r in rows]

    def add_promotion(self, record: dict[str, Any]) -> None:
        """A promotion attempt, refused or done: what was promoted where, which gates held, what it deployed."""
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO promotions (release_id, pipeline, from_stack, to_stack, at, result, record) "
                "VALUES (?,?,?,?,?,?,?)",
                (record["release_id"], record["pipeline"], record["from"], record["to"], record["at"], record["result"],
                 json.dumps(record, sort_keys=True)),
            )

    def promotions(self, release_id: str) -> list[dict[str, Any]]:
        if not self.exists:
            return []
        with closing(self._connect()) as db:
            rows = db.execute("SELECT record FROM promotions WHERE release_id = ? ORDER BY at, id", (release_id,)).fetchall()
        return [json.loads(r["record"]) for r in rows]

    def __iter__(self) -> Iterator[RunRecord]:
        return iter(self.list(limit=1_000_000))


def _record(row: sqlite3.Row) -> RunRecord:
    data = dict(row)
    for key in _JSON_COLUMNS:
        if key in data:
            data[key] = json.loads(data[key])
    return RunRecord(**data)
