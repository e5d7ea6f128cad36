"""Video: sampled frames through the image analysis, temporal checks, face tracks and a clip
verdict (issue 17). `analyze_video(path)` returns a `forenscope.types.VideoReport`."""

from .analyze import DEFAULT_BUDGET, DEFAULT_MAX_SIDE, analyze_video
from .decode import VIDEO_SUFFIXES, open_clip
from .limits import VideoDecodeError, VideoLimits, VideoTooLargeError
from .report import render_video_html, render_video_markdown, write_video_report

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
