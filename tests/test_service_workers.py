"""The service's analysis worker processes (issue 16: a per-image wall-clock limit after which
the worker is recycled; a dead worker costs its own request alone). Real processes throughout."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import abuse_fixtures as fx
from forenscope.errors import ImageDecodeError
from forenscope.io import load_image
from forenscope.io.limits import Limits

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")

workers = pytest.importorskip("forenscope.service.workers")


@pytest.fixture(scope="module")
def procs() -> Iterator[workers.AnalysisProcesses]:
    """One pool for the module: each test leaves it with a live, warmed worker."""
    p = workers.AnalysisProcesses(1, timeout_s=2.0, experts=["exif"], limits=Limits())
    p.warm_up()
    yield p
    p.close()


def test_an_overdue_analysis_is_stopped_and_its_worker_replaced(
    procs: workers.AnalysisProcesses,
) -> None:
    (first,) = procs.worker_pids()
    start = time.monotonic()
    with pytest.raises(workers.AnalysisTimeoutError, match="longer than the server's limit"):
        procs.call(fx.pool_task, "slow", 60.0)
    assert time.monotonic() - start < 15.0
    assert procs.call(fx.pool_task, "next", 0.0) == "next"
    (second,) = procs.worker_pids()
    assert second != first and not fx.alive(first)


def test_a_killed_worker_costs_its_own_call_alone(procs: workers.AnalysisProcesses) -> None:
    with pytest.raises(workers.WorkerCrashedError, match="SIGKILL"):
        procs.call(fx.pool_task, "kill-1", 0.0)
    assert procs.call(fx.pool_task, "after", 0.0) == "after"


def test_an_error_comes_back_as_itself_and_the_worker_lives_on(
    procs: workers.AnalysisProcesses,
) -> None:
    (pid,) = procs.worker_pids()
    with pytest.raises(ImageDecodeError):
        procs.call(load_image, b"not an image at all")
    assert procs.worker_pids() == [pid]


def test_a_worker_outlives_the_request_thread_that_used_it(
    procs: workers.AnalysisProcesses,
) -> None:
    """PR_SET_PDEATHSIG fires when the *thread* that started a worker ends: workers started on
    request threads (which the server's pool retires) died after every request."""
    (old,) = procs.worker_pids()
    os.kill(old, signal.SIGKILL)  # the next call starts a new one
    deadline = time.monotonic() + 10
    while fx.alive(old) and time.monotonic() < deadline:
        time.sleep(0.02)
    out: list[object] = []

    def request() -> None:
        try:
            out.append(procs.call(fx.pool_task, "t", 0.0))
        except Exception as exc:
            out.append(exc)

    t = threading.Thread(target=request)
    t.start()
    t.join()
    assert out == ["t"]
    (pid,) = procs.worker_pids()
    time.sleep(0.5)
    assert fx.alive(pid), "the worker died with the thread that started it"
    assert procs.call(fx.pool_task, "again", 0.0) == "again" and procs.worker_pids() == [pid]


@pytest.mark.parametrize(
    ("error", "status"),
    [(workers.AnalysisTimeoutError("took longer than the server's limit of 1 s"), 422),
     (workers.WorkerCrashedError("killed by SIGKILL"), 503)],
)  # fmt: skip
def test_worker_failures_reach_the_client_as_http_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int
) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("python_multipart")
    from fastapi.testclient import TestClient

    import forenscope.pipeline as pipeline
    from forenscope.service import Settings, create_app

    app = create_app(Settings(data_dir=tmp_path, experts=["exif"], warm_up=False,
                              analyze_rate_per_min=0.0))  # fmt: skip

    def fail(*_a: object, **_kw: object) -> None:
        raise error

    monkeypatch.setattr(pipeline, "analyze_image", fail)
    with TestClient(app) as c:
        r = c.post("/v1/analyze", files={"file": ("a.jpg", fx.small_jpeg(4))})
    assert r.status_code == status and str(error) in r.json()["detail"]
    assert ("retry-after" in r.headers) == (status == 503)


def test_a_request_after_close_is_told_the_server_is_stopping() -> None:
    """After uvicorn's graceful-shutdown deadline, requests still in flight reach closed pools:
    503 'stopping', not a 500 from a shut-down executor."""
    p = workers.AnalysisProcesses(1, timeout_s=2.0, experts=["exif"], limits=Limits())
    p.close()
    with pytest.raises(workers.WorkerCrashedError, match="stopping"):
        p.call(fx.pool_task, "late", 0.0)
