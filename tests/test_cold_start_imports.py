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


def test_a_stamp_spares_the_next_process_the_read(
    stamps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = stamps / "w.onnx"
    weights.write_bytes(b"weights" * 10)
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert cache.file_sha256(weights) == expected
    assert len(list((stamps / "cache" / "sha256").glob("*.json"))) == 1
    monkeypatch.setattr(cache, "_hashed", {})  # a new process
    monkeypatch.setattr(cache, "_hash_file", _no_hashing)
    assert cache.file_sha256(weights) == expected


def test_a_rewritten_file_is_hashed_again(stamps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = stamps / "w.onnx"
    weights.write_bytes(b"weights" * 10)
    cache.file_sha256(weights)
    st = weights.stat()
    weights.write_bytes(b"WEIGHTS" * 10)  # same size, mtime set back: ctime still moves
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    monkeypatch.setattr(cache, "_hashed", {})
    assert cache.file_sha256(weights) == hashlib.sha256(b"WEIGHTS" * 10).hexdigest()


def test_small_files_and_bad_stamps(stamps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_the_analysis_path_loads_no_report_renderer() -> None:
    import subprocess
    import sys

    code = (
        "import sys, forenscope.pipeline, forenscope.report as r\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('forenscope.report.'))\n"
        "assert loaded == ['forenscope.report.explain'], loaded\n"
        "assert callable(r.render_html) and callable(r.write_json_schema)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_large_graph_opens_from_its_optimised_copy(
    stamps: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import numpy as np

    from forenscope.learned import ort_session
    from forenscope.learned.fake_encoder import build_fake_encoder

    model = build_fake_encoder(stamps / "fake.onnx", blocks=2)
    x = np.random.default_rng(3).standard_normal((2, 3, 224, 224)).astype(np.float32)
    plain = ort_session.cpu_session(model, "a test", threads=1)
    expected = plain.run(None, {plain.get_inputs()[0].name: x})
    assert not (stamps / "cache" / "ort-optimized").exists()  # small: opened as it is

    monkeypatch.setattr(ort_session, "OPTIMIZE_MIN_BYTES", 0)
    for _ in range(2):  # writes the copy, then opens it
        session = ort_session.cpu_session(model, "a test", threads=1, cache_optimized=True)
        got = session.run(None, {session.get_inputs()[0].name: x})
        assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
    (copy,) = (stamps / "cache" / "ort-optimized").glob("fake-*.onnx")
    assert not list(copy.parent.glob(".*.part"))
    written = copy.stat().st_mtime_ns
    assert ort_session.optimized_graph(model) == copy
    assert copy.stat().st_mtime_ns == written  # rewritten once per model and runtime version


def test_decoding_loads_only_the_accepted_formats_plugins() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from forenscope.io import image\n"
        "from PIL import Image\n"
        "plugins = lambda: {m for m in sys.modules if m.endswith('ImagePlugin')}\n"
        "got = image._accepted_formats()\n"
        "assert 'PIL.XbmImagePlugin' not in plugins(), sorted(plugins())\n"
        "Image.init()\n"
        "assert got == [f for f in image.ACCEPTED_FORMATS if f in Image.OPEN], got\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
