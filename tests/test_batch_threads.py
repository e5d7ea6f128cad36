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


def test_analyze_command_caps_blas_before_numpy_loads() -> None:
    """`forenscope analyze` runs the experts in threads of its own: the BLAS/OpenMP pools get
    one thread (an OpenBLAS pool per core only busy-waits beside them), onnxruntime keeps its
    default, and a value the user set is kept."""
    import json
    import subprocess

    code = (
        "import json, os, sys\n"
        "from forenscope.cli import analyze_command\n"
        "analyze_command()\n"
        "import numpy as np\n"
        "from threadpoolctl import threadpool_info\n"
        "np.ones((64, 64)) @ np.ones((64, 64))\n"
        "pools = {p['internal_api']: p['num_threads'] for p in threadpool_info()}\n"
        "print(json.dumps({'pools': pools, 'ort': os.environ.get('FORENSCOPE_ORT_THREADS'),"
        " 'mkl': os.environ.get('MKL_NUM_THREADS')}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ONE_THREAD_VARS}
    env["MKL_NUM_THREADS"] = "3"  # the user's own setting stays
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["pools"] and set(report["pools"].values()) == {1}, report
    assert report["ort"] is None
    assert report["mkl"] == "3"
