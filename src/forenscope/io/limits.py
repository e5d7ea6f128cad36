"""Size limits checked before any pixel is decoded (decompression-bomb defence).

Besides the byte and pixel limits there is a memory budget: the peak memory of one analysis is
estimated from the pixel count in the header, and an image whose estimate is over the budget is
refused before a single pixel is decoded. The default budget is half the memory of the machine
(or of its cgroup), so the defaults fit the machine they run on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError, ImageTooLargeError

MAX_BYTES_ENV = "FORENSCOPE_MAX_BYTES"
MAX_PIXELS_ENV = "FORENSCOPE_MAX_PIXELS"
MAX_MEMORY_ENV = "FORENSCOPE_MAX_MEMORY_MB"

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_FRAMES = 10_000
DEFAULT_MAX_METADATA_BYTES = 4 * 1024 * 1024
MB = 1024 * 1024
# Peak RSS of the default analysis above the warm process (models loaded). Since the experts
# work in strips (issue 15) it grows far less than it did (69-135 bytes per pixel) and hardly
# with the expert threads: `benchmarks/bench_scaling.py --sizes 0.1,12,24,48 --real none
# --warm 0` measured 25, 20 and 17 bytes per pixel at 12, 24 and 48 MP with two threads, 26, 19
# and 18 with one, and 15 on a 16 MP camera JPEG. The estimate keeps about twice that, for
# content that makes an expert work harder (copy-move matches, faces) and for the decode's own
# buffers: a 48 MP photo fits the budget of an 8 GB machine (half of it), as it should.
BYTES_PER_PIXEL = 32
BYTES_PER_PIXEL_PER_EXTRA_THREAD = 8
ANALYSIS_OVERHEAD_BYTES = 64 * MB


@lru_cache(maxsize=1)
def machine_memory_bytes() -> int:
    """Physical memory, or the cgroup's limit when lower (containers); 8 GiB when unknown."""
    total = 8 * 1024 * MB
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    for cgroup in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(cgroup).read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and 0 < int(raw) < total:
            total = int(raw)
    return total


SYSFS_CPUS = Path("/sys/devices/system/cpu")


def usable_cores(physical: bool = False) -> int:
    """The cores this process may run on: its CPU affinity, as `taskset` or a container's cpuset
    restricts it, else the machine's count. With `physical`, hyperthreads of one core count
    once (read from sysfs; the logical count where that cannot be read)."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)
    if physical:
        cores = set()
        for cpu in cpus:
            topology = SYSFS_CPUS / f"cpu{cpu}" / "topology"
            try:
                package = (topology / "physical_package_id").read_text().strip()
                cores.add((package, (topology / "core_id").read_text().strip()))
            except OSError:
                return max(1, len(cpus))
        return max(1, len(cores))
    return max(1, len(cpus))


def default_memory_budget() -> int:
    """Half the machine: room for the rest of the process, the OS and other programs."""
    return max(256 * MB, machine_memory_bytes() // 2)


def default_memory_budget_mb() -> int:
    """`default_memory_budget` in MiB: the services' default, so a phone photo fits."""
    return default_memory_budget() // MB


def estimate_analysis_bytes(pixels: int, expert_threads: int = 1) -> int:
    """Estimated peak memory of analysing an image of `pixels` pixels, before decoding it."""
    extra_threads = max(1, expert_threads) - 1
    per_pixel = BYTES_PER_PIXEL + BYTES_PER_PIXEL_PER_EXTRA_THREAD * extra_threads
    return ANALYSIS_OVERHEAD_BYTES + pixels * per_pixel


@dataclass(frozen=True)
class Limits:
    """What `load_image` refuses. Every field must be positive.

    max_bytes: size of the encoded file.
    max_pixels: width * height of any frame, checked from the header before decoding.
    max_frames: frames walked when counting an animation (counting stops there).
    max_metadata_bytes: decoded size of one metadata blob (XMP packet, text chunk, EXIF value);
        larger blobs are dropped with a note rather than truncated into misleading text.
    max_memory_bytes: the memory budget of one analysis; the estimated peak
        (`estimate_analysis_bytes`) of a larger image is over it and the image is refused.
    expert_threads: experts that will run side by side on the image (the estimate grows with
        them).
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frames: int = DEFAULT_MAX_FRAMES
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES
    max_memory_bytes: int = field(default_factory=default_memory_budget)
    expert_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_frames", "max_metadata_bytes",
                     "max_memory_bytes", "expert_threads"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"Limits.{name} must be a positive integer, got {value!r}")

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, overridden by FORENSCOPE_MAX_BYTES / FORENSCOPE_MAX_PIXELS when set."""
        budget_mb = _env_int(MAX_MEMORY_ENV, 0)
        return cls(
            max_bytes=_env_int(MAX_BYTES_ENV, DEFAULT_MAX_BYTES),
            max_pixels=_env_int(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS),
            max_memory_bytes=budget_mb * MB if budget_mb else default_memory_budget(),
        )

    def estimated_bytes(self, width: int, height: int) -> int:
        return estimate_analysis_bytes(width * height, self.expert_threads)

    def check_bytes(self, size: int, name: str) -> None:
        if size > self.max_bytes:
            raise ImageTooLargeError(
                f"{name}: file is {size:,} bytes, over the limit of {self.max_bytes:,} bytes "
                f"(raise it with {MAX_BYTES_ENV} or Limits(max_bytes=...))"
            )

    def check_pixels(self, size: tuple[int, int], name: str, frame: int = 0) -> None:
        width, height = size
        pixels = width * height
        if pixels > self.max_pixels:
            where = f" (frame {frame})" if frame else ""
            raise ImageTooLargeError(
                f"{name}: image is {width}x{height} = {pixels:,} pixels{where}, over the limit "
                f"of {self.max_pixels:,} pixels; refused before decoding "
                f"(raise it with {MAX_PIXELS_ENV} or Limits(max_pixels=...))"
            )
        need = self.estimated_bytes(width, height)
        if need > self.max_memory_bytes:
            n = self.expert_threads
            threads = f" with {n} expert threads" if n > 1 else ""
            raise ImageTooLargeError(
                f"{name}: image is {width}x{height} = {pixels:,} pixels; analysing it{threads} "
                f"needs about {need // MB:,} MB, over the memory budget of "
                f"{self.max_memory_bytes // MB:,} MB; refused before decoding (raise the budget "
                f"with {MAX_MEMORY_ENV} or Limits(max_memory_bytes=...))"
            )


def _env_int(var: str, default: int) -> int:
    raw = os.environ.get(var, "").strip().replace("_", "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{var} must be a positive integer, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{var} must be a positive integer, got {raw!r}")
    return value
