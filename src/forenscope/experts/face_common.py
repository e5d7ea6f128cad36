"""What the face experts share: one memoised detection per image, per-face masks, the
per-face bookkeeping that `face_reports` reads back, and the result assembly."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..faces import detect as _detect
from ..faces.describe import label_window
from ..faces.detect import Face
from ..faces.report import face_reports
from ..io.input import ImageInput
from ..types import BBox, Evidence, ExpertResult
from ..types.faces import FaceReport
from .base import Expert

SKIN = ("right cheek", "left cheek", "forehead", "chin", "face skin")
AROUND = ("background near the face", "neck", "hairline")


@dataclass
class FaceCheckResult:
    """One face's outcome in one expert: a score or an abstain reason, evidence, heat."""

    score: float | None = None
    reason: str | None = None
    evidence: list[Evidence] = field(default_factory=list)
    heat: tuple[BBox, np.ndarray] | None = None  # a window of the heatmap, in [0, 1]
    confidence: float = 1.0


# The faces of each image being analysed, per backend: the face experts and the report each
# ask for them, and `detect_faces`'s own memo must hash the whole image every time (0.04 s at
# 12 MP), so it is not used. Weak keys: an entry goes with its image.
_by_image: weakref.WeakKeyDictionary[ImageInput, tuple[str, np.ndarray, list[Face]]] = (
    weakref.WeakKeyDictionary()
)
_by_image_lock = threading.Lock()


def image_faces(image: ImageInput) -> list[Face]:
    """`detect_faces(image.rgb)`, once per image and backend (raises FaceDetectorUnavailable)."""
    chosen = _detect.backend_in_effect()
    with _by_image_lock:
        hit = _by_image.get(image)
    if hit is not None and hit[0] == chosen and hit[1] is image.rgb:
        return hit[2]
    faces = _detect.detect_faces(image.rgb, chosen, memo=False)  # type: ignore[arg-type]
    with _by_image_lock:
        _by_image[image] = (chosen, image.rgb, faces)
    return faces


def faces_of(image: ImageInput) -> tuple[list[Face], list[FaceReport]]:
    """Detected faces and their reports (raises FaceDetectorUnavailable)."""
    faces = image_faces(image)
    return faces, face_reports(faces, (image.height, image.width))


def window_of(report: FaceReport, shape: tuple[int, int]) -> BBox:
    """The image window that holds every region of the face (clipped to the image)."""
    xs = [b.x for b in (r.bbox for r in report.regions)] or [report.face.bbox.x]
    ys = [b.y for b in (r.bbox for r in report.regions)] or [report.face.bbox.y]
    x1 = max((r.bbox.x + r.bbox.width for r in report.regions), default=shape[1])
    y1 = max((r.bbox.y + r.bbox.height for r in report.regions), default=shape[0])
    x0, y0 = min(xs), min(ys)
    return BBox(x=x0, y=y0, width=min(shape[1], x1) - x0, height=min(shape[0], y1) - y0)


def part_masks(report: FaceReport, window: BBox) -> dict[str, np.ndarray]:
    """Boolean mask per region name inside `window` (overlaps resolved by priority)."""
    labels = label_window(report.regions, window)
    return {r.name: labels == i + 1 for i, r in enumerate(report.regions)}


def any_of(masks: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    shape = next(iter(masks.values())).shape
    out = np.zeros(shape, dtype=bool)
    for n in names:
        if n in masks:
            out |= masks[n]
    return out


def run_per_face(
    expert: Expert,
    image: ImageInput,
    check: Callable[[ImageInput, Face, FaceReport], FaceCheckResult],
) -> ExpertResult:
    """Run `check` on every face; score = the most suspicious face; abstain if none judged."""
    faces, reports = faces_of(image)
    if not faces:
        return expert.abstain("no face found in the image", details={"faces": 0})
    evidence: list[Evidence] = []
    per_face: list[dict[str, object]] = []
    outcomes: list[FaceCheckResult] = []
    heat = np.zeros((image.height, image.width), dtype=np.float32)
    has_heat = False
    for face, report in zip(faces, reports, strict=True):
        out = check(image, face, report)
        outcomes.append(out)
        idx = list(range(len(evidence), len(evidence) + len(out.evidence)))
        evidence.extend(out.evidence)
        per_face.append(
            {
                "face": report.index,
                "score": out.score,
                "abstain_reason": out.reason,
                "evidence": idx,
            }
        )
        if out.heat is not None:
            box, win = out.heat
            sl = np.s_[box.y : box.y + box.height, box.x : box.x + box.width]
            heat[sl] = np.maximum(heat[sl], win[: box.height, : box.width])
            has_heat = True
    details: dict[str, object] = {"faces": len(faces), "per_face": per_face}
    judged = [(o.score, o.confidence) for o in outcomes if o.score is not None]
    if not judged:
        reasons = "; ".join(f"face {p['face']}: {p['abstain_reason']}" for p in per_face)
        return expert.abstain(f"no face could be judged ({reasons})", evidence=evidence,
                              details=details)  # fmt: skip
    score, confidence = max(judged)  # the most suspicious face speaks for the image
    return expert.result(
        score,
        evidence=evidence,
        heatmap=heat if has_heat else None,
        details=details,
        confidence=confidence,
    )


def analyze_faces(
    image: ImageInput, results: Sequence[ExpertResult] = ()
) -> tuple[list[FaceReport], str | None]:
    """Face reports for the Report (with the face experts' per-face checks), or ([], why not).

    Never raises for a missing detector: the second value then says what to install or pull.
    """
    from ..faces.detect import FaceDetectorUnavailable

    try:
        faces = image_faces(image)
    except FaceDetectorUnavailable as exc:
        return [], str(exc)
    return face_reports(faces, (image.height, image.width), results), None
