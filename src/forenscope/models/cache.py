"""The user cache directory, hashing and atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..errors import ModelError


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/forenscope, else ~/.cache/forenscope (ignores FORENSCOPE_CACHE_DIR)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "forenscope"


def cache_dir() -> Path:
    """FORENSCOPE_CACHE_DIR when set, else the default user cache directory."""
    env = os.environ.get("FORENSCOPE_CACHE_DIR")
    return Path(env) if env else default_cache_dir()


# (resolved path, size, mtime) -> sha256: a session hashes each weights file once.
_hashed: dict[tuple[str, int, int], str] = {}
# Files this large also keep their digest in a stamp under the cache directory, so a new
# process does not read them again (the 90 MB CLIP encoder: ~0.1 s CPU of every cold start).
STAMP_MIN_BYTES = 4 << 20


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, memoised per (path, size, mtime) so a session verifies once; the one
    file hasher of the weights, heads, pools and fingerprints (user inputs are hashed within
    their size limit by the batch and video code). Files of STAMP_MIN_BYTES or more are read
    once per stat identity (see `_stamp_key`), across processes."""
    st = path.stat()
    resolved = str(path.resolve())
    key = (resolved, st.st_size, st.st_mtime_ns)
    if key not in _hashed:
        stamp = _stamp_file(resolved) if st.st_size >= STAMP_MIN_BYTES else None
        stamp_key = _stamp_key(resolved, st)
        digest = _read_stamp(stamp, stamp_key) if stamp is not None else None
        if digest is None:
            digest = _hash_file(path, chunk)
            if stamp is not None:
                _write_stamp(stamp, stamp_key, digest)
        _hashed[key] = digest
    return _hashed[key]


def _hash_file(path: Path, chunk: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _stamp_key(resolved: str, st: os.stat_result) -> str:
    """The stat identity a stamp is valid for: a rewrite changes the inode or the ctime (which,
    unlike the mtime, cannot be set back), so a stale stamp is never used."""
    return f"{resolved}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def _stamp_file(resolved: str) -> Path:
    name = hashlib.sha256(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return cache_dir() / "sha256" / f"{name}.json"


def _read_stamp(stamp: Path, stamp_key: str) -> str | None:
    try:
        saved = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("key") != stamp_key:
        return None
    digest = saved.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64:
        return None
    return digest if all(c in "0123456789abcdef" for c in digest) else None


def _write_stamp(stamp: Path, stamp_key: str, digest: str) -> None:
    """Best effort: a read-only cache only means the next process hashes again."""
    try:
        write_atomic(stamp, [json.dumps({"key": stamp_key, "sha256": digest}).encode()])
    except (OSError, ModelError):
        pass


def write_atomic(dest: Path, chunks: Iterable[bytes], expected_sha256: str | None = None) -> str:
    """Write chunks to `dest` via a temp file + rename, so no half-written or unverified model
    is ever visible; with `expected_sha256`, a mismatch raises ModelError and leaves nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            for block in chunks:
                digest.update(block)
                fh.write(block)
        actual = digest.hexdigest()
        if expected_sha256 is not None and actual != expected_sha256:
            raise ModelError(
                f"sha256 mismatch for {dest.name}: expected {expected_sha256}, got {actual}; "
                "the file was not cached"
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a shared cache must be readable
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()
