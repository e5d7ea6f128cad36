"""Name the facial part under a box: "the left eye of face 1" (for localization and the LLM)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..types import BBox
from ..types.faces import FaceRegion, FaceReport

BACKGROUND = "background near the face"
MIN_ON_FACE = 0.25  # share of the box that must fall on a face's regions to name it
WHOLE_FACE = 0.5  # share of the face outline covered for "most of face N"


def label_window(regions: Sequence[FaceRegion], box: BBox) -> np.ndarray:
    """Region index (+1, 0 = none) of every pixel of `box`, earlier regions winning overlaps."""
    labels = np.zeros((max(box.height, 1), max(box.width, 1)), dtype=np.int16)
    for i in range(len(regions) - 1, -1, -1):  # paint lowest priority first
        canvas = Image.new("L", (labels.shape[1], labels.shape[0]), 0)
        pts = [(x - box.x, y - box.y) for x, y in regions[i].polygon]
        if len(pts) >= 3:
            ImageDraw.Draw(canvas).polygon(pts, fill=1)
            labels[np.asarray(canvas, dtype=bool)] = i + 1
    return labels


def polygon_area(poly: Sequence[tuple[float, float]]) -> float:
    p = np.asarray(poly, dtype=np.float64)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _sided(name: str) -> str:
    return (
        f"{name} (the person's {name.split()[0]})" if name.split()[0] in {"left", "right"} else name
    )


def _phrase(report: FaceReport, counts: dict[str, int]) -> str:
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    total = sum(counts.values())
    top, n = ranked[0]
    if top == BACKGROUND:
        return f"the background next to {report.label}"
    names = [top]
    if len(ranked) > 1:
        second, m = ranked[1]
        if second != BACKGROUND and m >= 0.5 * n and m >= 0.2 * total:
            names.append(second)
    words = " and the ".join(_sided(x) for x in names)
    return f"the {words} of {report.label}"


def describe_region_on_faces(bbox: BBox, faces: Sequence[FaceReport]) -> str | None:
    """Words for the facial part under `bbox`, or None when it is not on or next to a face."""
    best: tuple[int, str] | None = None
    area = max(bbox.width * bbox.height, 1)
    for report in faces:
        regions = report.regions
        if not regions:
            continue
        labels = label_window(regions, bbox)
        counts = {
            regions[i].name: int(c)
            for i, c in enumerate(np.bincount(labels.ravel(), minlength=len(regions) + 1)[1:])
            if c > 0
        }
        on_face = sum(counts.values())
        if on_face < MIN_ON_FACE * area:
            continue
        skin = next((r for r in regions if r.name == "face skin"), None)
        phrase = _phrase(report, counts)
        if skin is not None:
            inside = on_face - counts.get(BACKGROUND, 0)
            face_area = polygon_area(skin.polygon)
            if face_area > 0 and inside >= WHOLE_FACE * face_area:
                phrase = f"most of {report.label}"
        if best is None or on_face > best[0]:
            best = (on_face, phrase)
    return None if best is None else best[1]


def faces_for_prompt(faces: Sequence[FaceReport], width: int, height: int) -> str:
    """A compact text block for an LLM prompt: each face, its named regions and its checks."""
    if not faces:
        return "No face was found in the image."
    lines = ["Faces (left/right are the person's own sides; boxes are x, y, width, height px):"]
    for f in faces:
        b = f.face.bbox
        how = f"{f.face.landmark_count} landmarks" if f.face.landmark_count else "approximate"
        lines.append(
            f"- {f.label}: box ({b.x}, {b.y}, {b.width}, {b.height}) of a {width}x{height} "
            f"image, {how} regions"
        )
        parts = ", ".join(
            f"{r.name} ({r.bbox.x}, {r.bbox.y}, {r.bbox.width}, {r.bbox.height})"
            for r in f.regions
            if r.name != BACKGROUND
        )
        lines.append(f"  regions: {parts}")
        for c in f.checks:
            if c.score is None:
                lines.append(f"  {c.expert}: cannot judge ({c.abstain_reason})")
            else:
                facts = "; ".join(e.summary for e in c.evidence)
                lines.append(f"  {c.expert}: score {c.score:.2f}. {facts}")
    return "\n".join(lines)
