"""Noise-residual consistency: blocks whose noise level departs from what the image predicts.

A photo from one camera carries one noise level that depends on brightness and on how much fine
texture a block holds. A pasted region from another source brings its own noise. We measure the
noise per 16 px block as the MAD of a second-order (Immerkaer 1996) residual, predict it from the
block's brightness and from the same residual on the 4x4-averaged image (image texture survives
the averaging, white noise drops 4x), and map blocks with more noise than predicted. Clipped
(saturated or black) blocks carry no noise and are skipped. The z-score counts each block's own
measurement error (sampling and the 1/6-grey-level steps of integer pixels), and an area is
reported only when its sigma visibly exceeds the predicted one (ratio and difference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..io.input import ImageInput
from ..residual import IMMERKAER, immerkaer_abs
from ..types import Evidence, ExpertResult, ExpertSpec
from ._signal_math import (
    MAD_TO_SIGMA,
    bbox_words,
    block_median,
    blocks,
    components,
    luma_matmul,
    ramp,
    robust_center_scale,
    upsample_blocks,
)
from ._working import paint_blocks
from .base import Expert
from .registry import register_expert

BLOCK = 16
# Block rows per strip of pixel work (a strip's luma, residual and block copies: about 25 bytes
# a pixel, 3 MB a block row at 48 MP). One fits a core's L2 cache, but four make a quarter of the
# numpy calls, each of which can hand the GIL to the other expert thread (BENCHMARKS.md,
# eighth round).
STRIP_BLOCKS = 4
LUMA_ROWS = 32  # rows per luma product: its float32 RGB copy (12 bytes a pixel) stays small
Z_LO, Z_HI = 3.0, 6.0  # heatmap 0..1 over this smoothed-z range; 0.5 at z = 4.5
MIN_BLOCKS = 48  # fewer valid blocks cannot give a stable image-wide noise model
# A region is reported (and scores) only with a contrast a person can check in the numbers:
# its sigma at least 1.5x and 0.5 grey levels above the predicted one. A z-score alone can come
# from a tiny model spread (0.25 vs 0.25 on a smooth JPEG).
MIN_RATIO = 1.5
MIN_DIFF = 0.5
MIN_REGION_BLOCKS = 4  # a described region covers at least 4 blocks (1024 px)
QUANT_STEP = MAD_TO_SIGMA / 6.0  # sigma step of integer pixels through the kernel (0.247)


def clipped_share(rgb: np.ndarray, size: int) -> np.ndarray:
    """Share of pixels per block with a channel at 0..3 or 250..255 (float32, as the mean of a
    0/1 plane gives it): plus 6 with uint8 wrap-around, those are the values up to 9."""
    nby, nbx = rgb.shape[0] // size, rgb.shape[1] // size
    step = STRIP_BLOCKS * size
    per_column = np.empty((nby, nbx * size), np.uint16)
    for r0 in range(0, nby * size, step):
        shifted = rgb[r0 : min(r0 + step, nby * size), : nbx * size] + np.uint8(6)
        low = np.minimum(np.minimum(shifted[..., 0], shifted[..., 1]), shifted[..., 2]) <= 9
        # Counts, not float means (exact either way): each block row's rows added as whole
        # rows (fast), then each block's columns, plane by plane.
        rows = low.view(np.uint8).reshape(-1, size, nbx * size)
        per_column[r0 // size : r0 // size + rows.shape[0]] = rows.sum(axis=1, dtype=np.uint16)
    planes = per_column.reshape(nby, nbx, size)
    counts = planes[..., 0].copy()
    for k in range(1, size):
        counts += planes[..., k]
    return np.asarray(counts.astype(np.float32) / np.float32(size * size))


def luma_planes(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Of the luma `g = luma_matmul(rgb)`: per-block noise sigma (MAD of the Immerkaer
    residual, robust to a few edge pixels), `blocks(g, BLOCK).mean(axis=2)` and the 4x4 means
    (rows and columns up to a multiple of 4), in one pass of STRIP_BLOCKS block rows.

    Each strip of the luma (one row of margin for the 3x3 kernel) is made and used while it is
    in the CPU cache, and no image-sized luma plane is made (183 MB at 48 MP, a fresh mmap
    there: see allocator). The luma is computed row by row, so a strip of it is the whole
    plane's rows; all three are per block (the kernel sees its reflected border only at the
    image's first and last row), so the values are the whole plane's bit for bit."""
    h, w = rgb.shape[:2]
    hb, h4, w4 = h // BLOCK * BLOCK, h // 4 * 4, w // 4 * 4
    step = STRIP_BLOCKS * BLOCK
    low = np.empty((h4 // 4, w4 // 4), np.float32)
    fine, means = [], []
    for r0 in range(0, h4, step):
        r1 = min(r0 + step, h4)
        top, bottom = max(r0 - 1, 0), min(r1 + 1, h)  # the kernel's margin rows
        g = luma_matmul(rgb[top:bottom], rows=LUMA_ROWS)
        s = g[r0 - top : r1 - top]
        low[r0 // 4 : r1 // 4] = _mean4x4(s[:, :w4].reshape(-1, 4, w4 // 4, 4))
        n = min(r1, hb) - r0  # rows of whole blocks in the strip
        if n > 0:
            fine.append(block_median(immerkaer_abs(g, r0 - top, n), BLOCK))
            means.append(blocks(s[:n], BLOCK).mean(axis=2))
    sigma = np.asarray(np.concatenate(fine) * MAD_TO_SIGMA, dtype=np.float64)
    return sigma, np.concatenate(means), low


def block_features(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Noise sigma at full and quarter resolution, brightness and clipping share per block."""
    fine, mean, low = luma_planes(rgb)
    # White noise of sigma s leaves about s/4 at the coarse level; what is left is texture. So
    # a noisy pasted patch on a smooth scene is not mistaken for a textured one.
    coarse = coarse_sigma(low, fine.shape)
    return {
        "fine": fine,
        "coarse": np.sqrt(np.maximum(coarse**2 - (fine / 4) ** 2, 0.0)),
        "mean": mean / 255.0,
        "clipped": clipped_share(rgb, BLOCK),
    }


def coarse_sigma(low: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Residual level of the 4x-averaged image `low` in a 2-block window around each block.

    Averaging 4x4 pixels cuts white noise by 4 but keeps most image texture, so this measures
    texture, not noise.
    """
    r = ndimage.uniform_filter(
        np.abs(ndimage.correlate(low, IMMERKAER, mode="reflect")), 2 * BLOCK // 4
    )
    cy = np.minimum((np.arange(shape[0]) * BLOCK + BLOCK // 2) // 4, r.shape[0] - 1)
    cx = np.minimum((np.arange(shape[1]) * BLOCK + BLOCK // 2) // 4, r.shape[1] - 1)
    return np.asarray(r[np.ix_(cy, cx)] * 1.2533, dtype=np.float64)  # mean |N(0, s)| = 0.798 s


def _mean4x4(v: np.ndarray) -> np.ndarray:
    """`v.mean(axis=(1, 3))` of (rows, 4, cols, 4) float32, bit for bit: numpy adds each
    row's 4 values in order, then the 4 row sums in order. Plane by plane here, 5x faster than
    its reduction over two short axes."""
    rows = [((v[:, i, :, 0] + v[:, i, :, 1]) + v[:, i, :, 2]) + v[:, i, :, 3] for i in range(4)]
    return np.asarray((((rows[0] + rows[1]) + rows[2]) + rows[3]) / 16)


def noise_zmap(f: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Robust z of log(noise) against a brightness + texture model; returns z, valid, model MAD
    and the model's predicted sigma per block (grey levels)."""
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
    predicted = np.exp(y - res + center)
    z = (res - center) / np.sqrt(max(scale, 0.02) ** 2 + measurement_var(predicted))
    return np.where(valid, z, 0.0), valid, scale, predicted


def measurement_var(sigma: np.ndarray) -> np.ndarray:
    """Variance (log units) of one block's sigma estimate at true level `sigma`.

    The MAD of BLOCK*BLOCK samples scatters by ~1.17/sqrt(n) relative; and integer pixels make
    the residual a multiple of 1/6, so the estimate moves in steps of QUANT_STEP. On a smooth,
    compressed image (sigma ~ 0.25) one step is a doubling: without this term the model's
    spread collapses to zero and one step reads as a huge z.
    """
    sampling = (1.17 / BLOCK) ** 2
    quant = (QUANT_STEP / np.sqrt(12.0) / np.maximum(sigma, 0.05)) ** 2
    return np.asarray(sampling + quant)


def smooth_valid(z: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """3x3-block mean of z over valid blocks only (one noisy block is not a region)."""
    num = ndimage.uniform_filter(np.where(valid, z, 0.0), 3, mode="nearest")
    den = ndimage.uniform_filter(valid.astype(np.float64), 3, mode="nearest")
    return np.where(valid, num / np.maximum(den, 1e-3), 0.0)


@register_expert
class NoiseConsistency(Expert):
    spec = ExpertSpec(
        name="noise",
        version="0.2.1",
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
        z, valid, scale, predicted = noise_zmap(f)
        if int(valid.sum()) < MIN_BLOCKS:
            return self.abstain("too few unclipped blocks to model the image's noise")
        if float(np.percentile(f["fine"][valid], 90)) < 0.15:
            return self.abstain("flat image: no measurable noise or texture")
        smooth = smooth_valid(z, valid)
        zs = np.maximum(smooth, 0.0)  # one-sided: more noise than predicted
        regions, faint = contrasted_regions(zs, valid, f["fine"], predicted)
        zs = np.where(faint, 0.0, zs)  # a statistical outlier with no visible contrast
        heat = paint_blocks(ramp(zs, Z_LO, Z_HI), rgb.shape[:2], cell=BLOCK)
        # Less noise than predicted is not mapped: smooth JPEG areas do it naturally (10% of
        # blocks at z <= -1 on untouched photos); its share is kept in details for the record.
        low = float((smooth[valid] <= -Z_LO).mean())
        k = max(4, int(0.01 * valid.sum()))
        top = float(np.sort(zs[valid])[-k:].mean())  # strength of the strongest 1% of blocks
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
        evidence += [r.evidence(rgb.shape[:2]) for r in regions[:3]]
        if not regions:
            evidence.append(_no_region(int(ndimage.label(faint)[1])))
        details = {
            "block": BLOCK,
            "typical_sigma": round(typical, 3),
            "model_spread": round(scale, 3),
            "top_z": round(top, 2),
            "flagged_share": round(float((heat >= 0.5).mean()), 4),
            "low_noise_share": round(low, 4),
            "regions": [r.record() for r in regions],
        }
        score = float(ramp(np.array(top), 4.0, 8.0))
        return self.result(score, evidence=evidence, heatmap=heat, details=details)


@dataclass(frozen=True)
class Region:
    """A block area with more noise than predicted, and the numbers that show it."""

    blocks: np.ndarray
    measured: float  # median sigma of its blocks (grey levels)
    expected: float  # median sigma the model predicts for them
    elsewhere: float  # median sigma of the valid blocks outside it

    def evidence(self, shape: tuple[int, int]) -> Evidence:
        painted = upsample_blocks(self.blocks.astype(np.float32), BLOCK, shape) >= 0.5
        box, n = components(painted)[0]
        ratio = self.measured / self.expected
        return Evidence(
            kind="noise.inconsistent_region",
            summary=(
                f"Region {bbox_words(box)} ({n} px) has noise sigma {self.measured:.2f} grey "
                f"levels where its brightness and texture predict {self.expected:.2f} "
                f"({ratio:.1f}x, +{self.measured - self.expected:.2f}); typical elsewhere "
                f"{self.elsewhere:.2f}."
            ),
            value=round(ratio, 2),
            bbox=box,
        )

    def record(self) -> dict[str, float | int]:
        return {
            "blocks": int(self.blocks.sum()),
            "sigma": round(self.measured, 3),
            "predicted": round(self.expected, 3),
            "elsewhere": round(self.elsewhere, 3),
        }


def contrasted_regions(
    zs: np.ndarray, valid: np.ndarray, fine: np.ndarray, predicted: np.ndarray
) -> tuple[list[Region], np.ndarray]:
    """Hot block areas whose measured noise exceeds the predicted one by MIN_RATIO and
    MIN_DIFF grey levels (largest first), and the mask of hot areas that do not."""
    labels, n = ndimage.label(zs >= (Z_LO + Z_HI) / 2)
    regions: list[Region] = []
    faint = np.zeros_like(valid)
    for k in range(1, n + 1):
        area = (labels == k) & valid
        if not area.any():
            continue
        measured = float(np.median(fine[area]))
        expected = max(float(np.median(predicted[area])), 1e-3)
        if measured >= MIN_RATIO * expected and measured - expected >= MIN_DIFF:
            if area.sum() >= MIN_REGION_BLOCKS:  # smaller ones score but are not described
                rest = valid & ~area
                elsewhere = float(np.median(fine[rest])) if rest.any() else float("nan")
                regions.append(Region(area, measured, expected, elsewhere))
        else:
            faint |= labels == k
    regions.sort(key=lambda r: -int(r.blocks.sum()))
    return regions, faint


def _no_region(faint: int) -> Evidence:
    near = f"; {faint} area(s) stood out statistically by less than that" if faint else ""
    return Evidence(
        kind="noise.none",
        summary=(
            f"No region has more noise than its brightness and texture predict by at least "
            f"{MIN_RATIO:g}x and {MIN_DIFF:g} grey levels{near}."
        ),
        value=0.0,
    )
