"""Cold start (issue 15): the weights' sha256 is kept across processes, never trusted stale."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from forenscope.models import cache


@pytest.fixture
def stamps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "STAMP_MIN_BYTES", 8)
    monkeypatch.setattr(cache, "_hashed", {})
    return tmp_path


def _no_hashing(path: Path, chunk: int) -> str:
    raise AssertionError(f"{path} was read again")


def test_a_stamp_spares_the_next_process_the_read(stamps: Path, monkeypatch: pytest.MonkeyPatch):
    weights = stamps / "w.onnx"
    weights.write_bytes(b"weights" * 10)
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert cache.file_sha256(weights) == expected
    assert len(list((stamps / "cache" / "sha256").glob("*.json"))) == 1
    monkeypatch.setattr(cache, "_hashed", {})  # a new process
    monkeypatch.setattr(cache, "_hash_file", _no_hashing)
    assert cache.file_sha256(weights) == expected


def test_a_rewritten_file_is_hashed_again(stamps: Path, monkeypatch: pytest.MonkeyPatch):
    weights = stamps / "w.onnx"
    weights.write_bytes(b"weights" * 10)
    cache.file_sha256(weights)
    st = weights.stat()
    weights.write_bytes(b"WEIGHTS" * 10)  # same size, mtime set back: ctime still moves
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setattr(cache, "_hashed", {})
    assert cache.file_sha256(weights) == hashlib.sha256(b"WEIGHTS" * 10).hexdigest()


def test_small_files_and_bad_stamps(stamps: Path, monkeypatch: pytest.MonkeyPatch):
    small = stamps / "head.npz"
    small.write_bytes(b"1234")
    cache.file_sha256(small)
    assert not (stamps / "cache" / "sha256").exists()
    big = stamps / "w.onnx"
    big.write_bytes(b"weights" * 10)
    cache.file_sha256(big)
    (stamp,) = (stamps / "cache" / "sha256").glob("*.json")
    stamp.write_text('{"key": "x", "sha256": "0"}')
    monkeypatch.setattr(cache, "_hashed", {})
    assert cache.file_sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest()
