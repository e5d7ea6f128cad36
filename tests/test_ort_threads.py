"""onnxruntime sessions keep to the cores the process may use: left to its default, onnxruntime
pins a pool thread to each physical core, outside `taskset` or a cpuset (issue 15)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forenscope.io import limits
from forenscope.io.limits import usable_cores

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

# In a child process pinned to core 0: open a session on a one-MatMul graph, run it, and print
# the affinity of every thread of the process.
CHILD = """
import json, os
import numpy as np
from onnx import TensorProto, helper
from forenscope.learned.ort_session import cpu_session

x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [256, 256])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [256, 256])
graph = helper.make_graph([helper.make_node("MatMul", ["x", "x"], ["y"])], "mm", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
session = cpu_session(model.SerializeToString(), "a test graph")
session.run(None, {"x": np.ones((256, 256), np.float32)})
tasks = os.listdir(f"/proc/{os.getpid()}/task")
print(json.dumps([sorted(os.sched_getaffinity(int(t))) for t in tasks]))
"""


def test_usable_cores_follows_the_affinity() -> None:
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    assert usable_cores() == (expected or os.cpu_count() or 1)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only")
def test_physical_cores_count_hyperthreads_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four logical CPUs on two cores of one package; without a topology, the logical count."""
    for cpu, core in enumerate((0, 0, 1, 1)):
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "core_id").write_text(f"{core}\n")
        (topology / "physical_package_id").write_text("0\n")
    monkeypatch.setattr(limits, "SYSFS_CPUS", tmp_path)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert usable_cores() == 4 and usable_cores(physical=True) == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert usable_cores(physical=True) == 1
    monkeypatch.setattr(limits, "SYSFS_CPUS", tmp_path / "missing")
    assert usable_cores(physical=True) == 2


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("taskset") is None
    or len(os.sched_getaffinity(0)) < 2 or 0 not in os.sched_getaffinity(0),
    reason="needs Linux, taskset and two cores including core 0",
)  # fmt: skip
def test_a_session_under_taskset_keeps_every_thread_on_the_allowed_core() -> None:
    done = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", CHILD],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    affinities = json.loads(done.stdout.strip().splitlines()[-1])
    assert affinities and all(a == [0] for a in affinities), affinities
