"""How many worker processes `forenscope analyze -j auto` (the default) runs a folder with.

One process analysing one image runs its experts in two threads, but they keep only about 1.4
of 2 cores busy (the experts' lengths differ and they hand the GIL to each other). Worker
processes of one expert thread each, one per core, keep the cores busy: on 2 cores a folder of
12 camera JPEGs goes x1.5-1.6 faster (`benchmarks/bench_throughput.py`). A single file, or a
handful, still run in this process with their experts in threads, which is faster than
starting workers for them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from .io.limits import MB, Limits, estimate_analysis_bytes, usable_cores

# A worker process spends about 0.9 s of CPU starting (imports, the CLIP session) before its
# first image, so a small folder is faster in this process: on 2 cores, 2 workers against one
# process took 2.0-2.6 vs 1.5-1.7 s for 2 Kodak PNGs, 2.5-3.0 vs 2.5-3.0 s for 4, were even
# for 6 Kodak PNGs or 2 camera JPEGs of 3 MP, and x1.2-1.6 faster for 12 of either.
MIN_FILES_PER_PROCESS = 4
# What a worker holds besides the image's analysis: the interpreter, the modules and the loaded
# models (VmRSS of a process after analysing a 0.25 MP image: 376-415 MB on this machine).
WORKER_RESIDENT_BYTES = 400 * MB


def auto_jobs(paths: Sequence[Path], limits: Limits | None = None) -> int:
    """Worker processes for analysing `paths`: one per usable core, each with at least
    MIN_FILES_PER_PROCESS files, and no more than the memory budget holds when each of them,
    its models loaded, analyses the largest image (its size read from the file's header; the
    budget is shared by the processes, see `batch.batch_limits`). 1 means: analyse in this
    process, the experts in threads."""
    jobs = min(usable_cores(), len(paths) // MIN_FILES_PER_PROCESS)
    if jobs <= 1:
        return 1
    limits = limits or Limits.from_env()
    budget = limits.max_memory_bytes
    # An image over the pixel limit, or too large for the whole budget, is refused before
    # decoding however many processes run: it needs no memory.
    sizes = [
        px for px in map(header_pixels, paths)
        if px <= limits.max_pixels and estimate_analysis_bytes(px) <= budget
    ]  # fmt: skip
    need = WORKER_RESIDENT_BYTES + estimate_analysis_bytes(max(sizes, default=0))
    while jobs > 1 and need > budget // jobs:
        jobs -= 1
    return jobs


def header_pixels(path: Path) -> int:
    """width * height from the image's header (no pixel is decoded); 0 when Pillow cannot read
    it, as the analysis will then report."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a decompression-bomb warning: the analysis refuses
            with Image.open(path) as im:
                width, height = im.size
    except Exception:  # any unreadable file: its own analysis gives the error
        return 0
    return width * height
