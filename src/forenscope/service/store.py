"""Metadata store: analyses, batch jobs and chat messages in SQLite (stdlib, WAL).

One connection guarded by a lock: SQLite serialises writers anyway, and the rows are tiny; the
heavy artefacts (reports, overlays) live on disk in the content-addressed `BlobStore`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS analyses (
  id TEXT PRIMARY KEY, created_at TEXT NOT NULL, sha256 TEXT NOT NULL, params_key TEXT NOT NULL,
  filename TEXT, source TEXT NOT NULL, url TEXT, label TEXT NOT NULL, probability REAL NOT NULL,
  decided_by TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL, job_id TEXT,
  kind TEXT NOT NULL DEFAULT 'image'
);
CREATE INDEX IF NOT EXISTS analyses_created ON analyses (created_at);
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, total INTEGER NOT NULL,
  params TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_items (
  job_id TEXT NOT NULL, idx INTEGER NOT NULL, name TEXT, kind TEXT NOT NULL, ref TEXT NOT NULL,
  status TEXT NOT NULL, analysis_id TEXT, error TEXT, PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS chats (
  analysis_id TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (analysis_id, seq)
);
"""


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AnalysisRow:
    id: str
    created_at: str
    sha256: str
    params_key: str
    filename: str | None
    source: str
    url: str | None
    label: str
    probability: float
    decided_by: str
    width: int
    height: int
    job_id: str | None = None
    kind: str = "image"  # "image" | "clip"


@dataclass(frozen=True)
class JobItemRow:
    job_id: str
    idx: int
    name: str | None
    kind: str  # "upload" (ref = sha256 of staged bytes) | "url" (ref = the URL)
    ref: str
    status: str  # queued | running | done | failed | cancelled
    analysis_id: str | None
    error: str | None


class Store:
    """Thread-safe access to the metadata database at `path`."""

    def __init__(self, path: Path) -> None:
        if not path.parent.is_dir():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path.parent, 0o700)
        # Created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(analyses)")}
        if "kind" not in columns:  # a database from before clips: every row is an image
            self._db.execute("ALTER TABLE analyses ADD COLUMN kind TEXT NOT NULL DEFAULT 'image'")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    # -- analyses ------------------------------------------------------------------------------

    def add_analysis(self, row: AnalysisRow) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO analyses VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (row.id, row.created_at, row.sha256, row.params_key, row.filename, row.source,
                 row.url, row.label, row.probability, row.decided_by, row.width, row.height,
                 row.job_id, row.kind),
            )  # fmt: skip

    def get_analysis(self, analysis_id: str) -> AnalysisRow | None:
        rows = self._query("SELECT * FROM analyses WHERE id = ?", (analysis_id,))
        return AnalysisRow(**dict(rows[0])) if rows else None

    def list_analyses(self, limit: int, offset: int) -> tuple[list[AnalysisRow], int]:
        rows = self._query(
            "SELECT * FROM analyses ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        total = int(self._query("SELECT COUNT(*) FROM analyses")[0][0])
        return [AnalysisRow(**dict(r)) for r in rows], total

    def find_analyses(self, text: str | None, sha256: str | None, limit: int) -> list[AnalysisRow]:
        """Newest first: rows whose file name, URL or verdict contains `text`, or with `sha256`."""
        where, params = [], []
        if text:
            like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append(
                "(filename LIKE ? ESCAPE '\\' OR url LIKE ? ESCAPE '\\' OR label LIKE ? "
                "ESCAPE '\\')"
            )
            params += [like, like, like]
        if sha256:
            where.append("sha256 = ?")
            params.append(sha256)
        sql = "SELECT * FROM analyses" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._query(sql + " ORDER BY created_at DESC, rowid DESC LIMIT ?", (*params, limit))
        return [AnalysisRow(**dict(r)) for r in rows]

    def delete_analysis(self, analysis_id: str) -> int | None:
        """Delete the row and its chat; how many rows still use its stored report (None: no
        such row)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT sha256, params_key FROM analyses WHERE id = ?", (analysis_id,)
            ).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM analyses WHERE id = ?", (analysis_id,))
            db.execute("DELETE FROM chats WHERE analysis_id = ?", (analysis_id,))
            left = db.execute(
                "SELECT COUNT(*) FROM analyses WHERE sha256 = ? AND params_key = ?", tuple(row)
            ).fetchone()
        return int(left[0])

    def analysis_of(self, sha256: str, params_key: str) -> str | None:
        """The newest analysis of these bytes with these parameters, if any (re-uploads)."""
        rows = self._query(
            "SELECT id FROM analyses WHERE sha256 = ? AND params_key = ? "
            "ORDER BY created_at DESC, rowid DESC LIMIT 1", (sha256, params_key),
        )  # fmt: skip
        return str(rows[0][0]) if rows else None

    def analyses_of_job(self, job_id: str) -> set[str]:
        return {str(r[0]) for r in self._query("SELECT id FROM analyses WHERE job_id = ?",
                                               (job_id,))}  # fmt: skip

    def count_analyses(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM analyses")[0][0])

    # -- jobs ----------------------------------------------------------------------------------

    def add_job(self, job_id: str, items: list[tuple[str | None, str, str]], params: str) -> None:
        """items: (display name, kind, ref) in submission order; params: JSON of the options."""
        now = utcnow()
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs VALUES (?,?,?,?,?)", (job_id, now, now, len(items), params)
            )
            db.executemany(
                "INSERT INTO job_items VALUES (?,?,?,?,?,'queued',NULL,NULL)",
                [(job_id, i, name, kind, ref) for i, (name, kind, ref) in enumerate(items)],
            )

    def get_job(self, job_id: str) -> tuple[str, str, list[JobItemRow]] | None:
        """(created_at, updated_at, items) or None."""
        jobs = self._query("SELECT created_at, updated_at FROM jobs WHERE id = ?", (job_id,))
        if not jobs:
            return None
        items = self._query("SELECT * FROM job_items WHERE job_id = ? ORDER BY idx", (job_id,))
        return jobs[0][0], jobs[0][1], [JobItemRow(**dict(r)) for r in items]

    def job_params(self, job_id: str) -> str:
        rows = self._query("SELECT params FROM jobs WHERE id = ?", (job_id,))
        return str(rows[0][0]) if rows else "{}"

    def get_item(self, job_id: str, idx: int) -> JobItemRow | None:
        rows = self._query("SELECT * FROM job_items WHERE job_id = ? AND idx = ?", (job_id, idx))
        return JobItemRow(**dict(rows[0])) if rows else None

    def set_item(
        self, job_id: str, idx: int, status: str, *, analysis_id: str | None = None,
        error: str | None = None,
    ) -> None:  # fmt: skip
        with self._tx() as db:
            db.execute(
                "UPDATE job_items SET status=?, analysis_id=?, error=? WHERE job_id=? AND idx=?",
                (status, analysis_id, error, job_id, idx),
            )
            db.execute("UPDATE jobs SET updated_at=? WHERE id=?", (utcnow(), job_id))

    def unfinished_items(self) -> list[JobItemRow]:
        """Items queued or interrupted mid-run (after a restart), oldest job first."""
        rows = self._query(
            "SELECT i.* FROM job_items i JOIN jobs j ON j.id = i.job_id "
            "WHERE i.status IN ('queued','running') ORDER BY j.created_at, i.idx"
        )
        return [JobItemRow(**dict(r)) for r in rows]

    def staged_refs_in_use(self) -> set[str]:
        rows = self._query(
            "SELECT DISTINCT ref FROM job_items WHERE kind='upload' "
            "AND status IN ('queued','running')"
        )
        return {str(r[0]) for r in rows}

    # -- chats ---------------------------------------------------------------------------------

    def add_chat(self, analysis_id: str, role: str, content: str) -> None:
        with self._tx() as db:
            seq = db.execute(
                "SELECT COALESCE(MAX(seq), -1) + 1 FROM chats WHERE analysis_id = ?",
                (analysis_id,),
            ).fetchone()[0]
            db.execute(
                "INSERT INTO chats VALUES (?,?,?,?,?)",
                (analysis_id, seq, role, content, utcnow()),
            )

    def chat_history(self, analysis_id: str) -> list[tuple[str, str, str]]:
        """(role, content, created_at) in order."""
        rows = self._query(
            "SELECT role, content, created_at FROM chats WHERE analysis_id = ? ORDER BY seq",
            (analysis_id,),
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]
