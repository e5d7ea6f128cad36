"""The user cache directory, hashing and atomic writes."""

from __future__ import annotations

import hashlib
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


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, memoised per (path, size, mtime) so a session verifies once; the one
    file hasher of the weights, heads, pools and fingerprints (user inputs are hashed within
    their size limit by the batch and video code)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hashed:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
        _hashed[key] = digest.hexdigest()
    return _hashed[key]


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
