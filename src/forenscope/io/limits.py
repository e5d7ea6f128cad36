"""Size limits checked before any pixel is decoded (decompression-bomb defence)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import ConfigError, ImageTooLargeError

MAX_BYTES_ENV = "FORENSCOPE_MAX_BYTES"
MAX_PIXELS_ENV = "FORENSCOPE_MAX_PIXELS"

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_FRAMES = 10_000
DEFAULT_MAX_METADATA_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What `load_image` refuses. Every field must be positive.

    max_bytes: size of the encoded file.
    max_pixels: width * height of any frame, checked from the header before decoding.
    max_frames: frames walked when counting an animation (counting stops there).
    max_metadata_bytes: decoded size of one metadata blob (XMP packet, text chunk, EXIF value);
        larger blobs are dropped with a note rather than truncated into misleading text.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_frames: int = DEFAULT_MAX_FRAMES
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_frames", "max_metadata_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"Limits.{name} must be a positive integer, got {value!r}")

    @classmethod
    def from_env(cls) -> Limits:
        """Defaults, overridden by FORENSCOPE_MAX_BYTES / FORENSCOPE_MAX_PIXELS when set."""
        return cls(
            max_bytes=_env_int(MAX_BYTES_ENV, DEFAULT_MAX_BYTES),
            max_pixels=_env_int(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS),
        )

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
