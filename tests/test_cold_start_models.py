"""Cold start: a fresh process loads the models of the experts it runs, on a background thread
while it decodes, and none for experts it does not run."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys, threading
from forenscope import analyze
from forenscope.forgeries import EXAMPLE_PHOTO
names = sys.argv[1].split(",")
started = []
real_start = threading.Thread.start
def start(self):
    started.append(self.name)
    real_start(self)
threading.Thread.start = start
report = analyze(EXAMPLE_PHOTO, experts=names)
print(",".join(r.expert for r in report.experts))
print("forenscope-models" in started, "onnxruntime" in sys.modules)
"""


def _run(experts: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, experts], capture_output=True, text=True, timeout=300,
        check=True,
    )  # fmt: skip
    return done.stdout.split()


def test_signal_experts_alone_load_no_model_runtime() -> None:
    assert _run("ela,noise") == ["ela,noise", "False", "False"]


def test_a_learned_expert_loads_its_model_on_the_background_thread() -> None:
    pytest.importorskip("onnxruntime")
    out = _run("ela,learned_localizer")  # its trees ship with the package
    assert out[0] == "ela,learned_localizer"
    assert out[1] == "True" and out[2] == "True"
