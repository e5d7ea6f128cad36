"""One clip: open and check -> dense pass (thumbnails, scene cuts) -> sampled frames through
the image analysis -> temporal checks and face tracks -> clip verdict -> VideoReport."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from ..io import ImageInput
from ..pipeline import analysis_config, analyze_image, default_experts
from ..types import FaceTrack, FrameResult, TemporalFinding, VideoReport
from .blinks import blink_rates
from .decode import Clip, open_clip, packet_sizes
from .explain import explain_clip
from .face_tracks import check_jumps, link_tracks, name_faces, outline_flicker
from .limits import VideoDecodeError, VideoLimits
from .options import DEFAULT_BUDGET, DEFAULT_MAX_SIDE
from .provenance import c2pa_evidence, container_evidence
from .reencode import double_encoding
from .sample import DensePass, analysis_size, choose_frames, dense_pass, scene_cuts, thumb_size
from .temporal import flicker, interpolated_frames, local_spans, oscillation, warp_residual
from .verdict import clip_verdict

FLOW_SIDE = 480  # optical flow runs at this longer side
SHORT_SHARE = 0.9  # fewer decoded frames than this share of the header's count: truncated
# Experts that read the file's bytes (EXIF, C2PA, text chunks): a decoded frame has none, and
# the clip's own container provenance is read from the file instead (provenance.py).
FILE_EXPERTS = frozenset({"c2pa", "exif", "generator_metadata"})

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def frame_experts(experts: Sequence[str] | None) -> list[str]:
    names = list(experts) if experts is not None else default_experts()
    return [n for n in names if n not in FILE_EXPERTS]


def analyze_video(
    path: str | os.PathLike[str],
    *,
    budget: int = DEFAULT_BUDGET,
    max_side: int = DEFAULT_MAX_SIDE,
    experts: Sequence[str] | None = None,
    threshold: float = 0.5,
    threads: int | None = None,
    limits: VideoLimits | None = None,
    progress: Progress | None = None,
) -> VideoReport:
    """Analyse one clip (MP4, MOV, MKV, WebM, animated GIF or WebP) and return its VideoReport.

    Raises InputError (VideoTooLargeError, VideoDecodeError) before decoding when the file is
    not a video Forenscope reads or is over `limits`.
    """
    if budget < 1 or max_side < 32:
        raise ValueError("budget must be >= 1 and max_side >= 32")
    limits = limits or VideoLimits.from_env()
    names = frame_experts(experts)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with open_clip(Path(path), limits) as clip:
        timings["probe_s"] = time.perf_counter() - start
        t = time.perf_counter()
        announced = clip.info.frames  # the header's count (or duration x fps)
        dense = dense_pass(clip, limits)
        clip.info = clip.info.model_copy(update={"frames": dense.frames})
        if announced and dense.frames < SHORT_SHARE * announced:
            clip.notes.append(
                f"only {dense.frames} of the {announced} frames the header announces could be "
                "decoded: the file ends early (truncated?) or is damaged"
            )
        cuts = scene_cuts(dense)
        timings["dense_pass_s"] = time.perf_counter() - t
        if dense.frames == 0:
            raise VideoDecodeError(f"{path}: the video stream holds no decodable frame")
        picks = choose_frames(dense.frames, cuts, budget)
        size = analysis_size(clip.info.width, clip.info.height, max_side)
        t = time.perf_counter()
        frames_rgb, pairs = _sampled_frames(clip, picks, size)
        timings["decode_sampled_s"] = time.perf_counter() - t
        frames = _analyse_frames(frames_rgb, picks, dense, names, threshold, threads, progress)
        timings["frames_s"] = sum(fr.report.timings.get("total_s", 0.0) for fr in frames)
        notes = list(dict.fromkeys(clip.notes))  # each pass may say the same thing
        t = time.perf_counter()
        temporal, tracks = _temporal(clip, dense, cuts, frames, pairs)
        timings["temporal_s"] = time.perf_counter() - t
        provenance = container_evidence(clip.info)
        c2pa, why = c2pa_evidence(Path(path), clip.info)
        provenance += c2pa
        notes += [why] if why else []
        info = clip.info
    notes += _notes(info.frames, dense.stride, size, info.width, info.height, len(frames))
    report = VideoReport(
        forenscope_version=__version__,
        analysis_config={
            **(analysis_config(frames[0].report.experts, threshold) if frames else {}),
            "budget": budget,
            "max_side": max_side,
            "frame_experts": names,
        },  # fmt: skip
        clip=info,
        verdict=clip_verdict(frames, temporal, provenance),
        frames=frames,
        scene_cuts=cuts,
        temporal=temporal,
        face_tracks=tracks,
        provenance=provenance,
        notes=notes,
        errors=[e for fr in frames for e in fr.report.errors],
    )
    explanation = explain_clip(report)  # reads the finished report, so it is added last
    timings["total_s"] = time.perf_counter() - start
    rounded = {k: round(v, 3) for k, v in timings.items()}
    return report.model_copy(update={"explanation": explanation, "timings": rounded})


def _sampled_frames(
    clip: Clip, picks: list[tuple[int, str]], size: tuple[int, int]
) -> tuple[dict[int, np.ndarray], list[tuple[int, np.ndarray, np.ndarray]]]:
    """The sampled frames at analysis size, and (frame, gray, next gray) at flow size."""
    wanted = {f for f, _ in picks}
    wanted_next = {f + 1 for f in wanted}
    rgb: dict[int, np.ndarray] = {}
    gray: dict[int, np.ndarray] = {}
    for index, _t, pixels in clip.frames(size=size, keep=lambda i: i in wanted or i in wanted_next):
        if pixels is None:
            continue
        if index in wanted:
            rgb[index] = pixels
        gray[index] = _flow_gray(pixels)
    pairs = [(f, gray[f], gray[f + 1]) for f in sorted(wanted) if f in gray and f + 1 in gray]
    return rgb, pairs


def _flow_gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, FLOW_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(8, round(w * scale)), max(8, round(h * scale))),
                       interpolation=cv2.INTER_AREA)  # fmt: skip
    return np.asarray(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))


def _analyse_frames(
    frames_rgb: dict[int, np.ndarray], picks: list[tuple[int, str]], dense: DensePass,
    names: list[str], threshold: float, threads: int | None, progress: Progress | None,
) -> list[FrameResult]:  # fmt: skip
    out: list[FrameResult] = []
    todo = [(f, why) for f, why in picks if f in frames_rgb]
    for done, (index, reason) in enumerate(todo):
        rgb = frames_rgb[index]
        image = ImageInput(rgb=rgb, data=rgb.tobytes(), format="PNG", mode="RGB",
                           notes=[f"video frame {index}"])  # fmt: skip
        report = analyze_image(image, experts=names, threshold=threshold, threads=threads)
        out.append(FrameResult(
            index=index, time_s=round(dense.time_of(index), 3), reason=reason,
            analysed_width=image.width, analysed_height=image.height, report=report, rgb=rgb,
        ))  # fmt: skip
        if progress is not None:
            progress("frames", done + 1, len(todo))
    return out


def _temporal(
    clip: Clip, dense: DensePass, cuts: list[int], frames: list[FrameResult],
    pairs: list[tuple[int, np.ndarray, np.ndarray]],
) -> tuple[list[TemporalFinding], list[FaceTrack]]:  # fmt: skip
    w, h = clip.info.width, clip.info.height
    osc = oscillation(dense, cuts)
    found = local_spans(dense, cuts, w, h) + flicker(dense, cuts, w, h, osc)
    found += warp_residual(pairs, dense, w, h) + interpolated_frames(dense, cuts)
    found += double_encoding(clip.info.codec, clip.frame_types, packet_sizes(clip), dense)
    tracks = blink_rates(clip, link_tracks(frames, w), dense, [fr.index for fr in frames])
    found += outline_flicker(tracks, dense, osc, thumb_size(w, h)[0] / w)
    found = name_faces(found, tracks)
    found += check_jumps(tracks, dense)
    found.sort(key=lambda f: (f.frame_start, -f.strength))
    return found, tracks


def _notes(frames: int, stride: int, size: tuple[int, int], w: int, h: int, n: int) -> list[str]:
    notes = [f"{n} of {frames} frames analysed by the image experts"]
    if size != (w, h):
        notes.append(f"frames analysed scaled down from {w}x{h} to {size[0]}x{size[1]}")
    if stride > 1:
        notes.append(f"temporal checks see every {stride}th frame (long clip)")
    return notes
