"""Blink rate per face track, from the eye aspect ratio (EAR) of the face mesh.

A blink closes the eye for about 100-400 ms, so it shows only on frames at most ~100 ms apart
(10 fps); the few frames the image experts analyse cannot show one. This pass decodes the
track's time span again at about BLINK_FPS, finds the face in a crop around the track's box at
the clip's own resolution, and measures on each eye EAR = (|p2-p6| + |p3-p5|) / (2 |p1-p4|)
(Soukupova and Cech, 2016) with the mesh's eye-contour points. A blink is a dip of the mean EAR
of both eyes below CLOSED_SHARE of its running median that lasts at most MAX_BLINK_S.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..types import BBox, BlinkRate, FaceTrack
from .decode import Clip
from .sample import DensePass

BLINK_FPS = 12.5  # frames measured per second when the clip has them (25 fps: every 2nd)
NEED_FPS = 10.0  # a frame at least every 100 ms: even the shortest blink covers one
MIN_FPS = 5.0  # under this, most blinks fall between frames: not measured
MIN_SPAN_S = 10.0  # people blink every 2-10 s at rest: a shorter span gives a count, no rate
MAX_FRAMES = 480  # mesh runs per clip (about 40 s at 12.5 fps), shared by its tracks
MIN_EYE_PX = 12.0  # eye width (corner to corner) in the clip; below, a lid moves a pixel or two
CLOSED_SHARE = 0.9  # EAR under this share of its running median: the eye is closing
MAX_BLINK_S = 0.5  # a longer dip is eyes closed or a look down, not a blink
BASELINE_S = 3.0  # the running median's window
MIN_MEASURED = 0.6  # share of the sampled frames on which the mesh must find the eyes
CROP_MARGIN = 0.6  # the crop around the track's box: this share of its side on every side
CROP_MAX_SIDE = 512  # crops are scaled down to this (a large face needs no more for the mesh)
# mesh indices p1..p6 per eye: outer corner, two upper lid points, inner corner, two lower
RIGHT_EYE = (33, 160, 158, 133, 153, 144)
LEFT_EYE = (362, 385, 387, 263, 373, 380)


def eye_aspect_ratio(mesh: np.ndarray, eye: tuple[int, ...]) -> tuple[float, float]:
    """(EAR, eye width in the mesh's pixels) of one eye."""
    p1, p2, p3, p4, p5, p6 = (mesh[i] for i in eye)
    width = float(np.linalg.norm(p1 - p4))
    if width <= 0:
        return 0.0, 0.0
    return float(np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2 * width), width


def blink_rates(
    clip: Clip, tracks: list[FaceTrack], dense: DensePass, sampled: list[int]
) -> list[FaceTrack]:
    """Each track with its BlinkRate (or a note why it could not be measured)."""
    fps = clip.info.fps
    spans = {t.id: _span(t, sorted(sampled), dense.frames) for t in tracks}
    step = max(1, round(fps / BLINK_FPS)) if fps > 0 else 1
    # The budget shortens long spans rather than thinning them: frames further apart than
    # 100 ms would miss blinks, a shorter window only measures fewer of them.
    share = max(1, MAX_FRAMES // max(1, len(tracks)))
    windows = {k: (a, min(b, a + share * step - 1)) for k, (a, b) in spans.items()}
    wanted: dict[int, list[int]] = {}
    for t in tracks:
        start, end = windows[t.id]
        for f in range(start, end + 1, step):
            wanted.setdefault(f, []).append(t.id)
    ears: dict[int, dict[int, tuple[float, float] | None]] = {t.id: {} for t in tracks}
    if wanted and fps / step >= MIN_FPS:
        by_id = {t.id: t for t in tracks}
        for index, _time, rgb in clip.frames(keep=lambda i: i in wanted):
            if rgb is None:
                continue
            for tid in wanted[index]:
                ears[tid][index] = _measure(rgb, _box_at(by_id[tid], index))
    out = []
    for t in tracks:
        blink = _rate(spans[t.id], windows[t.id], ears[t.id], fps / step, dense)
        out.append(t.model_copy(update={"blink": blink, "summary": f"{t.summary}; {said(blink)}"}))
    return out


def said(blink: BlinkRate) -> str:
    """The blink rate in words, with what limits it."""
    if blink.blinks is None:
        return blink.note
    rate = f", {blink.per_minute:g} per minute" if blink.per_minute is not None else ""
    text = (
        f"{blink.blinks} blink(s) in {blink.span_s:.1f} s{rate} (EAR at {blink.sampled_fps:g} fps)"
    )
    return text + (f"; {blink.note}" if blink.note else "")


def _span(track: FaceTrack, sampled: list[int], frames: int) -> tuple[int, int]:
    """The track's frames, widened half-way to the sampled frames on either side (to the clip's
    ends when it is seen on the first or last one)."""
    first, last = track.frames[0], track.frames[-1]
    before = [s for s in sampled if s < first]
    after = [s for s in sampled if s > last]
    start = (before[-1] + first + 1) // 2 if before else 0
    end = (last + after[0]) // 2 if after else frames - 1
    return start, max(start, end)


def _box_at(track: FaceTrack, frame: int) -> BBox:
    """The track's box at `frame`: linear between the sampled frames around it."""
    xs = np.array(track.frames, dtype=float)
    vals = [np.interp(frame, xs, [getattr(b, k) for b in track.boxes])
            for k in ("x", "y", "width", "height")]  # fmt: skip
    return BBox(x=round(vals[0]), y=round(vals[1]), width=max(1, round(vals[2])),
                height=max(1, round(vals[3])))  # fmt: skip


def _measure(rgb: np.ndarray, box: BBox) -> tuple[float, float] | None:
    """(mean EAR of both eyes, eye width in clip pixels) of the face nearest the box's centre
    in a crop around it, or None when no mesh is found there."""
    from PIL import Image

    from ..faces.detect import detect_faces

    h, w = rgb.shape[:2]
    pad = CROP_MARGIN * max(box.width, box.height)
    x0, y0 = max(0, int(box.x - pad)), max(0, int(box.y - pad))
    x1, y1 = min(w, int(box.x + box.width + pad)), min(h, int(box.y + box.height + pad))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    crop = rgb[y0:y1, x0:x1]
    scale = min(1.0, CROP_MAX_SIDE / max(crop.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
    faces = [f for f in detect_faces(np.ascontiguousarray(crop)) if f.mesh is not None]
    if not faces:
        return None
    centre = np.array([(box.x + box.width / 2 - x0) * scale, (box.y + box.height / 2 - y0) * scale])
    face = min(faces, key=lambda f: float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre)))
    assert face.mesh is not None
    (right, rw), (left, lw) = (eye_aspect_ratio(face.mesh, e) for e in (RIGHT_EYE, LEFT_EYE))
    return (right + left) / 2, (rw + lw) / 2 / scale


def _rate(
    span: tuple[int, int], window: tuple[int, int],
    measured: dict[int, tuple[float, float] | None], fps: float, dense: DensePass,
) -> BlinkRate:  # fmt: skip
    start, end = window
    span_s = round(max(0.0, dense.time_of(end) - dense.time_of(start)), 3)
    common: dict[str, Any] = {"span_s": span_s, "sampled_fps": round(fps, 2)}
    if fps < MIN_FPS:
        return BlinkRate(blinks=None, **common, note=(
            f"blink rate not measured: frames are {1000 / fps:.0f} ms apart, and a blink "
            f"(100-400 ms) needs a frame at least every {1000 / NEED_FPS:.0f} ms "
            f"({NEED_FPS:.0f} fps) to be seen"))  # fmt: skip
    frames = sorted(measured)
    ear = [None if measured[f] is None else round(measured[f][0], 4) for f in frames]  # type: ignore[index]
    common |= {"frames": frames, "ear": ear}
    found = [m for m in measured.values() if m is not None]
    if not frames or len(found) < MIN_MEASURED * len(frames):
        return BlinkRate(blinks=None, **common, note=(
            f"blink rate not measured: the face mesh found the eyes on {len(found)} of "
            f"{len(frames)} frames sampled over the track"))  # fmt: skip
    eye_px = float(np.median([m[1] for m in found]))
    if eye_px < MIN_EYE_PX:
        return BlinkRate(blinks=None, **common, note=(
            f"blink rate not measured: the eyes are {eye_px:.0f} px wide in the clip, under "
            f"{MIN_EYE_PX:.0f} px, where a closing lid moves a pixel or two"))  # fmt: skip
    spans = _dips(frames, ear, fps, dense)
    notes = []
    if window != span:
        notes.append(f"measured over frames {start}-{end} ({span_s:.1f} s) of the track's "
                     f"{dense.time_of(span[1]) - dense.time_of(span[0]):.1f} s (a budget of "
                     f"{MAX_FRAMES} measured frames per clip)")  # fmt: skip
    if fps < NEED_FPS:
        notes.append(f"frames are {1000 / fps:.0f} ms apart, so blinks shorter than that can "
                     "fall between them: the count is a lower bound")  # fmt: skip
    rate = None
    if span_s >= MIN_SPAN_S:
        rate = round(len(spans) * 60.0 / span_s, 1)
    else:
        notes.append(f"the track spans {span_s:.1f} s, too short for a rate (people blink "
                     f"every 2-10 s at rest; a rate needs {MIN_SPAN_S:.0f} s or more)")  # fmt: skip
    return BlinkRate(blinks=len(spans), per_minute=rate, blink_spans=spans, **common,
                     note="; ".join(notes))  # fmt: skip


def _dips(
    frames: list[int], ear: list[float | None], fps: float, dense: DensePass
) -> list[tuple[int, int]]:
    """(first, last) frame of each dip of EAR under CLOSED_SHARE of its running median that
    starts and ends open and lasts at most MAX_BLINK_S."""
    values = np.array([np.nan if e is None else e for e in ear], dtype=float)
    half = max(1, round(BASELINE_S * fps / 2))
    closed = []
    for i, v in enumerate(values):
        window = values[max(0, i - half) : i + half + 1]
        base = np.nanmedian(window) if np.isfinite(window).any() else np.nan
        closed.append(bool(np.isfinite(v) and np.isfinite(base) and v < CLOSED_SHARE * base))
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(closed):
        if not closed[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(closed) and closed[j + 1]:
            j += 1
        opened_before = i > 0 and np.isfinite(values[i - 1])
        opened_after = j + 1 < len(closed) and np.isfinite(values[j + 1])
        lasted = dense.time_of(frames[j]) - dense.time_of(frames[i])
        if opened_before and opened_after and lasted <= MAX_BLINK_S:
            spans.append((frames[i], frames[j]))
        i = j + 1
    return spans
