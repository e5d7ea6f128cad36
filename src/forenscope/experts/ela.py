"""Error level analysis (ELA), normalised by texture so an untouched photo stays dark.

Classic ELA (Krawetz 2007) re-saves the image at a known JPEG quality and shows the absolute
difference: areas with another compression history than the rest re-save with a different error.
Raw ELA is also high on every edge, so here the error of each 8x8 block is compared with the
error of blocks of the *same texture* elsewhere in the image (median and MAD per texture
quantile bin): the map is a robust z-score, two-sided, because a pasted area can re-save with
more error (another grid) or less (an earlier lower quality).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..io.input import ImageInput
from ..residual import reflect_border
from ..types import BBox, Evidence, ExpertResult, ExpertSpec
from . import _jpeg_math as jm
from ._signal_math import LUMA
from ._working import paint_blocks, rows_per_strip
from .base import Expert
from .registry import register_expert

RESAVE_QUALITY = 75  # lower than usual ELA (90-95): earlier low-quality saves stand out more
MIN_SIDE = 64
TEXTURE_BINS = 16
ERR_EPS = 0.3  # grey levels added before the log, so flat blocks do not dominate
MAD_FLOOR = 0.15  # in log units: a bin of identical blocks must not give infinite z
Z_HOT = 2.0  # |z| at which the heat map reaches 0.5
MIN_ERROR_DIFF = 0.5  # grey levels a block's error must differ from its texture bin's median
MIN_ERROR_RATIO = 1.25  # and by this factor (either way): a visible contrast, not 5.0 vs 5.6
# Pixels per strip of pixel work, sized by pixels so a strip holds as many bytes at any width
# (its dozen temporaries: about 40 bytes a pixel). On one thread a quarter of this stayed in a
# core's L2 cache and was fastest; beside another expert thread, fewer and longer numpy calls
# hand the GIL over less often, which gains more (BENCHMARKS.md, eighth round).
STRIP_PIXELS = 1 << 18


def strip_rows(width: int) -> int:
    """Rows per strip: a multiple of the 8 px block nearest STRIP_PIXELS / width, at least 8."""
    return rows_per_strip(width, STRIP_PIXELS, 8)


def texture_normalised_z(error: np.ndarray, texture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust z of log block error against blocks of similar log texture, and the typical
    (median) error of each block's texture bin in grey levels."""
    le = np.log(error + ERR_EPS)
    lt = np.log(texture + 0.5)
    edges = np.quantile(lt, np.linspace(0.0, 1.0, TEXTURE_BINS + 1))
    idx = np.clip(np.searchsorted(edges, lt, side="right") - 1, 0, TEXTURE_BINS - 1)
    # The blocks grouped by bin with one sort instead of a mask per bin; a median does not
    # depend on the order of its values. The constants are rounded to the map's dtype, as the
    # scalar arithmetic on it rounded them.
    order = np.argsort(idx.ravel(), kind="stable")
    ends = np.cumsum(np.bincount(idx.ravel(), minlength=TEXTURE_BINS))
    grouped = le.ravel()[order]
    center = np.zeros(TEXTURE_BINS, dtype=le.dtype)
    scale = np.ones(TEXTURE_BINS, dtype=le.dtype)
    level = np.zeros(TEXTURE_BINS, dtype=le.dtype)
    for b in range(TEXTURE_BINS):
        values = grouped[(ends[b - 1] if b else 0) : ends[b]]
        if values.size == 0:
            continue
        med = float(np.median(values))
        mad = float(np.median(np.abs(values - med))) * 1.4826
        center[b], scale[b], level[b] = med, max(mad, MAD_FLOOR), np.exp(med) - ERR_EPS
    return (le - center[idx]) / scale[idx], level[idx]


def _strip_features(
    rgb: np.ndarray, resaved: np.ndarray, r0: int, r1: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Block means of rows [r0, r1) (r0 a multiple of 8): re-save error (`resaved` holds those
    rows re-saved), texture (|Laplacian| of the luma) and share of clipped pixels, as the
    whole-image planes would give them."""
    a, b = rgb[r0:r1], resaved
    d = np.maximum(a, b) - np.minimum(a, b)  # |a - b| without leaving uint8
    total = np.add(d[..., 0], d[..., 1], dtype=np.uint16)
    total += d[..., 2]
    # The three integers add exactly in float32 too: dividing their sum by 3 in float32 gives
    # the float32 channel mean bit for bit.
    error = np.divide(total, np.float32(3), dtype=np.float32)
    # Clipped: a channel at 0..2 or 253..255, i.e. below 6 after adding 3 with uint8 wrap-around.
    shifted = a + np.uint8(3)
    extreme = np.minimum(np.minimum(shifted[..., 0], shifted[..., 1]), shifted[..., 2]) < 6
    return (
        jm.block_mean(error),
        jm.block_mean(_abs_laplace(rgb, r0, r1)),
        jm.block_mean(extreme),
    )


def _abs_laplace(rgb: np.ndarray, r0: int, r1: int) -> np.ndarray:
    """Rows [r0, r1) of `|ndimage.laplace(luma)|` (mode "reflect"), bit for bit.

    scipy sums each second difference in float64 and stores it as float32, then adds the two in
    float32. Luma values of 8-bit pixels are multiples of 2^-27 below 2^8, so the float64 sums
    are exact in any order: the same values, from a strip with one row of margin.
    """
    h, w = rgb.shape[:2]
    top, bottom = max(r0 - 1, 0), min(r1 + 1, h)
    g = np.empty((r1 - r0 + 2, w + 2))  # float64, one pixel of reflected border all round
    # The luma as the whole image's `astype(float32) @ LUMA` gives it (row by row the same).
    g[top - r0 + 1 : bottom - r0 + 1, 1:-1] = rgb[top:bottom].astype(np.float32) @ LUMA
    reflect_border(g, r0 == 0, r1 == h)
    c = g[1:-1, 1:-1]
    t = np.add(g[:-2, 1:-1], g[2:, 1:-1])
    t -= c
    t -= c
    dy = t.astype(np.float32)
    np.add(g[1:-1, :-2], g[1:-1, 2:], out=t)
    t -= c
    t -= c
    out = t.astype(np.float32)
    out += dy
    return np.abs(out, out=out)


def ela_blocks(
    rgb: np.ndarray, quality: int = RESAVE_QUALITY
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block: mean absolute re-save error, the typical error of equally textured blocks,
    and the robust z-map smoothed over blocks.

    The pixel planes are made `strip_rows` rows at a time: no image-sized float planes (six of
    them at 48 MP were 1.2 GB), and each strip's temporaries stay in the CPU cache. The re-save
    too: at 4:4:4 every 8x8 block is coded and decoded on its own, so a strip of whole block
    rows (or one that ends at the image's bottom) re-saves to the whole re-save's pixels, and
    no re-saved copy of the image is made (with Pillow's own copies, 280 MB at 48 MP)."""
    h = rgb.shape[0]
    step = strip_rows(rgb.shape[1])
    parts = []
    for r0 in range(0, h // 8 * 8, step):
        r1 = min(r0 + step, h)
        resaved = jm.recompress(rgb[r0:r1], quality, uint8=True)  # the error is in integers
        parts.append(_strip_features(rgb, resaved, r0, r1))
    eb, tb, xb = (np.concatenate(p) for p in zip(*parts, strict=True))
    z, typical = texture_normalised_z(eb, tb)
    # Clipped (saturated or black) blocks re-save without error whatever their history.
    z[xb > 0.25] = 0.0
    return eb, typical, jm.smooth_blocks(z)


def heat_from_z(z: np.ndarray) -> np.ndarray:
    """Per-block heat: 0.5 at |z| = Z_HOT, 1 at twice that, 0 below Z_HOT / 2."""
    a = np.abs(z)
    return np.where(a >= Z_HOT / 2, np.clip((a - Z_HOT) / (2 * Z_HOT) + 0.5, 0.0, 1.0), 0.0)


def largest_hot_area(z: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Block mask of the largest connected area with |z| >= Z_HOT and its mean signed z."""
    labels, n = ndimage.label(np.abs(z) >= Z_HOT)
    if n == 0:
        return None
    k = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    area = labels == k
    return area, float(z[area].mean())


def score_area(z: np.ndarray, area: np.ndarray) -> float:
    """Needs both: a strong deviation and an area of at least ~1% of the image."""
    strength = float(np.clip((float(np.abs(z[area]).mean()) - Z_HOT) / 2.0, 0.0, 1.0))
    return strength * float(np.clip(area.mean() / 0.01, 0.0, 1.0))


@register_expert
class ElaExpert(Expert):
    spec = ExpertSpec(
        name="ela",
        version="0.1.2",
        kind="signal",
        targets="tampered",
        description=f"Error level analysis: re-save at JPEG quality {RESAVE_QUALITY}, compare "
        "each 8x8 block's error with blocks of the same texture (robust z-score).",
        inputs=["rgb"],
        produces_heatmap=True,
        reference="Krawetz, 'A picture's worth: digital image analysis and forensics', "
        "Black Hat 2007 (error level analysis)",
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        if min(image.height, image.width) < MIN_SIDE:
            return self.abstain(f"image smaller than {MIN_SIDE} px: too few 8x8 blocks")
        eb, typical, z = ela_blocks(image.rgb)
        heat = paint_blocks(heat_from_z(z), (image.height, image.width), cell=8)
        level = float(np.median(eb))
        evidence = [
            Evidence(
                kind="ela.level",
                summary=f"re-saving at JPEG quality {RESAVE_QUALITY} changes pixels by "
                f"{level:.2f} grey levels on a median 8x8 block",
                value=round(level, 3),
            )
        ]
        found = largest_hot_area(z)
        inside = float(np.mean(eb[found[0]])) if found else 0.0
        usual = float(np.mean(typical[found[0]])) if found else 0.0
        diff, ratio = inside - usual, (inside + ERR_EPS) / (usual + ERR_EPS)
        # In flat areas every error is tiny and a fraction of a grey level makes a large z:
        # a difference nobody could see on the ELA image is not reported, nor is one that is
        # small against the error equally textured areas have anyway.
        if found is None or abs(diff) < MIN_ERROR_DIFF or max(ratio, 1 / ratio) < MIN_ERROR_RATIO:
            text = (
                f"no area re-saves differently (by at least {MIN_ERROR_DIFF} grey levels and "
                f"{MIN_ERROR_RATIO:g}x) from equally textured areas elsewhere"
            )
            evidence.append(Evidence(kind="ela.hotspot", summary=text, value=0.0))
            details: dict[str, object] = {"hot_blocks": 0}
            if found is not None:
                details |= {"largest_area_error": inside, "largest_area_typical_error": usual}
            return self.result(0.0, evidence=evidence, heatmap=heat, details=details)
        area, mean_z = found
        rows, cols = np.nonzero(area)
        x, y = int(cols.min()) * 8, int(rows.min()) * 8
        w, h = (int(cols.max()) + 1) * 8 - x, (int(rows.max()) + 1) * 8 - y
        evidence.append(
            Evidence(
                kind="ela.hotspot",
                summary=f"area x={x}..{x + w - 1}, y={y}..{y + h - 1} re-saves with "
                f"{'more' if diff > 0 else 'less'} error than equally textured areas elsewhere: "
                f"{inside:.2f} vs {usual:.2f} grey levels per pixel "
                f"({inside / max(usual, 1e-3):.2f}x, {diff:+.2f}; mean z {mean_z:+.1f} over "
                f"{int(area.sum())} blocks of 8x8)",
                value=round(mean_z, 2),
                bbox=BBox(x=x, y=y, width=w, height=h),
            )
        )
        details = {
            "hot_blocks": int(area.sum()),
            "hot_mean_z": mean_z,
            "hot_error": inside,
            "hot_typical_error": usual,
            "hot_error_diff": diff,
        }
        return self.result(score_area(z, area), evidence=evidence, heatmap=heat, details=details)
