"""glibc malloc settings for an analysis that allocates many image-sized arrays.

By default glibc serves every allocation above 32 MB with a fresh `mmap` and unmaps it when it
is freed, so each image-sized numpy temporary is faulted in page by page and zeroed by the
kernel again: at 12 MP an analysis touched about 13 GB of fresh pages and spent a third of its
time in the kernel. Keeping large blocks in the heap (no automatic trim) and one arena for all
threads lets the next temporary reuse the last one's pages. `release()` hands the free pages
back to the system, for long-lived processes between analyses.

Blocks of MMAP_THRESHOLD and more (a float32 plane of 34 MP or more: 183 MB at 48 MP) are still
mapped and unmapped on their own: kept in the heap, they stayed there after copy_move and the
other experts' blocks grew the heap past them (48 MP peak RSS, median of 8 runs, 1330 -> 1276
MB, for about 60k more page faults). No block of a 12 MP analysis is that large.

Only glibc has `mallopt`; elsewhere (macOS, musl) both calls do nothing. Set
`FORENSCOPE_MALLOC_TUNING=0` to keep the system's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_LARGEST = 2**31 - 1  # mallopt takes an int: about 2 GB
MMAP_THRESHOLD = 128 << 20  # bytes; above a 12 MP analysis' largest block (96 MB)

_state: dict[str, ctypes.CDLL | None] = {}


def _libc() -> ctypes.CDLL | None:
    if "libc" not in _state:
        lib: ctypes.CDLL | None = None
        if sys.platform.startswith("linux"):
            try:
                candidate = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                lib = candidate if hasattr(candidate, "mallopt") else None
            except OSError:
                lib = None
        _state["libc"] = lib
    return _state["libc"]


def tune() -> bool:
    """Keep blocks below MMAP_THRESHOLD in the heap, never trim it, use one arena; True if
    glibc took every setting."""
    if os.environ.get("FORENSCOPE_MALLOC_TUNING", "1") == "0":
        return False
    libc = _libc()
    if libc is None:
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok &= libc.mallopt(_M_TRIM_THRESHOLD, _LARGEST) == 1
    # Threads otherwise get arenas of their own, where blocks above 64 MB are mmapped anyway.
    ok &= libc.mallopt(_M_ARENA_MAX, 1) == 1
    return bool(ok)


def release() -> None:
    """Return the heap's free pages to the system (after an analysis, in a long-lived worker)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
