"""Noise-residual consistency: blocks whose noise level departs from what the image predicts.

A photo from one camera carries one noise level that depends on brightness and on how much fine
texture a block holds. A pasted region from another source brings its own noise. We measure the
noise per 16 px block as the MAD of a second-order (Immerkaer 1996) residual, predict it from the
block's brightness and from the same residual on the 4x4-averaged image (image texture survives
the averaging, white noise drops 4x), and map blocks with more noise than predicted. Clipped
(saturated or black) blocks carry no noise and are skipped.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..io.input import ImageInput
from ..types import Evidence, ExpertResult, ExpertSpec
from ._signal_math import (
    MAD_TO_SIGMA,
    bbox_words,
    blocks,
    components,
    ramp,
    robust_center_scale,
    upsample_blocks,
)
from .base import Expert
from .registry import register_expert

BLOCK = 16
# Immerkaer's kernel: zero response to linear ramps; divided by 6 so that white noise of sigma s
# gives a residual of sigma s.
_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32) / 6.0
Z_LO, Z_HI = 3.0, 6.0  # heatmap 0..1 over this smoothed-z range; 0.5 at z = 4.5
MIN_BLOCKS = 48  # fewer valid blocks cannot give a stable image-wide noise model


def residual_sigma(gray: np.ndarray, size: int) -> np.ndarray:
    """Per-block noise sigma: MAD of the Immerkaer residual (robust to a few edge pixels)."""
    r = np.abs(ndimage.correlate(gray, _KERNEL, mode="reflect"))
    return np.asarray(np.median(blocks(r, size), axis=2) * MAD_TO_SIGMA, dtype=np.float64)


def block_features(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Noise sigma at full and quarter resolution, brightness and clipping share per block."""
    g = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    fine = residual_sigma(g, BLOCK)
    return {
        "fine": fine,
        "coarse": coarse_sigma(g, fine.shape),
        "mean": blocks(g, BLOCK).mean(axis=2) / 255.0,
        "clipped": blocks(
            ((rgb.max(axis=2) >= 250) | (rgb.min(axis=2) <= 3)).astype(np.float32), BLOCK
        ).mean(axis=2),
    }


def coarse_sigma(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Residual level of the 4x-averaged image in a 2-block window around each block.

    Averaging 4x4 pixels cuts white noise by 4 but keeps most image texture, so this measures
    texture, not noise.
    """
    h4, w4 = g.shape[0] // 4 * 4, g.shape[1] // 4 * 4
    low = g[:h4, :w4].reshape(h4 // 4, 4, w4 // 4, 4).mean(axis=(1, 3))
    r = ndimage.uniform_filter(
        np.abs(ndimage.correlate(low, _KERNEL, mode="reflect")), 2 * BLOCK // 4
    )
    cy = np.minimum((np.arange(shape[0]) * BLOCK + BLOCK // 2) // 4, r.shape[0] - 1)
    cx = np.minimum((np.arange(shape[1]) * BLOCK + BLOCK // 2) // 4, r.shape[1] - 1)
    return np.asarray(r[np.ix_(cy, cx)] * 1.2533, dtype=np.float64)  # mean |N(0, s)| = 0.798 s


def noise_zmap(f: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
    """Robust z of log(noise) against a brightness + texture model; returns z, valid, model MAD."""
    valid = f["clipped"] < 0.2
    y = np.log(np.maximum(f["fine"], 0.1))
    t = np.log(np.maximum(f["coarse"], 0.1))
    m = f["mean"]
    x = np.stack([np.ones_like(m), m, m * m, t, t * t], axis=-1)
    fit = valid.copy()
    res = np.zeros_like(y)
    center, scale = 0.0, 1.0
    for _ in range(3):  # refit without the outliers: the forged blocks must not set the model
        beta, *_ = np.linalg.lstsq(x[fit], y[fit], rcond=None)
        res = y - x @ beta
        center, scale = robust_center_scale(res[fit])
        fit = valid & (np.abs(res - center) < 2.5 * scale)
    z = (res - center) / max(scale, 0.02)
    return np.where(valid, z, 0.0), valid, scale


def smooth_valid(z: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """3x3-block mean of z over valid blocks only (one noisy block is not a region)."""
    num = ndimage.uniform_filter(np.where(valid, z, 0.0), 3, mode="nearest")
    den = ndimage.uniform_filter(valid.astype(np.float64), 3, mode="nearest")
    return np.where(valid, num / np.maximum(den, 1e-3), 0.0)


@register_expert
class NoiseConsistency(Expert):
    spec = ExpertSpec(
        name="noise",
        version="0.1.0",
        kind="signal",
        targets="tampered",
        description=(
            "Local noise level (MAD of a second-order residual per 16 px block) against the "
            "level the image's brightness and texture predict; marks regions with foreign noise."
        ),
        produces_heatmap=True,
        reference=(
            "Immerkaer 1996 (fast noise variance estimation); Mahdian & Saic 2009 "
            "(using noise inconsistencies for blind image forensics); Lyu et al. 2014"
        ),
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        rgb = image.rgb
        if min(rgb.shape[:2]) < 6 * BLOCK:
            return self.abstain(f"image too small for noise blocks (< {6 * BLOCK} px a side)")
        f = block_features(rgb)
        z, valid, scale = noise_zmap(f)
        if int(valid.sum()) < MIN_BLOCKS:
            return self.abstain("too few unclipped blocks to model the image's noise")
        if float(np.percentile(f["fine"][valid], 90)) < 0.15:
            return self.abstain("flat image: no measurable noise or texture")
        smooth = smooth_valid(z, valid)
        zs = np.maximum(smooth, 0.0)  # one-sided: more noise than predicted
        heat = upsample_blocks(ramp(zs, Z_LO, Z_HI), BLOCK, rgb.shape[:2])
        # Less noise than predicted is not mapped: smooth JPEG areas do it naturally (10% of
        # blocks at z <= -1 on untouched photos); its share is kept in details for the record.
        low = float((smooth[valid] <= -Z_LO).mean())
        return self._report(f, zs, valid, heat, scale, low)

    def _report(
        self,
        f: dict[str, np.ndarray],
        zs: np.ndarray,
        valid: np.ndarray,
        heat: np.ndarray,
        scale: float,
        low_share: float,
    ) -> ExpertResult:
        k = max(4, int(0.01 * valid.sum()))
        top = float(np.sort(zs[valid])[-k:].mean())  # strength of the strongest 1% of blocks
        score = float(ramp(np.array(top), 4.0, 8.0))
        typical = float(np.median(f["fine"][valid]))
        evidence = [
            Evidence(
                kind="noise.model",
                summary=(
                    f"Typical noise sigma {typical:.2f} grey levels over {int(valid.sum())} "
                    f"unclipped {BLOCK}px blocks; model spread {scale:.2f} (log units)."
                ),
                value=round(typical, 3),
            )
        ]
        hot = heat >= 0.5
        for box, n in components(hot, min_pixels=4 * BLOCK * BLOCK)[:3]:
            sl = (slice(box.y, box.y + box.height), slice(box.x, box.x + box.width))
            inside = float(np.median(_pixel_sigma(f["fine"], sl, hot)))
            evidence.append(
                Evidence(
                    kind="noise.inconsistent_region",
                    summary=(
                        f"Region {bbox_words(box)} ({n} px) has noise sigma about {inside:.2f} "
                        f"vs {typical:.2f} elsewhere, more than its brightness and texture explain."
                    ),
                    value=round(inside / max(typical, 1e-3), 2),
                    bbox=box,
                )
            )
        details = {
            "block": BLOCK,
            "typical_sigma": round(typical, 3),
            "model_spread": round(scale, 3),
            "top_z": round(top, 2),
            "flagged_share": round(float(hot.mean()), 4),
            "low_noise_share": round(low_share, 4),
        }
        return self.result(score, evidence=evidence, heatmap=heat, details=details)


def _pixel_sigma(fine: np.ndarray, sl: tuple[slice, slice], hot: np.ndarray) -> np.ndarray:
    """Sigmas of the flagged blocks inside a region's box (for the evidence sentence)."""
    c = BLOCK // 2
    flagged = hot[c::BLOCK, c::BLOCK][: fine.shape[0], : fine.shape[1]]
    inside = np.zeros_like(flagged)
    inside[
        sl[0].start // BLOCK : sl[0].stop // BLOCK + 1,
        sl[1].start // BLOCK : sl[1].stop // BLOCK + 1,
    ] = True
    picked = fine[: flagged.shape[0], : flagged.shape[1]][flagged & inside]
    return picked if picked.size else np.asarray(fine.ravel()[:1])
