"""A resumable run journal: one JSON line per finished sample, fsync'd as it is written.

Every record is flushed to the kernel as it is written, so a kill -9 of the run loses nothing
that was journaled. `fsync` decides durability against a machine crash: "always" (fsync per
record: ~5 ms each on a typical disk), "batch" (the default: fsync when 50 ms have passed since
the last one, and on close, so a power cut loses at most the last 50 ms) or "never".

A kill -9 can leave at most one torn (half-written) last line: the reader skips lines that do
not parse and `open_journal` truncates the file back to its last complete line before appending.
The first line is a header with the run's config hash, so a resume with a different config is
refused instead of mixing results. A key seen twice (cannot happen through the runner) counts
once: the last record wins. Sample lines are `SampleRecord`s (`records.py`); a line that does
not validate as one is skipped like a torn line, so its sample is scored again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import ValidationError

from .records import SampleRecord

FsyncMode = Literal["always", "batch", "never"]
BATCH_S = 0.05


class JournalMismatch(ValueError):
    """The journal on disk was written by a run with another configuration."""


def read_journal(path: Path) -> tuple[dict[str, Any] | None, dict[str, SampleRecord], int]:
    """(header, records by key, number of unreadable lines skipped)."""
    header: dict[str, Any] | None = None
    records: dict[str, SampleRecord] = {}
    bad = 0
    if not path.exists():
        return None, records, 0
    with path.open("rb") as f:
        for raw in f:
            try:
                rec = json.loads(raw)
            except ValueError:
                bad += 1
                continue
            if not isinstance(rec, dict):
                bad += 1
            elif rec.get("type") == "header":
                header = rec
            elif rec.get("type") == "sample":
                try:
                    sample = SampleRecord.from_journal(rec)
                except ValidationError:
                    bad += 1
                    continue
                records[sample.key] = sample
    return header, records, bad


def changed_settings(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ between two run identities."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [prefix or "config"] if old != new else []
    out: list[str] = []
    for key in sorted(set(old) | set(new), key=str):
        out += changed_settings(old.get(key), new.get(key), f"{prefix}{key}.")
    return [name.rstrip(".") for name in out]


def _truncate_to_last_newline(path: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        return
    with path.open("rb+") as f:
        chunk = 1 << 16
        pos = size
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            block = f.read(pos - start)
            i = block.rfind(b"\n")
            if i >= 0:
                if start + i + 1 < size:
                    f.truncate(start + i + 1)
                return
            pos = start
        f.truncate(0)  # no complete line at all


class Journal:
    """Append-only writer; see the module docstring for the `fsync` modes."""

    def __init__(self, path: Path, header: dict[str, Any], *, fsync: FsyncMode = "batch") -> None:
        self.path = path
        self.fsync = fsync
        self._synced = time.monotonic()
        existing, self.records, self.skipped_lines = read_journal(path)
        if existing is not None and existing.get("config_hash") != header.get("config_hash"):
            changed = changed_settings(existing.get("config"), header.get("config"))
            raise JournalMismatch(
                f"{path} belongs to another configuration (hash {existing.get('config_hash')}, "
                f"this run {header.get('config_hash')}; changed: {', '.join(changed) or '?'}); "
                "use a new --out or --restart"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            _truncate_to_last_newline(path)
        self._f: IO[str] = path.open("a", encoding="utf-8")
        if existing is None:
            self._write(header)
        self.header = existing or header

    def _write(self, record: dict[str, Any]) -> None:
        self._f.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        self._f.flush()  # in the kernel now: survives a kill -9 of this process
        now = time.monotonic()
        if self.fsync == "always" or (self.fsync == "batch" and now - self._synced >= BATCH_S):
            os.fsync(self._f.fileno())
            self._synced = now

    def add(self, record: SampleRecord) -> None:
        self._write(record.journal_line())
        self.records[record.key] = record

    def close(self) -> None:
        if self.fsync != "never" and not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
        self._f.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
