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
from ..types import BBox, Evidence, ExpertResult, ExpertSpec
from . import _jpeg_math as jm
from ._signal_math import channel_mean3, channel_min_max
from ._working import paint_blocks
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


def texture_normalised_z(error: np.ndarray, texture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Robust z of log block error against blocks of similar log texture, and the typical
    (median) error of each block's texture bin in grey levels."""
    le = np.log(error + ERR_EPS)
    lt = np.log(texture + 0.5)
    edges = np.quantile(lt, np.linspace(0.0, 1.0, TEXTURE_BINS + 1))
    idx = np.clip(np.searchsorted(edges, lt, side="right") - 1, 0, TEXTURE_BINS - 1)
    z = np.zeros_like(le)
    typical = np.zeros_like(le)
    for b in range(TEXTURE_BINS):
        sel = idx == b
        if not sel.any():
            continue
        med = float(np.median(le[sel]))
        mad = float(np.median(np.abs(le[sel] - med))) * 1.4826
        z[sel] = (le[sel] - med) / max(mad, MAD_FLOOR)
        typical[sel] = np.exp(med) - ERR_EPS
    return z, typical


def ela_blocks(
    rgb: np.ndarray, quality: int = RESAVE_QUALITY
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block: mean absolute re-save error, the typical error of equally textured blocks,
    and the robust z-map smoothed over blocks."""
    resaved = jm.recompress(rgb, quality)
    error = channel_mean3(np.abs(resaved - rgb.astype(np.float32)))
    gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    texture = np.asarray(np.abs(ndimage.laplace(gray)))
    eb = jm.block_mean(error)
    z, typical = texture_normalised_z(eb, jm.block_mean(texture))
    # Clipped (saturated or black) blocks re-save without error whatever their history.
    lo, hi = channel_min_max(rgb)
    extreme = np.asarray((lo <= 2) | (hi >= 253), dtype=np.float32)
    clipped = jm.block_mean(extreme) > 0.25
    z[clipped] = 0.0
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
