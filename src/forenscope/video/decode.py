"""Safe video input: checks from the container header, then frames on demand.

Containers and codecs are decoded by PyAV (FFmpeg in its wheels: MP4, MOV, MKV, WebM, GIF);
animated WebP, which FFmpeg's WebP decoder does not animate, goes through Pillow. The file is
opened as a regular file of checked size (no FIFO or device), hashed, and its header checked
against `VideoLimits` before a single frame is decoded. Each pass over the frames re-opens the
demuxer, so only what a pass keeps is held in memory.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import InputError, MissingDependencyError
from ..io.image import open_regular_file, stream_sha256
from ..types import ClipInfo
from .limits import VideoDecodeError, VideoLimits

# FFmpeg demuxers we accept; anything else (a still JPEG opens as "image2") is refused.
VIDEO_DEMUXERS = {
    "mov,mp4,m4a,3gp,3g2,mj2": "MP4/MOV",
    "matroska,webm": "MKV/WebM",
    "gif": "GIF",
}
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".gif", ".webp"}
MAX_TAG_CHARS = 300
Size = tuple[int, int]  # (width, height)


@dataclass
class Clip:
    """An opened, checked clip. `frames()` decodes a new pass each time it is called."""

    info: ClipInfo
    handle: IO[bytes]
    backend: str  # "av" or "pillow"
    notes: list[str] = field(default_factory=list)
    # frame number -> (pts, picture type: 1 I, 2 P, 3 B), filled by every PyAV pass
    frame_types: dict[int, tuple[int | None, int]] = field(default_factory=dict)

    def frames(
        self,
        *,
        size: Size | None = None,
        gray: bool = False,
        keep: Callable[[int], bool] | None = None,
    ) -> Iterator[tuple[int, float, np.ndarray | None]]:
        """(index, time in s, pixels) for every frame; pixels only where `keep(index)` (all when
        None), scaled to `size`, as uint8 gray (H, W) or RGB (H, W, 3)."""
        self.handle.seek(0)
        if self.backend == "pillow":
            yield from _pillow_frames(self, size, gray, keep)
        else:
            yield from _av_frames(self, size, gray, keep)


def packet_sizes(clip: Clip) -> dict[int, int]:
    """Bytes of every video packet, keyed by its presentation timestamp, read by the demuxer
    alone: no frame is decoded. Empty for animated WebP (one Pillow image, no packets)."""
    if clip.backend != "av":
        return {}
    av = _av()
    clip.handle.seek(0)
    out: dict[int, int] = {}
    with av.open(clip.handle, mode="r", metadata_errors="replace") as container:
        try:
            for packet in container.demux(container.streams.video[0]):
                if packet.size and packet.pts is not None:
                    out[int(packet.pts)] = int(packet.size)
        except av.error.FFmpegError:
            pass  # a damaged tail: the packets read so far still count (the notes say why)
    return out


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise MissingDependencyError("video decoding", "av", "video") from None
    return av


@contextmanager
def open_clip(path: str | Path, limits: VideoLimits | None = None) -> Iterator[Clip]:
    """Open, hash and check a clip; raises InputError, VideoTooLargeError or VideoDecodeError,
    each naming the file, before any frame is decoded."""
    limits = limits or VideoLimits.from_env()
    name = str(path)
    if name.startswith(("http://", "https://")):
        raise InputError(f"{name}: looks like a URL; video analysis reads local files only")
    with open_regular_file(Path(path), limits.max_bytes) as (fh, size):
        if size == 0:
            raise VideoDecodeError(f"{name}: empty file (0 bytes), not a video")
        sha = stream_sha256(fh)
        fh.seek(0)
        head = fh.read(16)
        fh.seek(0)
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            info = _probe_pillow(fh, name, size, sha, limits)
            yield Clip(info=info, handle=fh, backend="pillow")
        else:
            info = _probe_av(fh, name, size, sha, limits)
            yield Clip(info=info, handle=fh, backend="av")


def _tags(*dicts: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for d in dicts:
        for k, v in d.items():
            out.setdefault(str(k).lower(), str(v)[:MAX_TAG_CHARS])
    return out


def _probe_av(fh: IO[bytes], name: str, size: int, sha: str, limits: VideoLimits) -> ClipInfo:
    av = _av()
    try:
        container = av.open(fh, mode="r", metadata_errors="replace")
    except av.error.FFmpegError as exc:
        raise VideoDecodeError(
            f"{name}: not a readable video container ({_ffmpeg_reason(exc)}); the file may be "
            "truncated, damaged or of another type"
        ) from None
    with container:
        demuxer = container.format.name
        if demuxer not in VIDEO_DEMUXERS:
            raise VideoDecodeError(
                f"{name}: the file is '{demuxer}' ({container.format.long_name}), not a video "
                f"container Forenscope reads ({', '.join(sorted(set(VIDEO_DEMUXERS.values())))}"
                ", animated WebP); analyse still images with `forenscope analyze`"
            )
        streams = len(container.streams)
        limits.check(name, "the number of streams", streams, "max_streams")
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise VideoDecodeError(
                f"{name}: no video stream (streams: {', '.join(kinds)}); nothing to analyse"
            )
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        if width <= 0 or height <= 0:
            raise VideoDecodeError(f"{name}: the video stream has no frame size ({width}x{height})")
        limits.check(name, f"a frame of {width}x{height}", width * height, "max_pixels", " px")
        duration = _duration(container, stream)
        limits.check(name, "the duration", duration, "max_duration_s", " s")
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 0.0
        estimate = int(stream.frames or round(duration * fps))
        limits.check(name, "the frame count in the header", estimate, "max_frames")
        return ClipInfo(
            path=name, sha256=sha, bytes=size, container=demuxer,
            codec=str(stream.codec_context.name), width=width, height=height, fps=fps,
            duration_s=duration, frames=estimate, streams=streams,
            audio_streams=len(container.streams.audio),
            tags=_tags(dict(container.metadata), dict(stream.metadata)),
        )  # fmt: skip


def _duration(container: Any, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000
    return 0.0


def _ffmpeg_reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc).strip()


def _scaled(size: Size | None, width: int, height: int) -> Size:
    return size or (width, height)


def _av_frames(
    clip: Clip, size: Size | None, gray: bool, keep: Callable[[int], bool] | None
) -> Iterator[tuple[int, float, np.ndarray | None]]:
    av = _av()
    info = clip.info
    fps = info.fps or 25.0
    index = -1
    with av.open(clip.handle, mode="r", metadata_errors="replace") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                index += 1
                clip.frame_types[index] = (frame.pts, int(frame.pict_type))
                t = float(frame.time) if frame.time is not None else index / fps
                if keep is not None and not keep(index):
                    yield index, t, None
                    continue
                w, h = _scaled(size, frame.width, frame.height)
                fmt = "gray" if gray else "rgb24"
                pixels = frame.reformat(width=w, height=h, format=fmt, interpolation="AREA")
                yield index, t, pixels.to_ndarray()
        except av.error.FFmpegError as exc:
            clip.notes.append(
                f"decoding stopped after frame {index} ({_ffmpeg_reason(exc)}): the file is "
                "damaged or truncated; later frames were not analysed"
            )


def _probe_pillow(fh: IO[bytes], name: str, size: int, sha: str, limits: VideoLimits) -> ClipInfo:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(fh) as im:
            width, height = im.size
            limits.check(name, f"a frame of {width}x{height}", width * height, "max_pixels", " px")
            frames = int(getattr(im, "n_frames", 1))
            limits.check(name, "the frame count", frames, "max_frames")
            if frames < 2:
                raise VideoDecodeError(
                    f"{name}: a still WebP image, not an animation; analyse it with "
                    "`forenscope analyze`"
                )
            total_ms = 0
            for i in range(frames):
                im.seek(i)
                total_ms += int(im.info.get("duration", 0) or 0)
    except (UnidentifiedImageError, OSError, EOFError, SyntaxError) as exc:
        raise VideoDecodeError(f"{name}: not a readable animated WebP ({exc})") from None
    duration = total_ms / 1000 or frames / 10
    limits.check(name, "the duration", duration, "max_duration_s", " s")
    return ClipInfo(
        path=name, sha256=sha, bytes=size, container="webp", codec="webp", width=width,
        height=height, fps=frames / duration, duration_s=duration, frames=frames, streams=1,
    )  # fmt: skip


def _pillow_frames(
    clip: Clip, size: Size | None, gray: bool, keep: Callable[[int], bool] | None
) -> Iterator[tuple[int, float, np.ndarray | None]]:
    from PIL import Image

    data = io.BytesIO(clip.handle.read())
    t = 0.0
    with Image.open(data) as im:
        for index in range(int(getattr(im, "n_frames", 1))):
            im.seek(index)
            if keep is not None and not keep(index):
                yield index, t, None
            else:
                frame = im.convert("L" if gray else "RGB")
                w, h = _scaled(size, *frame.size)
                if (w, h) != frame.size:
                    frame = frame.resize((w, h), Image.Resampling.BOX)
                yield index, t, np.asarray(frame, dtype=np.uint8)
            t += int(im.info.get("duration", 0) or 0) / 1000
