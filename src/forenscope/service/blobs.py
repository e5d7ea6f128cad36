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


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.staging = root / "staging"
        self.objects.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)

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
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{key}-{uuid.uuid4().hex}"
        tmp.mkdir()
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
        sha = hashlib.sha256(data).hexdigest()
        path = self.staging / sha
        if not path.is_file():
            tmp = self.staging / f".tmp-{uuid.uuid4().hex}"
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return sha

    def staged(self, sha256: str) -> bytes:
        if not HEX64.fullmatch(sha256):
            raise ValueError("invalid staged address")
        return (self.staging / sha256).read_bytes()

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
    for path in directory.iterdir():
        with path.open("rb") as fh:
            os.fsync(fh.fileno())
