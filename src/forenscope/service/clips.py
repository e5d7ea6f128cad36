"""Video clips in the service: which uploads are clips, and their analysis in a worker.

Which bytes are a clip is `video.dispatch.is_clip`'s decision (the one `forenscope analyze`
makes), applied to the upload written to a private temporary file. A clip is analysed by
`video.analyze_video` under `VideoLimits` (checked before any frame is decoded), in the same
worker processes and under the same per-item time limit as an image; its reports (JSON, the
HTML with its timeline, Markdown) are stored where an image's are.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..video.limits import VideoLimits, VideoTooLargeError
from .security import sniff_image

# GIF and WebP are clips only when animated: the suffix lets dispatch look for frames.
_ANIMATABLE = {"image/gif": ".gif", "image/webp": ".webp"}
CLIP_FILE = "clip.upload"


def is_clip_upload(data: bytes) -> bool:
    """True when `data` is a clip as `forenscope analyze` decides it (MP4, MOV, MKV, WebM,
    animated GIF or WebP), by its bytes, never by a client's name or declared type."""
    mime = sniff_image(data)
    if mime is not None and mime not in _ANIMATABLE:
        return False  # a still-image format: no need to write it out
    from ..video.dispatch import is_clip

    with tempfile.TemporaryDirectory(prefix="forenscope-sniff-") as folder:
        path = Path(folder) / ("upload" + _ANIMATABLE.get(mime or "", ""))
        path.write_bytes(data)
        return is_clip(path)


def clip_byte_limit(max_clip_bytes: int) -> int:
    """The bytes a clip upload may have: the server's setting, within the video limits."""
    return min(max_clip_bytes, VideoLimits.from_env().max_bytes)


def check_clip_bytes(size: int, max_clip_bytes: int, name: str = "upload") -> None:
    """VideoTooLargeError (413) for a clip over the clip byte limit."""
    limit = clip_byte_limit(max_clip_bytes)
    if size > limit:
        raise VideoTooLargeError(
            f"{name}: the clip is {size:,} bytes, over the server's clip limit of {limit:,} "
            "bytes (max_clip_bytes / FORENSCOPE_VIDEO_MAX_BYTES)"
        )


def analyze_clip_into(
    data: bytes, experts: Sequence[str] | None, threshold: float, threads: int | None,
    out_dir: str,
) -> None:  # fmt: skip
    """In a worker: analyse the clip and write what the API serves for it into `out_dir`:
    report.json (the VideoReport), report.html (with the timeline), report.md, index.json."""
    from ..video import analyze_video
    from ..video.report import render_video_html, render_video_markdown

    out = Path(out_dir)
    clip = out / CLIP_FILE
    clip.write_bytes(data)
    try:
        report = analyze_video(clip, experts=experts, threshold=threshold, threads=threads,
                               limits=VideoLimits.from_env())  # fmt: skip
    finally:
        clip.unlink(missing_ok=True)
    # The server's working path means nothing to a client.
    report = report.model_copy(update={"clip": report.clip.model_copy(update={"path": None})})
    (out / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (out / "report.md").write_text(render_video_markdown(report), encoding="utf-8")
    (out / "report.html").write_text(render_video_html(report), encoding="utf-8")
    (out / "index.json").write_text(json.dumps({"overlays": [], "kind": "clip"}),
                                    encoding="utf-8")  # fmt: skip
