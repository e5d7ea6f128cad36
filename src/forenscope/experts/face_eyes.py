"""Corneal specular highlights: the two eyes of one face should reflect the same lights.

In a photo both corneas mirror the same light sources, so each highlight sits at about the same
place relative to its iris. Generated faces often get them mismatched (Hu, Li and Lyu, ICASSP
2021). We resample each eye (from the face mesh) into the same eye-levelled grid, find its
highlight (a small spot brighter than the white of the eye, ringed by the dark iris), and report
how far apart the two highlights sit relative to their irises. Eyes under 30 px wide, closed,
cut by the border, or without a clear highlight in both, are not judged.
"""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from ..faces.detect import Face
from ..faces.regions import PARTS
from ..io.input import ImageInput
from ..types import Evidence, ExpertResult, ExpertSpec
from ..types.faces import FaceReport
from .base import Expert
from .face_common import FaceCheckResult, run_per_face
from .registry import register_expert

GRID_W, GRID_H = 32, 16  # samples across 1.2 x 0.6 eye widths
MIN_EYE_PX = 30  # on 240 px CelebA crops (eyes ~20 px) the IoU was noise: real faces scored high
MIN_OPEN = 0.15  # lid opening / eye width below this: eye closed
MIN_CONTRAST = 50.0  # highlight above the median of the ring around it, grey levels
RING = 3  # grid samples, ~0.11 eye widths
CORNEA = 0.25  # a corneal reflection lies within this many eye widths of the iris centre
MAX_SPOT = 0.06  # share of the visible eye a highlight may cover
OFFSET_LO, OFFSET_HI = 0.06, 0.2  # highlight offset difference (eye widths) mapped to 0..1
CORNERS = {"right eye": (33, 133, 159, 145), "left eye": (362, 263, 386, 374)}


def eye_grid(
    gray: np.ndarray, lm: np.ndarray, eye: str, ex: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Luma and inside-the-lids mask of one eye on a GRID_W x GRID_H eye-aligned grid."""
    a, b, top, bottom = (lm[i] for i in CORNERS[eye])
    width = float(np.linalg.norm(b - a))
    opening = float(np.linalg.norm(top - bottom)) / max(width, 1e-6)
    centre = lm[PARTS[eye]].mean(axis=0)
    ey = np.array([-ex[1], ex[0]])
    u = (np.arange(GRID_W) + 0.5) / GRID_W * 1.2 - 0.6
    v = (np.arange(GRID_H) + 0.5) / GRID_H * 0.6 - 0.3
    uu, vv = np.meshgrid(u * width, v * width)
    xs = centre[0] + uu * ex[0] + vv * ey[0]
    ys = centre[1] + uu * ex[1] + vv * ey[1]
    lum = ndimage.map_coordinates(gray, [ys, xs], order=1, mode="nearest")
    off = (xs < 0) | (ys < 0) | (xs > gray.shape[1] - 1) | (ys > gray.shape[0] - 1)
    # the lid contour in grid coordinates
    d = lm[PARTS[eye]] - centre
    gx = ((d @ ex) / width + 0.6) / 1.2 * GRID_W
    gy = ((d @ ey) / width + 0.3) / 0.6 * GRID_H
    canvas = Image.new("L", (GRID_W, GRID_H), 0)
    ImageDraw.Draw(canvas).polygon(list(zip(gx.tolist(), gy.tolist(), strict=True)), fill=1)
    inside = np.asarray(canvas, dtype=bool)
    if (off & inside).sum() > 0.05 * max(int(inside.sum()), 1):
        opening = float("nan")  # the eye is cut by the image border
    return lum, inside, opening if width >= MIN_EYE_PX else -width


def _ring(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    d = np.hypot(yy, xx)
    return np.asarray((d >= radius - 0.5) & (d <= radius + 0.5))


def highlight(lum: np.ndarray, inside: np.ndarray) -> np.ndarray | None:
    """Mask of the specular highlight, or None when there is no clear one.

    A highlight is a small bright spot on the cornea: brighter by MIN_CONTRAST than the median
    of a ring ~0.1 eye widths around it, that ring darker than the eye's median, the spot within
    CORNEA eye widths of the iris centre and at most MAX_SPOT of the eye's area. The white of the
    eye fails (half its ring is white), and so do the lid edges (far from the iris); the spot
    must also be among the brightest 5% of the eye, as a reflection outshines the sclera."""
    if inside.sum() < 20:
        return None
    # the ring's median over eye pixels only: outside the lids is skin, not cornea
    masked = np.where(inside, lum, np.nan)
    with warnings.catch_warnings():  # rings wholly outside the eye are NaN, as intended
        warnings.simplefilter("ignore", RuntimeWarning)
        around = ndimage.generic_filter(
            masked, np.nanmedian, footprint=_ring(RING), mode="constant", cval=np.nan
        )
    with np.errstate(invalid="ignore"):
        spot = inside & (lum - around >= MIN_CONTRAST) & (around <= np.median(lum[inside]))
    iris = iris_centre((lum, inside))
    rows, cols = np.mgrid[0 : lum.shape[0], 0 : lum.shape[1]]
    spot &= np.hypot(rows - iris[0], cols - iris[1]) <= CORNEA * GRID_W / 1.2
    if not spot.any():
        return None
    labels, _ = ndimage.label(spot)
    brightest = labels[np.unravel_index(np.argmax(np.where(spot, lum, -1)), lum.shape)]
    mask = np.asarray(labels == brightest)
    peak, base = float(lum[mask].max()), float(np.nanmedian(around[mask]))
    # a corneal reflection outshines the white of the eye; iris texture does not
    if peak < float(np.percentile(lum[inside], 95)):
        return None
    mask &= lum >= (peak + base) / 2  # its half-maximum core, not the resampling halo
    return mask if mask.sum() <= MAX_SPOT * inside.sum() else None


def iris_centre(grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(row, col) centroid of the darkest quarter of the eye: pupil and iris."""
    lum, inside = grid
    dark = inside & (lum <= np.percentile(lum[inside], 25))
    return np.array(ndimage.center_of_mass(dark))


def check_face(image: ImageInput, face: Face, report: FaceReport) -> FaceCheckResult:
    if face.mesh is None:
        return FaceCheckResult(reason="needs the landmark mesh to locate the eyes")
    ex = np.array([np.cos(face.roll), np.sin(face.roll)])
    masks: dict[str, np.ndarray | None] = {}
    grids: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for eye in CORNERS:
        lum, inside, opening = eye_grid(image.gray, face.mesh, eye, ex)
        grids[eye] = (lum, inside)
        if np.isnan(opening):
            return FaceCheckResult(reason=f"the {eye} is cut by the image border")
        if opening < 0:
            return FaceCheckResult(reason=f"eyes too small ({-opening:.0f} px < {MIN_EYE_PX})")
        if opening < MIN_OPEN:
            return FaceCheckResult(reason=f"the {eye} looks closed")
        masks[eye] = highlight(lum, inside)
    r, left = masks["right eye"], masks["left eye"]
    if r is None and left is None:
        return FaceCheckResult(reason="no clear specular highlight in either eye")
    if r is None or left is None:
        has = "left" if r is None else "right"
        ev = Evidence(
            kind="faces.eyes.highlight_missing",
            summary=f"{report.label}: a clear specular highlight in the {has} eye only",
            value=has,
            bbox=report.face.bbox,
        )
        # side light, a lid or a lash can hide one reflection: not a vote on its own
        return FaceCheckResult(reason=f"a highlight in the {has} eye only", evidence=[ev])
    return compare(report, grids, r, left)


def compare(
    report: FaceReport,
    grids: dict[str, tuple[np.ndarray, np.ndarray]],
    r: np.ndarray,
    left: np.ndarray,
) -> FaceCheckResult:
    """Both corneas mirror the same lights: compare each highlight's offset from its own iris
    centre (gaze moves iris and highlight together), in eye widths."""
    ir, il = iris_centre(grids["right eye"]), iris_centre(grids["left eye"])
    hr, hl = np.array(ndimage.center_of_mass(r)), np.array(ndimage.center_of_mass(left))
    offset = float(np.hypot(*((hr - ir) - (hl - il)))) / GRID_W * 1.2
    shift = np.round(ir - il).astype(int)
    moved = np.roll(left, tuple(shift), axis=(0, 1))
    iou = float((r & moved).sum() / max((r | moved).sum(), 1))
    score = float(np.clip((offset - OFFSET_LO) / (OFFSET_HI - OFFSET_LO), 0.0, 1.0))
    ev = Evidence(
        kind="faces.eyes.highlight_offset",
        summary=(
            f"{report.label}: relative to each iris, the corneal highlights of the two eyes sit "
            f"{offset:.2f} eye widths apart (IoU {iou:.2f} once the irises are aligned)"
        ),
        value=round(offset, 3),
        bbox=report.face.bbox,
    )
    return FaceCheckResult(score=score, evidence=[ev])


@register_expert
class FaceEyeHighlightsExpert(Expert):
    spec = ExpertSpec(
        name="face_eye_highlights",
        version="0.1.1",
        kind="faces",
        targets="ai_generated",
        description="corneal specular highlights of the two eyes: same place in each eye?",
        reference="Hu, Li, Lyu: Exposing GAN-generated faces using inconsistent corneal "
        "specular highlights (ICASSP 2021)",
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        from ..faces.detect import FaceDetectorUnavailable

        try:
            return run_per_face(self, image, check_face)
        except FaceDetectorUnavailable as exc:
            return self.abstain(str(exc))
