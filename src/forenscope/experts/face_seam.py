"""Face blending seam: a ring inside the face outline where the noise level steps.

A face swap pastes a face from another source and feathers it in along a closed curve just
inside the face outline. Noise is continuous across skin in a photo; across the blending ring it
changes level (the pasted face is usually smoother or grainier), at the same relative radius all
around the face. We measure the noise (Immerkaer residual) in thin rings from 0.66x to 1.0x of
the face outline, in 24 angular sectors, and look for a radius where the inside/outside step
has the same sign and size in most sectors.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np

from ..faces.detect import Face
from ..io.input import ImageInput
from ..residual import immerkaer_abs
from ..types import Evidence, ExpertResult, ExpertSpec
from ..types.faces import FaceReport
from ._signal_math import ramp
from .base import Expert
from .face_common import FaceCheckResult, part_masks, run_per_face, window_of
from .registry import register_expert

SECTORS = 24
RINGS = np.round(np.arange(0.66, 1.0001, 0.03), 3)  # ring inner radii, share of the outline
STEP_LO, STEP_HI = 0.18, 0.6  # |median log step| mapped to 0..1 (0.18 ~ 1.2x, 0.6 ~ 1.8x)
MIN_FACE_PX = 64
MIN_SECTORS = 12
EXCLUDE = ("right eye", "left eye", "right eyebrow", "left eyebrow", "mouth", "nose")


def polar(
    face_outline: np.ndarray, shape: tuple[int, int], origin: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Sector index and radius (share of the outline in that direction) of every pixel."""
    c = face_outline.mean(axis=0)
    d = face_outline - c
    ang = np.arctan2(d[:, 1], d[:, 0])
    order = np.argsort(ang)
    ang_s, rad_s = ang[order], np.hypot(d[order, 0], d[order, 1])
    ang_s = np.concatenate([ang_s - 2 * np.pi, ang_s, ang_s + 2 * np.pi])
    rad_s = np.tile(rad_s, 3)
    # A row and a column broadcast, not two window-sized coordinate grids: the same values.
    px = (np.arange(shape[1]) + origin[0] - c[0])[None, :]
    py = (np.arange(shape[0]) + origin[1] - c[1])[:, None]
    theta = np.arctan2(py, px)
    rho = np.hypot(px, py) / np.maximum(np.interp(theta, ang_s, rad_s), 1e-6)
    sector = ((theta + np.pi) / (2 * np.pi) * SECTORS).astype(int) % SECTORS
    return sector, rho


def ring_profile(
    resid: np.ndarray, sector: np.ndarray, rho: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """(SECTORS, len(RINGS)) median |residual| per sector and ring (NaN where too few pixels)."""
    width = float(RINGS[1] - RINGS[0])
    ring = np.floor((rho - RINGS[0]) / width + 1e-9).astype(int)
    ok = valid & (ring >= 0) & (ring < len(RINGS))
    prof = np.full((SECTORS, len(RINGS)), np.nan)
    for s, r, v in _groups(sector[ok], ring[ok], resid[ok]):
        if v.size >= 12:
            prof[s, r] = float(np.median(v))
    return prof


def _groups(a: np.ndarray, b: np.ndarray, v: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    key = a * 1000 + b
    order = np.argsort(key, kind="stable")
    key, v = key[order], v[order]
    cuts = np.flatnonzero(np.diff(key)) + 1
    for k, vals in zip(key[np.r_[0, cuts]], np.split(v, cuts), strict=True):
        yield int(k // 1000), int(k % 1000), vals


def ring_steps(prof: np.ndarray) -> np.ndarray:
    """Log-noise step at each ring boundary j: the 2 rings outside minus the 2 rings inside."""
    steps = np.full(prof.shape, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for j in range(2, prof.shape[1] - 2):
            steps[:, j] = np.nanmean(prof[:, j : j + 2], 1) - np.nanmean(prof[:, j - 2 : j], 1)
    return steps


def check_face(image: ImageInput, face: Face, report: FaceReport) -> FaceCheckResult:
    if face.mesh is None:
        return FaceCheckResult(reason="needs the landmark mesh: a box gives no face outline")
    side = min(face.width, face.height)
    if side < MIN_FACE_PX:
        return FaceCheckResult(reason=f"face too small ({side:.0f} px < {MIN_FACE_PX} px)")
    skin = next(r for r in report.regions if r.name == "face skin")
    win = window_of(report, (image.height, image.width))
    masks = part_masks(report, win)
    sl = np.s_[win.y : win.y + win.height, win.x : win.x + win.width]
    gray = image.gray[sl]
    resid = immerkaer_abs(gray)  # |ndimage.correlate(gray, IMMERKAER)|, bit for bit
    valid = (gray > 8) & (gray < 247)  # clipped pixels carry no noise
    for name in EXCLUDE:  # features are texture, not noise
        valid &= ~masks.get(name, np.zeros_like(valid))
    outline = np.asarray(skin.polygon, dtype=np.float64)
    sector, rho = polar(outline, gray.shape, (win.x, win.y))
    prof = np.log(ring_profile(resid, sector, rho, valid) + 0.05)
    # step at each ring boundary j: mean of the 2 rings outside minus the 2 rings inside
    steps = ring_steps(prof)
    good = np.isfinite(steps).sum(axis=0)
    if good.max() < MIN_SECTORS:
        return FaceCheckResult(reason="too little of the face outline is measurable")
    with warnings.catch_warnings():  # all-NaN columns are expected where the face is cropped
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.where(good >= MIN_SECTORS, np.abs(np.nanmedian(steps, axis=0)), 0.0)
    j = int(np.argmax(med))
    step = float(np.nanmedian(steps[:, j]))
    agree = int(np.nansum(np.sign(steps[:, j]) == np.sign(step)))
    score = float(ramp(np.array(abs(step)), STEP_LO, STEP_HI))
    radius = float(RINGS[j])
    direction = "higher" if step > 0 else "lower"
    ev = Evidence(
        kind="faces.seam",
        summary=(
            f"{report.label}: crossing the ring at {radius:.2f}x of the face outline, the noise "
            f"level is {np.exp(abs(step)):.2f}x {direction} outside than inside "
            f"(median over {good[j]} sectors; {agree} agree in sign)"
        ),
        value=round(abs(step), 3),
        bbox=report.face.bbox,
    )
    heat = np.zeros(gray.shape, dtype=np.float32)
    if score > 0:
        sector_strength = np.clip(np.nan_to_num(np.abs(steps[:, j])) / STEP_HI, 0, 1)
        near = np.abs(rho - radius) < 0.04
        heat[near] = (score * sector_strength[sector[near]]).astype(np.float32)
    return FaceCheckResult(score=score, evidence=[ev], heat=(win, heat))


@register_expert
class FaceSeamExpert(Expert):
    spec = ExpertSpec(
        name="face_seam",
        version="0.1.1",
        kind="faces",
        targets="tampered",
        description="noise-level step along a ring inside the face outline (face-swap blending)",
        produces_heatmap=True,
        reference="Li et al., Face X-ray (CVPR 2020): the blending boundary of swapped faces",
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        from ..faces.detect import FaceDetectorUnavailable

        try:
            return run_per_face(self, image, check_face)
        except FaceDetectorUnavailable as exc:
            return self.abstain(str(exc))
