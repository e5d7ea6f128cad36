"""Shared fixtures. Tests that need ../shared/data skip cleanly when it is absent."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FORENSCOPE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data, or skip the test when it is not there (a user's fresh clone)."""
    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test's model/response cache out of the user's home."""
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if any test tries to reach a host other than this machine's loopback."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = str(address[0]) if isinstance(address, tuple) else str(address)
        loopback = host in ("localhost", "::1") or host.startswith(("127.", "::ffff:127."))
        if not loopback and not host.startswith("/"):  # "/...": a Unix socket
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture()
def face_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the three verified face .tflite files, or skip (never downloads)."""
    pytest.importorskip("ai_edge_litert")
    from forenscope.models.cache import default_cache_dir
    from forenscope.models.faces import FACE_MODELS

    flat = tmp_path / "face-models"
    flat.mkdir()
    for spec in FACE_MODELS.values():
        src = default_cache_dir() / "models" / spec.name / spec.filename
        if not src.is_file():
            pytest.skip("face models not cached: run `forenscope models pull`")
        shutil.copy(src, flat / spec.filename)
    monkeypatch.setenv("FORENSCOPE_FACE_MODELS_DIR", str(flat))
    return flat


# --- CI refuses skips it did not expect ------------------------------------------------------
# A skip in a user's clone is fine (no ../shared, no Chromium, no pulled models). In CI
# (FORENSCOPE_STRICT_SKIPS=1, set by .ci/run) everything is installed, so a skip means a
# dependency silently went missing: only the reasons below may skip there.
ALLOWED_CI_SKIPS: tuple[str, ...] = (
    "needs a GPU",  # no GPU in CI by design
)
_unexpected_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    expected_failure = hasattr(report, "wasxfail")  # an xfail reports as skipped
    if report.skipped and not expected_failure and os.environ.get("FORENSCOPE_STRICT_SKIPS") == "1":
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        if not any(allowed in reason for allowed in ALLOWED_CI_SKIPS):
            _unexpected_skips.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _unexpected_skips:
        print("\nUnexpected skips in CI (FORENSCOPE_STRICT_SKIPS=1):")
        for line in _unexpected_skips:
            print(f"  {line}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
