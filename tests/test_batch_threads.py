"""Folder runs: each worker process analyses with one BLAS/OpenMP/onnxruntime thread."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from forenscope.batch import ONE_THREAD_VARS, WorkerPool


def thread_report(_: str) -> dict[str, Any]:
    """A WorkerPool task: the worker's thread settings, then its pools once numpy is loaded."""
    before_numpy = "numpy" in sys.modules
    env = {name: os.environ.get(name) for name in ONE_THREAD_VARS}
    import numpy as np
    from threadpoolctl import threadpool_info

    np.ones((64, 64)) @ np.ones((64, 64))  # loads the BLAS
    pools = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
    return {"numpy_loaded_first": before_numpy, "env": env, "pools": pools}


def test_each_worker_has_one_thread_per_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ONE_THREAD_VARS:  # a parent with no caps of its own
        monkeypatch.delenv(name, raising=False)
    with WorkerPool(thread_report, 2) as pool:
        reports = [r for _, r in pool.run([(k, (k,)) for k in "ab"])]
    assert len(reports) == 2
    for report in reports:
        assert isinstance(report, dict), report
        assert set(report["env"].values()) == {"1"}
        assert report["pools"], "no BLAS/OpenMP pool was found"
        assert set(report["pools"].values()) == {1}, report["pools"]
