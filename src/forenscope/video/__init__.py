"""Video: sampled frames through the image analysis, temporal checks, face tracks and a clip
verdict (issue 17). `analyze_video(path)` returns a `forenscope.types.VideoReport`.

Names are loaded on first use, so a light submodule (`video.options`, which `forenscope analyze
--help` reads) does not pull in the analysis, numpy or PyAV."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DEFAULT_BUDGET": "options",
    "DEFAULT_MAX_SIDE": "options",
    "VIDEO_SUFFIXES": "decode",
    "VideoDecodeError": "limits",
    "VideoLimits": "limits",
    "VideoTooLargeError": "limits",
    "analyze_video": "analyze",
    "open_clip": "decode",
    "render_video_html": "report",
    "render_video_markdown": "report",
    "write_video_report": "report",
}

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_MAX_SIDE",
    "VIDEO_SUFFIXES",
    "VideoDecodeError",
    "VideoLimits",
    "VideoTooLargeError",
    "analyze_video",
    "open_clip",
    "render_video_html",
    "render_video_markdown",
    "write_video_report",
]

if TYPE_CHECKING:
    from .analyze import analyze_video
    from .decode import VIDEO_SUFFIXES, open_clip
    from .limits import VideoDecodeError, VideoLimits, VideoTooLargeError
    from .options import DEFAULT_BUDGET, DEFAULT_MAX_SIDE
    from .report import render_video_html, render_video_markdown, write_video_report


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forenscope.video' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
