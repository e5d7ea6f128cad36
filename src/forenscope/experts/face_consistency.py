"""Face vs surroundings: noise floor, colour noise and JPEG blocking measured on each side.

One camera gives one noise floor and one JPEG history to the whole picture. A face pasted from
elsewhere (or regenerated) carries its own. We compare, per 8x8 block, the luma noise floor (the
20th percentile of block noise, i.e. the flattest skin vs the flattest surroundings), the chroma
noise floor, and the 8x8 blocking strength, between the face's skin and the ring of image
around it (background, neck, hair). Each ratio is evidence a person can re-measure.
"""

from __future__ import annotations

import numpy as np

from ..faces.detect import Face
from ..io.input import ImageInput
from ..residual import immerkaer_abs
from ..types import Evidence, ExpertResult, ExpertSpec
from ..types.faces import FaceReport
from ._signal_math import MAD_TO_SIGMA, block_median, ramp
from .base import Expert
from .face_common import (
    AROUND,
    SKIN,
    FaceCheckResult,
    any_of,
    part_masks,
    run_per_face,
    window_of,
)
from .registry import register_expert

MIN_FACE_PX = 48
MIN_BLOCKS = 12
EPS = 0.5
GRID_PRESENT = 1.05  # blocking ratio (edge/inside steps) above which a JPEG grid shows
BLOCK_LO, BLOCK_HI = 1.05, 1.3  # surroundings-over-face blocking mapped to 0..1
LOG_LO, LOG_HI = np.log(1.6), np.log(3.5)  # |log ratio| mapped to 0..1


def block_sigma(channel: np.ndarray) -> np.ndarray:
    """Noise sigma per 8x8 block: MAD of the Immerkaer residual."""
    r = immerkaer_abs(channel)  # scipy's |correlate| with the kernel, bit for bit
    return np.asarray(block_median(r, 8) * MAD_TO_SIGMA)  # np.median per block, by a sort


def blockiness(gray: np.ndarray) -> np.ndarray:
    """Per 8x8 block: mean |step| across its right/bottom edges over mean |step| inside it."""
    dx, dy = np.abs(np.diff(gray, axis=1)), np.abs(np.diff(gray, axis=0))
    h, w = (gray.shape[0] // 8) * 8, (gray.shape[1] // 8) * 8
    ex = np.zeros((h, w))
    ex[:, : w - 1] = dx[:h, : w - 1]
    ey = np.zeros((h, w))
    ey[: h - 1, :] = dy[: h - 1, :w]
    col, row = np.arange(w) % 8 == 7, np.arange(h) % 8 == 7
    edge = ex[:, col].reshape(h // 8, 8, w // 8).sum(1) + ey[row, :].reshape(h // 8, w // 8, 8).sum(
        2
    )
    inner = ex.reshape(h // 8, 8, w // 8, 8).sum((1, 3)) + ey.reshape(h // 8, 8, w // 8, 8).sum(
        (1, 3)
    )
    inner = inner - edge
    return np.asarray((edge / 16.0 + 0.5) / (inner / 112.0 + 0.5))


def _block_share(mask: np.ndarray) -> np.ndarray:
    h, w = (mask.shape[0] // 8) * 8, (mask.shape[1] // 8) * 8
    return np.asarray(mask[:h, :w].reshape(h // 8, 8, w // 8, 8).mean(axis=(1, 3)))


def _blocking_score(face: float, around: float) -> tuple[float, float, str]:
    """One-sided: a face with weaker 8x8 blocking than a blocky surrounding was not compressed
    on this image's grid with it (pasted or resampled after); more blocking on smooth skin is
    normal. Without blocking around the face there is no grid to compare with."""
    ratio = face / max(around, 1e-6)
    if around < GRID_PRESENT:
        return ratio, 0.0, " - no 8x8 grid around the face, not used"
    score = float(ramp(np.array(-np.log(ratio)), np.log(BLOCK_LO), np.log(BLOCK_HI)))
    return ratio, score, ""


def check_face(image: ImageInput, face: Face, report: FaceReport) -> FaceCheckResult:
    side = min(face.width, face.height)
    if side < MIN_FACE_PX:
        return FaceCheckResult(reason=f"face too small ({side:.0f} px < {MIN_FACE_PX} px)")
    win = window_of(report, (image.height, image.width))
    # align the window to the image's 8x8 grid so blocks are JPEG blocks
    x0, y0 = win.x - win.x % 8, win.y - win.y % 8
    sl = np.s_[y0 : win.y + win.height, x0 : win.x + win.width]
    rgb = image.rgb[sl].astype(np.float32)
    masks = part_masks(report, win)
    pad = ((win.y - y0, 0), (win.x - x0, 0))
    inside = _block_share(np.pad(any_of(masks, SKIN), pad)) > 0.9
    around = _block_share(np.pad(any_of(masks, AROUND), pad)) > 0.9
    y = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    unclipped = _block_share(((y > 8) & (y < 247)).astype(np.float32)) > 0.95
    inside, around = inside & unclipped, around & unclipped
    if inside.sum() < MIN_BLOCKS or around.sum() < MIN_BLOCKS:
        return FaceCheckResult(reason="too few flat blocks on the face or around it to compare")
    cb = rgb @ np.array([-0.169, -0.331, 0.5], dtype=np.float32)
    measures = {
        "luma noise floor": (block_sigma(y), 20),
        "colour noise floor": (block_sigma(cb), 20),
        "8x8 blocking": (blockiness(y), 50),
    }
    evidence, parts = _compare(report, measures, inside, around)
    score = max(parts)
    heat = np.zeros((win.height, win.width), dtype=np.float32)
    heat[any_of(masks, SKIN)] = score
    # approximate regions (no mesh) may mix skin and background: trust the ratio less
    confidence = 1.0 if face.mesh is not None else 0.5
    return FaceCheckResult(score=score, evidence=evidence, heat=(win, heat), confidence=confidence)


def _compare(
    report: FaceReport,
    measures: dict[str, tuple[np.ndarray, int]],
    inside: np.ndarray,
    around: np.ndarray,
) -> tuple[list[Evidence], list[float]]:
    """Per measure: a percentile on the face vs around it, as evidence and a 0..1 score."""
    evidence, parts = [], []
    for name, (values, q) in measures.items():
        a = float(np.percentile(values[inside], q))
        b = float(np.percentile(values[around], q))
        if name == "8x8 blocking":
            ratio, s, note = _blocking_score(a, b)
        else:
            ratio = (a + EPS) / (b + EPS)  # below ~0.5 grey levels, noise is quantisation
            s, note = float(ramp(np.array(abs(np.log(ratio))), LOG_LO, LOG_HI)), ""
        parts.append(s)
        evidence.append(
            Evidence(
                kind=f"faces.consistency.{name.replace(' ', '_')}",
                summary=(
                    f"{report.label}: {name} {a:.2f} on the face skin vs {b:.2f} around the "
                    f"face ({ratio:.2f}x; {int(inside.sum())} and {int(around.sum())} blocks)"
                    f"{note}"
                ),
                value=round(ratio, 3),
                bbox=report.face.bbox,
            )
        )
    return evidence, parts


@register_expert
class FaceConsistencyExpert(Expert):
    spec = ExpertSpec(
        name="face_consistency",
        version="0.1.1",
        kind="faces",
        targets="tampered",
        description="noise floor, colour noise and 8x8 blocking of the face vs its surroundings",
        produces_heatmap=True,
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        from ..faces.detect import FaceDetectorUnavailable

        try:
            return run_per_face(self, image, check_face)
        except FaceDetectorUnavailable as exc:
            return self.abstain(str(exc))
