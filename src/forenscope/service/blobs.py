"""Report artefacts on disk, content-addressed: objects/<sha[:2]>/<sha256>/<params_key>/.

Every path component comes from the server (a sha256 the server computed, a params key it
hashed, a file name from a fixed list), never from a request, and is checked against strict
patterns anyway. A report directory is built under a temporary name and renamed into place, so a
reader (or a restart) never sees half of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

HEX64 = re.compile(r"[0-9a-f]{64}")
PARAMS_KEY = re.compile(r"[0-9a-f]{16}")
ARTEFACT = re.compile(r"[a-z0-9_.-]{1,100}")


def params_key(experts: Sequence[str] | None, threshold: float, version: str) -> str:
    """Hash of what changes a report besides the image bytes."""
    blob = json.dumps(
        {"experts": sorted(experts) if experts is not None else None, "t": threshold, "v": version},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def private_dir(path: Path) -> None:
    """Create `path` (and parents) readable by this user only: uploads and reports are private."""
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.staging = root / "staging"
        private_dir(root)
        for sub in (self.objects, self.staging):
            private_dir(sub)
            os.chmod(sub, 0o700)  # ours alone, also when an older version created them

    def report_dir(self, sha256: str, key: str) -> Path:
        if not HEX64.fullmatch(sha256) or not PARAMS_KEY.fullmatch(key):
            raise ValueError("invalid object address")
        return self.objects / sha256[:2] / sha256 / key

    def has_report(self, sha256: str, key: str) -> bool:
        return (self.report_dir(sha256, key) / "report.json").is_file()

    def artefact(self, sha256: str, key: str, name: str) -> Path | None:
        """Path of one stored file, or None when absent."""
        if not ARTEFACT.fullmatch(name) or ".." in name:
            return None
        path = self.report_dir(sha256, key) / name
        return path if path.is_file() else None

    def write_report_dir(self, sha256: str, key: str, fill: Callable[[Path], None]) -> Path:
        """Build the directory with `fill(tmp_dir)`, then rename it into place atomically."""
        final = self.report_dir(sha256, key)
        if final.is_dir():
            return final
        for folder in (final.parent.parent, final.parent):  # objects/<ab>/<sha256>/
            folder.mkdir(mode=0o700, exist_ok=True)
        tmp = final.parent / f".tmp-{key}-{uuid.uuid4().hex}"
        tmp.mkdir(mode=0o700)
        try:
            fill(tmp)
            _fsync_dir_files(tmp)
            os.rename(tmp, final)
        except OSError:
            if final.is_dir():  # another request finished the same report first
                shutil.rmtree(tmp, ignore_errors=True)
                return final
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    # -- staged uploads of batch jobs (so a restart can resume them) ---------------------------

    def stage(self, data: bytes) -> str:
        return self.stage_new(data)[0]

    def stage_new(self, data: bytes) -> tuple[str, bool]:
        """(sha256, whether this call wrote the file): only its writer may take a file back."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.staging / sha
        if path.is_file():
            return sha, False
        tmp = self.staging / f".tmp-{uuid.uuid4().hex}"
        _write_private(tmp, data)
        os.replace(tmp, path)
        return sha, True

    def staged(self, sha256: str) -> bytes:
        if not HEX64.fullmatch(sha256):
            raise ValueError("invalid staged address")
        return (self.staging / sha256).read_bytes()

    def unstage(self, refs: Sequence[str], keep: set[str]) -> None:
        """Delete these staged uploads now, except those in `keep` (used by a queued job)."""
        for sha in refs:
            if HEX64.fullmatch(sha) and sha not in keep:
                (self.staging / sha).unlink(missing_ok=True)

    def unstage_except(self, keep: set[str], min_age_s: float = 600.0) -> None:
        """Delete staged uploads no job needs; young files may belong to a job being created."""
        now = time.time()
        for path in self.staging.iterdir():
            if HEX64.fullmatch(path.name) and path.name not in keep:
                try:
                    if now - path.stat().st_mtime >= min_age_s:
                        path.unlink()
                except FileNotFoundError:
                    pass


def _fsync_dir_files(directory: Path) -> None:
    """Flush every file, and make it private (the report writers use the default umask)."""
    os.chmod(directory, 0o700)
    for path in directory.iterdir():
        os.chmod(path, 0o600)
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
