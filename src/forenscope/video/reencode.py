"""Double encoding: the bit cost of each packet over time, read by the demuxer alone.

When a clip is decoded and encoded again with another keyframe interval, the frames that were
keyframes (I-frames) of the first encoding differ from their neighbours in a way the new
encoder must pay for: in the second encoding, every p-th inter frame costs several times the
bits of the others, with p the first encoding's keyframe interval (the "prediction footprint"
of video double-compression forensics). A periodic excess at a period that is not the clip's
own keyframe interval is that footprint.
"""

from __future__ import annotations

import numpy as np

from ..types import TemporalFinding
from .sample import DensePass
from .temporal import make_finding, when

MIN_PERIOD, MAX_PERIOD = 3, 60
MIN_PEAKS = 3  # spikes needed to call it periodic
SPIKE = 2.0  # a spike costs at least this many times the median P-frame
SHARE = 0.75  # ... on at least this share of the P-frames of its period and phase
I_FRAME, P_FRAME = 1, 2  # FFmpeg's picture types
INTER_CODECS = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "vp8", "vp9", "av1"})


def double_encoding(
    codec: str,
    frame_types: dict[int, tuple[int | None, int]],
    sizes: dict[int, int],
    dense: DensePass,
) -> list[TemporalFinding]:
    """At most one finding: the shortest period whose P-frames spike in step. Only P-frames
    are compared (B-frames are cheap by design, I-frames dear), and not the first P-frame after
    an I-frame (it is dear by design too). GIF and WebP have no motion-compensated prediction:
    a frame that holds still is cheap there, so they are not judged."""
    if codec not in INTER_CODECS:
        return []
    order = sorted(frame_types)
    kinds = np.array([frame_types[i][1] for i in order])
    costs = np.array([sizes.get(frame_types[i][0] or -1, 0) for i in order], dtype=np.float64)
    p_frames = (kinds == P_FRAME) & (costs > 0)
    after_i = np.zeros(len(order), bool)
    last_i = False
    for k, kind in enumerate(kinds):
        if kind == P_FRAME:
            after_i[k], last_i = last_i, False
        elif kind == I_FRAME:
            last_i = True
    usable = p_frames & ~after_i
    if usable.sum() < MIN_PERIOD * MIN_PEAKS:
        return []
    rel = costs / float(np.median(costs[usable]))
    own = _keyframe_interval(kinds == I_FRAME)
    for period in range(MIN_PERIOD, min(MAX_PERIOD, len(order) // MIN_PEAKS) + 1):
        if own and period % own == 0:
            continue
        found = _periodic(rel, usable, period)
        if found is not None:
            excess, peaks = found
            start, end = order[int(peaks[0])], order[int(peaks[-1])]
            return [make_finding(
                "reencoded", dense, start, end, None, excess / SPIKE, None,
                f"{when(dense, start, end)}: one frame in every {period} ({len(peaks)} times) "
                f"costs {excess:.1f}x the bits of the other P-frames, out of step with the clip's "
                f"own keyframes{f' (every {own})' if own else ''}: the footprint of an earlier "
                f"encoding with a keyframe every {period} frames, so the clip was encoded at "
                "least twice",
            )]  # fmt: skip
    return []


def _periodic(rel: np.ndarray, usable: np.ndarray, period: int) -> tuple[float, np.ndarray] | None:
    """(excess, spike positions) of the best phase of `period`, if its P-frames spike."""
    best: tuple[float, np.ndarray] | None = None
    for phase in range(period):
        pos = np.arange(phase, len(rel), period)
        pos = pos[usable[pos]]
        others = usable.copy()
        others[pos] = False
        if len(pos) < MIN_PEAKS or not others.any():
            continue
        spikes = rel[pos] >= SPIKE
        if spikes.mean() < SHARE:
            continue
        excess = float(np.median(rel[pos]) / np.median(rel[others]))
        if excess >= SPIKE and (best is None or excess > best[0]):
            best = (excess, pos[spikes])
    return best


def _keyframe_interval(key: np.ndarray) -> int:
    at = np.flatnonzero(key)
    return int(np.median(np.diff(at))) if len(at) >= 3 else 0
