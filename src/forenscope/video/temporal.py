"""Temporal checks on the dense pass (a gray thumbnail of every frame) and on neighbouring
frame pairs: where and when something changes that ordinary motion does not explain.

- local_span: content that appears abruptly in one place and vanishes abruptly in the same
  place later (a region pasted for a span of frames), and unpaired abrupt local changes;
- flicker: a region whose brightness oscillates frame to frame (up, down, up) instead of
  moving, the "boiling" of generated video and of blended face swaps;
- interpolation: frames that are the average of their neighbours while the picture moves;
- warp_residual: optical flow (OpenCV DIS) from one sampled frame to the next, and the region
  the flow cannot explain (what motion does not carry from one frame to the next).

Every threshold is in gray levels (0-255) at thumbnail size, or a ratio to the clip's own
typical level, so a clip is compared with itself, not with other clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..fusion.localize import position_words, size_words
from ..types import BBox, TemporalFinding
from .sample import DensePass

STEP_MIN_LEVEL = 14.0  # gray levels a pixel must jump at once to count as an abrupt change
STEP_RATIO = 4.0  # ... and this many times its usual frame-to-frame change around that time
STEP_WINDOW = 5  # frames each side that define "usual"
MIN_AREA_SHARE = 0.003  # smaller events are noise at thumbnail size
MAX_AREA_SHARE = 0.6  # larger ones are global (a cut, a fade, an exposure change)
STEP_HOLD = 2  # frames before and after a step that must be still
STEP_STILL = 0.25  # ... changing less than this share of the jump
PAIR_IOU = 0.5  # an onset and an offset this aligned are one pasted span
SPAN_STRENGTH = 1.5  # a span this clear suggests an edit; weaker ones are listed only
CHANGE_STRENGTH = 2.0  # unpaired steps weaker than this are not reported
HELD_LEVEL = 0.2  # mean gray change under which a frame repeats the one before
FLICKER_LEVEL = 5.0  # gray levels of each swing of an oscillation
FLICKER_RATE = 0.25  # share of frames that oscillate, for a region to flicker
WARP_RATIO = 6.0  # residual this many times the frame's typical residual is unexplained
BLEND_MOTION = 3.0  # mean gray change across a frame for a blend to be visible
BLEND_RATIO = 0.08  # a frame this close to the average of its neighbours (share of motion)
BLEND_MARGIN = 2.0  # ... and this many times closer to it than to its flow-warped neighbours
BLEND_BORDER = 4  # thumbnail pixels at each edge left out of that comparison (content enters)
BLEND_GAP = 3  # flagged frames this close form one span
BLEND_MIN_FRAMES = 3


@dataclass
class Geometry:
    """Thumbnail to clip pixels, and the words for a box."""

    width: int
    height: int
    thumb_w: int
    thumb_h: int

    def bbox(self, sl: tuple[slice, slice]) -> BBox:
        sx, sy = self.width / self.thumb_w, self.height / self.thumb_h
        y, x = sl
        return BBox(
            x=int(x.start * sx), y=int(y.start * sy),
            width=max(1, int((x.stop - x.start) * sx)), height=max(1, int((y.stop - y.start) * sy)),
        )  # fmt: skip

    def where(self, box: BBox) -> str:
        rel = (box.x / self.width, box.y / self.height,
               box.width / self.width, box.height / self.height)  # fmt: skip
        phrase, prep = position_words(rel)
        size = size_words(min(1.0, rel[2] * rel[3])).split(" (")[0]
        return f"a {size} area {prep} {phrase}".replace("  ", " ").strip()


def when(dense: DensePass, start: int, end: int) -> str:
    t0, t1 = dense.time_of(start), dense.time_of(end)
    if start == end:
        return f"frame {start} ({t0:.2f} s)"
    return f"frames {start}-{end} ({t0:.2f}-{t1:.2f} s)"


def box_iou(a: BBox, b: BBox) -> float:
    ix = max(0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
    iy = max(0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union else 0.0


def _gray(dense: DensePass) -> np.ndarray:
    blurred: np.ndarray = ndimage.uniform_filter(dense.thumbs.astype(np.float32), size=(1, 3, 3))
    return blurred


def _distinct(dense: DensePass) -> tuple[np.ndarray, list[int]]:
    """The blurred thumbnails without repeats (GIFs and frame-rate conversions hold frames; a
    held frame would make every change look abrupt), and their frame numbers."""
    g = _gray(dense)
    if len(g) < 2:
        return g, list(dense.indices)
    moved = np.abs(np.diff(g, axis=0)).mean(axis=(1, 2)) > HELD_LEVEL
    keep = [0, *(int(k) + 1 for k in np.flatnonzero(moved))]
    return g[keep], [dense.indices[k] for k in keep]


def _near_cut(t: int, cut_rows: set[int]) -> bool:
    return any(abs(t - c) <= 1 for c in cut_rows)


def _components(mask: np.ndarray, weight: np.ndarray) -> list[tuple[tuple[slice, slice], float]]:
    """(slices, mean weight) of each connected blob of a plausible local size."""
    labels, n = ndimage.label(ndimage.binary_closing(mask, iterations=1))
    area = mask.size
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        blob = labels[sl] == i
        share = blob.sum() / area
        if MIN_AREA_SHARE <= share <= MAX_AREA_SHARE:
            out.append((sl, float(weight[sl][blob].mean())))
    return out


def step_events(dense: DensePass, cuts: list[int]) -> list[tuple[int, BBox, float]]:
    """(frame, box, strength) of abrupt local steps: a blob jumps far above its usual
    frame-to-frame change, and is still (changes under STEP_STILL of that jump) in the
    STEP_HOLD frames before and after. A hand or a face moving through a place keeps changing
    it, so it is not a step; a region pasted in or removed at once is."""
    if len(dense.thumbs) < 4 or dense.stride != 1:
        return []
    geo = _geometry(dense)
    g, indices = _distinct(dense)
    d = np.abs(np.diff(g, axis=0))  # d[k] = change from thumbnail k to k+1
    cut_rows = {indices.index(c) - 1 for c in cuts if c in indices}
    events = []
    for k in range(len(d)):
        if _near_cut(k, cut_rows):
            continue
        lo, hi = max(0, k - STEP_WINDOW), min(len(d), k + STEP_WINDOW + 1)
        around = np.concatenate([d[lo:k], d[k + 1 : hi]])
        usual = np.median(around, axis=0) if len(around) else np.zeros_like(d[k])
        ratio = d[k] / (usual + 2.0)
        mask = (d[k] > STEP_MIN_LEVEL) & (ratio > STEP_RATIO)
        for sl, _strength in _components(mask, ratio):
            blob = np.zeros(mask.shape, bool)
            blob[sl] = mask[sl]
            jump = float(d[k][blob].mean())
            before = [float(d[j][blob].mean()) for j in range(max(0, k - STEP_HOLD), k)]
            after = [float(d[j][blob].mean()) for j in range(k + 1, min(len(d), k + 1 + STEP_HOLD))]
            still = max(before + after, default=jump)
            if before and after and still < STEP_STILL * jump:
                strength = min(10.0, STEP_STILL * jump / (still + 0.5))
                events.append((indices[k + 1], geo.bbox(sl), strength))
    return events


def _geometry(dense: DensePass, width: int | None = None, height: int | None = None) -> Geometry:
    th, tw = dense.thumbs.shape[1:3]
    return Geometry(width or tw, height or th, tw, th)


def local_spans(
    dense: DensePass, cuts: list[int], width: int, height: int
) -> list[TemporalFinding]:
    """Pair each abrupt onset with the next abrupt change at the same place: the content that
    was there in between appeared and vanished at once. Unpaired onsets are reported alone."""
    geo = _geometry(dense, width, height)
    scale = Geometry(width, height, *dense.thumbs.shape[2:0:-1])
    events = [(f, _scale_box(b, scale), s) for f, b, s in step_events(dense, cuts)]
    used: set[int] = set()
    findings: list[TemporalFinding] = []
    for i, (f1, b1, s1) in enumerate(events):
        if i in used:
            continue
        partner = next(
            (j for j in range(i + 1, len(events))
             if j not in used and events[j][0] > f1 + 1 and box_iou(b1, events[j][1]) >= PAIR_IOU),
            None,
        )  # fmt: skip
        if partner is not None:
            used.update({i, partner})
            f2, b2, s2 = events[partner]
            box = _union(b1, b2)
            strength = min(s1, s2)
            findings.append(make_finding(
                "local_span", dense, f1, f2 - 1, box, strength,
                "tampered" if strength >= SPAN_STRENGTH else None,
                f"{geo.where(box)}, {when(dense, f1, f2 - 1)}: new content appears there at once "
                f"and vanishes at once {f2 - f1} frames later, with no motion leading in or out "
                "(what a region pasted over a span of frames does)",
            ))  # fmt: skip
        elif s1 >= CHANGE_STRENGTH:
            used.add(i)
            findings.append(make_finding(
                "local_change", dense, f1, f1, b1, s1, None,
                f"{geo.where(b1)}, {when(dense, f1, f1)}: changes abruptly while the rest of "
                "the frame does not (an edit boundary, an object entering fast, or a lighting "
                "switch)",
            ))  # fmt: skip
    return findings


def _scale_box(box: BBox, geo: Geometry) -> BBox:
    return geo.bbox(
        (slice(box.y, box.y + box.height), slice(box.x, box.x + box.width))
    )  # thumbnail px -> clip px


def _union(a: BBox, b: BBox) -> BBox:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    x1, y1 = max(a.x + a.width, b.x + b.width), max(a.y + a.height, b.y + b.height)
    return BBox(x=x0, y=y0, width=x1 - x0, height=y1 - y0)


def make_finding(
    kind: str, dense: DensePass, start: int, end: int, box: BBox | None, strength: float,
    suggests: str | None, summary: str, face_track: int | None = None,
) -> TemporalFinding:  # fmt: skip
    return TemporalFinding.model_validate({
        "kind": kind, "summary": summary[0].upper() + summary[1:], "frame_start": start,
        "frame_end": end, "time_start_s": round(dense.time_of(start), 3),
        "time_end_s": round(dense.time_of(end), 3), "bbox": box,
        "strength": round(float(strength), 3), "suggests": suggests, "face_track": face_track,
    })  # fmt: skip


def oscillation(dense: DensePass, cuts: list[int]) -> np.ndarray:
    """(T-2, h, w) bool: the pixel swings up then down (or down then up) by FLICKER_LEVEL or
    more on both sides of that frame; motion past a pixel changes it one way, not back."""
    if len(dense.thumbs) < 3:
        return np.zeros((0, *dense.thumbs.shape[1:]), bool)
    g = _gray(dense)
    d = np.diff(g, axis=0)
    osc = (np.abs(d[:-1]) > FLICKER_LEVEL) & (np.abs(d[1:]) > FLICKER_LEVEL)
    osc &= np.sign(d[:-1]) != np.sign(d[1:])
    cut_rows = {dense.indices.index(c) - 1 for c in cuts if c in dense.indices}
    for c in cut_rows:
        osc[max(0, c - 1) : c + 2] = False
    return osc


def flicker(
    dense: DensePass, cuts: list[int], width: int, height: int, osc: np.ndarray | None = None
) -> list[TemporalFinding]:
    """Regions that oscillate on at least FLICKER_RATE of the frames, and the span where they
    do."""
    osc = oscillation(dense, cuts) if osc is None else osc
    if len(osc) < 4:
        return []
    geo = _geometry(dense, width, height)
    scale = Geometry(width, height, osc.shape[2], osc.shape[1])
    rate = osc.mean(axis=0)
    findings = []
    for sl, mean_rate in _components(rate >= FLICKER_RATE, rate):
        per_frame = osc[(slice(None), *sl)].mean(axis=(1, 2))
        active = np.flatnonzero(per_frame >= FLICKER_RATE)
        start, end = dense.indices[active[0] + 1], dense.indices[active[-1] + 1]
        box = scale.bbox(sl)
        findings.append(make_finding(
            "flicker", dense, start, end, box, mean_rate / FLICKER_RATE, None,
            f"{geo.where(box)}, {when(dense, start, end)}: brightness swings up and down frame "
            f"to frame on {100 * mean_rate:.0f}% of the frames instead of moving (texture that "
            "'boils', as in generated or blended video; also strong sensor noise)",
        ))  # fmt: skip
    return findings


def warp_residual(
    pairs: list[tuple[int, np.ndarray, np.ndarray]], dense: DensePass, width: int, height: int
) -> list[TemporalFinding]:
    """For each (frame, this frame, next frame) in gray: DIS optical flow from this frame to
    the next, the next frame warped back, and a region the flow cannot explain."""
    findings = []
    dis = _dis()
    for frame, a, b in pairs:
        h, w = a.shape
        warped = _pulled_back(dis, a, b, b)
        residual = ndimage.uniform_filter(np.abs(a.astype(np.float32) - warped), size=5)
        typical = float(np.median(residual)) + 1.0
        mask = (residual > WARP_RATIO * typical) & (residual > STEP_MIN_LEVEL)
        geo = Geometry(width, height, w, h)
        for sl, mean in _components(mask, residual / (WARP_RATIO * typical)):
            box = geo.bbox(sl)
            findings.append(make_finding(
                "warp_residual", dense, frame, frame + 1, box, mean, None,
                f"{geo.where(box)}, {when(dense, frame, frame + 1)}: optical flow does not "
                f"carry this area to the next frame (residual {mean * WARP_RATIO:.1f}x the "
                "frame's typical; occlusions and fast motion do this too)",
            ))  # fmt: skip
    return findings


def _dis() -> Any:
    import cv2

    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]


def _pulled_back(dis: Any, a: np.ndarray, b: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` (frame b, or an image aligned with it) moved onto frame a by DIS optical flow
    from a (uint8 gray) to b (uint8 gray): what a would look like if only motion changed it."""
    import cv2

    flow = dis.calc(a, b, None)
    h, w = a.shape
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped: np.ndarray = cv2.remap(values, grid_x + flow[..., 0], grid_y + flow[..., 1],
                                   cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return warped


def interpolated_frames(dense: DensePass, cuts: list[int]) -> list[TemporalFinding]:
    """Spans of frames that are the plain average of their two neighbours while the picture
    moves: frame-rate conversion by blending, or frames made by interpolation. A real frame
    between two others shows where things are, not a double exposure of where they were.

    On smooth motion (a pan, a zoom) a camera frame is close to the average of its neighbours
    too, so a candidate must also match that average BLEND_MARGIN times better than it matches
    its neighbours moved onto it by optical flow: motion explains a camera frame, and only the
    plain average explains a double image."""
    if len(dense.thumbs) < 5 or dense.stride != 1:
        return []
    g = _gray(dense)
    motion = np.abs(g[2:] - g[:-2]).mean(axis=(1, 2))  # row t+1: change across it
    blend = np.abs(g[1:-1] - (g[2:] + g[:-2]) / 2).mean(axis=(1, 2))
    cut_rows = {dense.indices.index(c) for c in cuts if c in dense.indices}
    candidates = [
        k + 1
        for k in range(len(motion))
        if motion[k] > BLEND_MOTION
        and blend[k] < BLEND_RATIO * motion[k]
        and not any(abs(k + 1 - c) <= 1 for c in cut_rows)
    ]
    dis = _dis() if candidates else None
    flagged = []
    for row in candidates:
        plain, compensated = _blend_against_motion(dis, dense.thumbs, g, row)
        if compensated > BLEND_MARGIN * plain:
            flagged.append(dense.indices[row])
    findings = []
    for run in _runs(flagged, gap=BLEND_GAP):
        if len(run) < BLEND_MIN_FRAMES:
            continue
        start, end = run[0], run[-1]
        findings.append(make_finding(
            "interpolation", dense, start, end, None, len(run) / BLEND_MIN_FRAMES, None,
            f"{when(dense, start, end)}: {len(run)} frames are the average of the frames before "
            "and after them while the picture moves, and closer to that average than to the "
            "neighbours moved by optical flow (blended frame-rate conversion or interpolated "
            "frames; not proof of a fake, but not camera frames)",
        ))  # fmt: skip
    return findings


def _blend_against_motion(
    dis: Any, thumbs: np.ndarray, g: np.ndarray, row: int
) -> tuple[float, float]:
    """Mean gray error of thumbnail `row` against the plain average of its neighbours, and
    against the average of its neighbours each moved onto it by optical flow (from this frame
    to each, so a camera frame of a pan or zoom is matched), inside the border."""
    inner = (slice(BLEND_BORDER, -BLEND_BORDER), slice(BLEND_BORDER, -BLEND_BORDER))
    here = thumbs[row]
    moved = [_pulled_back(dis, here, thumbs[n], g[n]) for n in (row - 1, row + 1)]
    plain = np.abs(g[row] - (g[row - 1] + g[row + 1]) / 2)[inner].mean()
    compensated = np.abs(g[row] - (moved[0] + moved[1]) / 2)[inner].mean()
    return float(plain), float(compensated)


def _runs(frames: list[int], gap: int) -> list[list[int]]:
    runs: list[list[int]] = []
    for f in frames:
        if runs and f - runs[-1][-1] <= gap:
            runs[-1].append(f)
        else:
            runs.append([f])
    return runs
