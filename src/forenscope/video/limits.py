"""What a video must pass before a frame is decoded: bytes, streams, duration, frames, pixels.

The duration and frame count come from the container header, so a 10-hour clip is refused
without decoding it; the dense pass also counts frames as it goes and stops at the frame limit,
because a header can lie.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import ConfigError, InputError


class VideoDecodeError(InputError):
    """The file is not a decodable video (truncated, no video stream, not a video)."""


class VideoTooLargeError(InputError):
    """The clip is over a byte, stream, duration, frame or pixel limit; refused before decoding."""


ENV = {
    "max_bytes": "FORENSCOPE_VIDEO_MAX_BYTES",
    "max_duration_s": "FORENSCOPE_VIDEO_MAX_DURATION_S",
    "max_frames": "FORENSCOPE_VIDEO_MAX_FRAMES",
    "max_pixels": "FORENSCOPE_VIDEO_MAX_PIXELS",
    "max_streams": "FORENSCOPE_VIDEO_MAX_STREAMS",
}


@dataclass(frozen=True)
class VideoLimits:
    """max_bytes: encoded file size. max_duration_s: the container's duration. max_frames:
    frames in the header's estimate and in the dense pass. max_pixels: width * height of a
    frame. max_streams: streams of any kind (a file with 100 streams is refused)."""

    max_bytes: int = 500 * 1024 * 1024
    max_duration_s: float = 30 * 60.0
    max_frames: int = 60_000
    max_pixels: int = 3840 * 2160
    max_streams: int = 16

    def __post_init__(self) -> None:
        for name in ENV:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"VideoLimits.{name} must be positive, got {value!r}")

    @classmethod
    def from_env(cls) -> VideoLimits:
        values: dict[str, float] = {}
        for name, var in ENV.items():
            raw = os.environ.get(var, "").strip().replace("_", "")
            if not raw:
                continue
            try:
                values[name] = float(raw) if name == "max_duration_s" else int(raw)
            except ValueError:
                raise ConfigError(f"{var} must be a positive number, got {raw!r}") from None
        return cls(**values)  # type: ignore[arg-type]

    def check(self, name: str, what: str, value: float, limit_field: str, unit: str = "") -> None:
        limit = getattr(self, limit_field)
        if value > limit:
            raise VideoTooLargeError(
                f"{name}: {what} is {value:,.0f}{unit}, over the limit of {limit:,.0f}{unit}; "
                f"refused before decoding (raise it with {ENV[limit_field]} or "
                f"VideoLimits({limit_field}=...))"
            )
