"""The glibc malloc settings an analysis runs under (forenscope.allocator)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from forenscope import allocator

_GLIBC = sys.platform.startswith("linux") and allocator._libc() is not None

CHILD = """
import resource, numpy as np
from forenscope import allocator
print(allocator.tune())
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = np.ones(12_000_000, dtype=np.float32)  # 48 MB, above glibc's default mmap threshold
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _child(env_value: str) -> tuple[str, int]:
    env = {"FORENSCOPE_MALLOC_TUNING": env_value, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not _GLIBC, reason="glibc only: mallopt is not available here")
def test_tuned_heap_reuses_pages_of_freed_image_sized_arrays() -> None:
    tuned, tuned_faults = _child("1")
    plain, plain_faults = _child("0")
    assert (tuned, plain) == ("True", "False")
    # Untuned, every 48 MB array is a fresh mmap: ~12k page faults each (fewer with huge pages).
    assert tuned_faults < plain_faults / 4


def test_release_is_safe_to_call_anywhere() -> None:
    allocator.release()
