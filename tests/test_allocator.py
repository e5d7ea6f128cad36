"""The glibc malloc settings an analysis runs under (forenscope.allocator)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from forenscope import allocator

_GLIBC = sys.platform.startswith("linux") and allocator._libc() is not None

CHILD = """
import resource, sys, numpy as np
from forenscope import allocator
print(allocator.tune())
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    a = np.ones(int(sys.argv[1]) // 4, dtype=np.float32)
    del a
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _child(env_value: str, nbytes: int = 48_000_000) -> tuple[str, int]:
    """tune()'s answer and the page faults of 20 arrays of nbytes (default 48 MB: above
    glibc's default mmap threshold, below ours) made and freed in turn."""
    env = {"FORENSCOPE_MALLOC_TUNING": env_value, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(nbytes)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not _GLIBC, reason="glibc only: mallopt is not available here")
def test_tuned_heap_reuses_pages_of_freed_image_sized_arrays() -> None:
    tuned, tuned_faults = _child("1")
    plain, plain_faults = _child("0")
    assert (tuned, plain) == ("True", "False")
    # Untuned, every 48 MB array is a fresh mmap: ~12k page faults each (fewer with huge pages).
    assert tuned_faults < plain_faults / 4


@pytest.mark.skipif(not _GLIBC, reason="glibc only: mallopt is not available here")
def test_blocks_above_the_threshold_are_still_mapped_apart() -> None:
    """A 48 MP float32 plane goes back to the system when freed, so it cannot pin the heap."""
    below = _child("1", allocator.MMAP_THRESHOLD - (16 << 20))
    above = _child("1", allocator.MMAP_THRESHOLD + (16 << 20))
    assert below[0] == above[0] == "True"
    # Below, the heap's pages are reused: faulted in once. Above, afresh each time (huge pages
    # or not, hence a ratio rather than a count).
    assert above[1] > 4 * below[1]


def test_release_is_safe_to_call_anywhere() -> None:
    allocator.release()
