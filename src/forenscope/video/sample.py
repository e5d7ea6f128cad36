"""The dense pass (a small gray thumbnail of every frame) and the choice of frames to analyse:
uniform over the clip plus the first frames of new shots, within a per-clip budget."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .decode import Clip
from .limits import VideoLimits

THUMB_WIDTH = 160
MAX_THUMBS = 3000  # longer clips keep every k-th thumbnail (temporal checks then see steps of k)
CUT_MIN_DIFF = 18.0  # mean absolute gray difference (0-255) of a hard cut, at least
CUT_MEDIAN_RATIO = 5.0  # ... and this many times the clip's typical frame-to-frame difference


@dataclass
class DensePass:
    thumbs: np.ndarray  # (T, h, w) uint8: every `stride`-th frame
    indices: list[int]  # frame number of each thumbnail
    times: list[float]  # seconds of each thumbnail
    frames: int  # frames decoded in all
    stride: int

    def time_of(self, frame: int) -> float:
        """Seconds of any frame number (interpolated between thumbnails)."""
        return float(np.interp(frame, self.indices, self.times)) if self.indices else 0.0


def thumb_size(width: int, height: int) -> tuple[int, int]:
    w = min(THUMB_WIDTH, width)
    h = max(2, round(height * w / max(width, 1)))
    return max(2, w - w % 2), h - h % 2


def dense_pass(clip: Clip, limits: VideoLimits) -> DensePass:
    """Decode every frame once at thumbnail size; stops with a clear error past `max_frames`."""
    info = clip.info
    stride = max(1, math.ceil(info.frames / MAX_THUMBS)) if info.frames else 1
    size = thumb_size(info.width, info.height)
    thumbs: list[np.ndarray] = []
    indices: list[int] = []
    times: list[float] = []
    count = 0
    for index, t, pixels in clip.frames(size=size, gray=True, keep=lambda i: i % stride == 0):
        count = index + 1
        limits.check(str(info.path), "the number of decoded frames", count, "max_frames")
        if pixels is not None:
            thumbs.append(pixels)
            indices.append(index)
            times.append(t)
    stack = np.stack(thumbs) if thumbs else np.zeros((0, size[1], size[0]), np.uint8)
    return DensePass(stack, indices, times, count, stride)


def scene_cuts(dense: DensePass) -> list[int]:
    """Frame numbers that start a new shot: a frame-to-frame difference far above the clip's
    typical one (a hard cut; dissolves are not found)."""
    if len(dense.thumbs) < 3:
        return []
    g = dense.thumbs.astype(np.float32)
    diffs = np.abs(np.diff(g, axis=0)).mean(axis=(1, 2))
    typical = float(np.median(diffs))
    cut_at = np.flatnonzero((diffs > CUT_MIN_DIFF) & (diffs > CUT_MEDIAN_RATIO * (typical + 0.5)))
    return [dense.indices[i + 1] for i in cut_at]


def choose_frames(frames: int, cuts: list[int], budget: int) -> list[tuple[int, str]]:
    """(frame, reason) sorted by frame: up to half the budget on the first frames of new shots
    (two frames in, past a transition), the rest uniform over the clip."""
    if frames <= 0 or budget <= 0:
        return []
    chosen: dict[int, str] = {}
    for cut in cuts[: budget // 2]:
        chosen[min(frames - 1, cut + 2)] = "scene_cut"
    uniform = budget - len(chosen)
    for k in range(uniform):
        frame = min(frames - 1, int((k + 0.5) * frames / uniform))
        chosen.setdefault(frame, "uniform")
    return sorted(chosen.items())


def analysis_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) of the analysed frames: the clip's, scaled down to `max_side`."""
    scale = min(1.0, max_side / max(width, height))
    w, h = max(16, round(width * scale)), max(16, round(height * scale))
    return w - w % 2, h - h % 2
