"""Face tracks: the faces of the sampled frames linked across time by box overlap, with each
face check's score per frame, and the flicker of the face outline against its surroundings."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..types import BBox, FaceReport, FaceTrack, FrameResult, TemporalFinding
from .sample import DensePass
from .temporal import FLICKER_RATE, Geometry, box_iou, make_finding, when

LINK_IOU = 0.3  # faces in consecutive samples overlapping this much are one person
RING = 0.15  # the outline band: this share of the face box, inside and outside its edge
RATIO = 2.0  # the outline oscillates this many times as often as the background around it
ON_FACE_IOU = 0.3  # a finding overlapping a face box this much is on that face
ON_FACE_INSIDE = 0.6  # ... or with this share of its box inside the face box
JUMP = 0.5  # a face check whose score moves this much between two samples has changed its mind


@dataclass
class _OpenTrack:
    """A track while faces are still joining it; frozen into a FaceTrack once complete."""

    id: int
    frames: list[int] = field(default_factory=list)
    boxes: list[BBox] = field(default_factory=list)
    check_scores: dict[str, list[float | None]] = field(default_factory=dict)


def link_tracks(frames: list[FrameResult], clip_width: int) -> list[FaceTrack]:
    """Greedy linking: each face joins the open track whose last box overlaps it most. Boxes
    are given in clip pixels (frames are analysed scaled down)."""
    tracks: list[_OpenTrack] = []
    for fr in frames:
        taken: set[int] = set()
        for face in fr.report.faces:
            box = _in_clip(face.face.bbox, clip_width / fr.analysed_width)
            best, best_iou = None, LINK_IOU
            for t in tracks:
                iou = box_iou(t.boxes[-1], box)
                if t.id not in taken and t.frames[-1] != fr.index and iou >= best_iou:
                    best, best_iou = t, iou
            if best is None:
                best = _OpenTrack(id=len(tracks) + 1)
                tracks.append(best)
            taken.add(best.id)
            _append(best, fr.index, box, face)
    return [_close(t) for t in tracks]


def _close(t: _OpenTrack) -> FaceTrack:
    mean_scores = {
        k: round(float(np.mean([v for v in vals if v is not None])), 3)
        for k, vals in t.check_scores.items()
        if any(v is not None for v in vals)
    }
    return FaceTrack(id=t.id, frames=t.frames, boxes=t.boxes, check_scores=t.check_scores,
                     mean_scores=mean_scores, summary=_summary(t, mean_scores))  # fmt: skip


def _in_clip(box: BBox, scale: float) -> BBox:
    return BBox(x=round(box.x * scale), y=round(box.y * scale),
                width=round(box.width * scale), height=round(box.height * scale))  # fmt: skip


def _append(track: _OpenTrack, frame: int, box: BBox, face: FaceReport) -> None:
    n = len(track.frames)
    track.frames.append(frame)
    track.boxes.append(box)
    for check in face.checks:
        track.check_scores.setdefault(check.expert, [None] * n)
    for name, scores in track.check_scores.items():
        score = next((c.score for c in face.checks if c.expert == name), None)
        scores.extend([None] * (n - len(scores)) + [score])


def _summary(t: _OpenTrack, mean_scores: dict[str, float]) -> str:
    span = f"frames {t.frames[0]}-{t.frames[-1]}" if len(t.frames) > 1 else f"frame {t.frames[0]}"
    scores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(mean_scores.items()))
    return f"Face {t.id}, {span}, seen in {len(t.frames)} sampled frame(s)" + (
        f"; mean check scores: {scores}" if scores else "; no face check could judge it"
    )


def outline_flicker(
    tracks: list[FaceTrack], dense: DensePass, osc: np.ndarray, scale: float
) -> list[TemporalFinding]:
    """Per track: how often the band along the face outline oscillates, against the band of
    background just outside it, over the frames the track spans. `scale` maps the analysed
    clip's pixels to thumbnail pixels."""
    if len(osc) < 4:
        return []
    findings = []
    th, tw = osc.shape[1:]
    for t in tracks:
        rows = [i for i, f in enumerate(dense.indices[1:-1]) if t.frames[0] <= f <= t.frames[-1]]
        if len(rows) < 4:
            continue
        xs = [b.x * scale for b in t.boxes] + [(b.x + b.width) * scale for b in t.boxes]
        ys = [b.y * scale for b in t.boxes] + [(b.y + b.height) * scale for b in t.boxes]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        pad = RING * max(x1 - x0, y1 - y0)
        yy, xx = np.mgrid[0:th, 0:tw]
        inside = _box_mask(xx, yy, x0 + pad, y0 + pad, x1 - pad, y1 - pad)
        edge = _box_mask(xx, yy, x0 - pad, y0 - pad, x1 + pad, y1 + pad) & ~inside
        outer = _box_mask(xx, yy, x0 - 3 * pad, y0 - 3 * pad, x1 + 3 * pad, y1 + 3 * pad)
        outer &= ~_box_mask(xx, yy, x0 - pad, y0 - pad, x1 + pad, y1 + pad)
        if edge.sum() < 8 or outer.sum() < 8:
            continue
        sub = osc[rows]
        edge_rate, outer_rate = float(sub[:, edge].mean()), float(sub[:, outer].mean())
        if edge_rate >= FLICKER_RATE / 2 and edge_rate >= RATIO * (outer_rate + 0.01):
            start, end = t.frames[0], t.frames[-1]
            geo = Geometry(int(tw / scale), int(th / scale), tw, th)
            box = geo.bbox((slice(int(max(0, y0)), int(min(th, y1)) + 1),
                            slice(int(max(0, x0)), int(min(tw, x1)) + 1)))  # fmt: skip
            findings.append(make_finding(
                "face_flicker", dense, start, end, box, edge_rate / (RATIO * (outer_rate + 0.01)),
                None,
                f"face {t.id}, {when(dense, start, end)}: the face outline flickers against the "
                f"background (it swings on {100 * edge_rate:.0f}% of the frames, the background "
                f"around it on {100 * outer_rate:.0f}%)",
                face_track=t.id,
            ))  # fmt: skip
    return findings


def _box_mask(
    xx: np.ndarray, yy: np.ndarray, x0: float, y0: float, x1: float, y1: float
) -> np.ndarray:
    return (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)


def check_jumps(tracks: list[FaceTrack], dense: DensePass) -> list[TemporalFinding]:
    """Per track and face check: where its score jumps by JUMP or more between two sampled
    frames (the face stops, or starts, matching its surroundings)."""
    findings = []
    for t in tracks:
        for name, scores in t.check_scores.items():
            for i in range(len(scores) - 1):
                a, b = scores[i], scores[i + 1]
                if a is None or b is None or abs(b - a) < JUMP:
                    continue
                start, end = t.frames[i], t.frames[i + 1]
                findings.append(make_finding(
                    "face_change", dense, start, end, t.boxes[i + 1], abs(b - a) / JUMP, None,
                    f"face {t.id}, {when(dense, start, end)}: the {name} check goes from "
                    f"{a:.2f} to {b:.2f} (the face {'stops' if b > a else 'starts'} matching "
                    "what that check expects of a camera face)",
                    face_track=t.id,
                ))  # fmt: skip
    return findings


def name_faces(findings: list[TemporalFinding], tracks: list[FaceTrack]) -> list[TemporalFinding]:
    """A finding whose box lies on a tracked face (overlap ON_FACE_IOU with the track's box
    nearest in time) names that face, so "a small area in the centre" reads "on face 1"."""
    return [_on_face(f, tracks) for f in findings]


def _on_face(f: TemporalFinding, tracks: list[FaceTrack]) -> TemporalFinding:
    if f.bbox is None or f.face_track is not None:
        return f
    for t in tracks:
        k = int(np.argmin([abs(fr - (f.frame_start + f.frame_end) / 2) for fr in t.frames]))
        box = t.boxes[k]
        # the two boxes mostly the same, or the finding mostly inside the face
        if box_iou(f.bbox, box) >= ON_FACE_IOU or _inside(f.bbox, box) >= ON_FACE_INSIDE:
            summary = f"On face {t.id}: {f.summary[0].lower()}{f.summary[1:]}"
            return f.model_copy(update={"face_track": t.id, "summary": summary})
    return f


def _inside(a: BBox, b: BBox) -> float:
    """Share of box a that lies inside box b."""
    ix = max(0, min(a.x + a.width, b.x + b.width) - max(a.x, b.x))
    iy = max(0, min(a.y + a.height, b.y + b.height) - max(a.y, b.y))
    return ix * iy / max(1, a.width * a.height)
