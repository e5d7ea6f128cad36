"""Frequency spectrum: local resampling traces (tampered) and global periodic peaks (generated).

Local (Kirchner 2008): a fixed linear predictor leaves a small error on interpolated pixels, so
the probability map p = exp(-e^2) of an enlarged (resampled) region is periodic. Per 64 px block
(stride 32) we take the row- and column-profiles of p, and compare their spectra with the image's
median block spectrum; a peak that the rest of the image lacks marks the block.

Global (Durall 2020, Frank 2020): generator upsamplers leave isolated peaks on the grid of their
upsampling period in the averaged spectrum of the image residual. A JPEG 8x8 grid and camera
demosaicing (period 2) produce the same peaks, so only periods 4 and 8 of a never-JPEG image
count, and only as weak evidence.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from ..io.input import ImageInput
from ..types import Evidence, ExpertResult, ExpertSpec
from ._signal_math import bbox_words, components, ramp, upsample_blocks
from .base import Expert
from .registry import register_expert

BLOCK, STEP = 64, 32  # local analysis window and stride
LOW_BINS = 4  # profile-spectrum bins below this carry image content, not resampling
LOCAL_LO, LOCAL_HI = 3.0, 6.0  # summed x+y log-power excess (nats); heat 0.5 at 4.5
TILE = 64  # Welch tile for the global spectrum
GLOBAL_LO, GLOBAL_HI = 6.0, 12.0  # significance of a global grid peak; score 0.5 at 9
# Kirchner's fixed predictor: each pixel from its 8 neighbours.
_PREDICTOR = np.array([[-0.25, 0.5, -0.25], [0.5, 0.0, 0.5], [-0.25, 0.5, -0.25]], np.float32)


def predictor_residual(gray: np.ndarray) -> np.ndarray:
    return np.asarray(gray - ndimage.correlate(gray, _PREDICTOR, mode="reflect"))


def block_profiles(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-profile (along x) and row-profile (along y) of every BLOCK window, stride STEP."""
    h, w = p.shape
    ny, nx = (h - BLOCK) // STEP + 1, (w - BLOCK) // STEP + 1
    k = BLOCK // STEP
    strips = p[: (ny + k - 1) * STEP].reshape(-1, STEP, w).sum(axis=1)
    cols = sum(strips[i : i + ny] for i in range(k))  # (ny, w): column sums over BLOCK rows
    px = np.stack([cols[:, j * STEP : j * STEP + BLOCK] for j in range(nx)], axis=1)
    bands = p[:, : (nx + k - 1) * STEP].reshape(h, -1, STEP).sum(axis=2)
    rows = sum(bands[:, j : j + nx] for j in range(k))  # (h, nx): row sums over BLOCK columns
    py = np.stack([rows[i * STEP : i * STEP + BLOCK] for i in range(ny)], axis=0)
    return px / BLOCK, py.transpose(0, 2, 1) / BLOCK


def log_spectrum(profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log power of each profile above LOW_BINS, minus its own median; and a flatness flag."""
    x = profiles - profiles.mean(axis=-1, keepdims=True)
    power = np.abs(np.fft.rfft(x * np.hanning(x.shape[-1]), axis=-1)) ** 2
    logp = np.log(power[..., LOW_BINS:] + 1e-12)
    flat = x.std(axis=-1) < 1e-3  # constant profile: a flat block, nothing to measure
    return logp - np.median(logp, axis=-1, keepdims=True), flat


def local_excess(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per block of the predictor residual e: strongest x+y spectral excess over the image's
    median block, and its frequency bin."""
    px, py = block_profiles(np.exp(-e * e))
    sx, flat_x = log_spectrum(px)
    sy, flat_y = log_spectrum(py)
    # The image-wide median removes what every block shares (e.g. a JPEG 8x8 grid).
    ex = sx - np.median(sx.reshape(-1, sx.shape[-1]), axis=0)
    ey = sy - np.median(sy.reshape(-1, sy.shape[-1]), axis=0)
    total = ex + ey  # isotropic rescaling puts its peak at the same bin in both directions
    best = total.max(axis=-1)
    best[flat_x | flat_y] = 0.0
    return best, total.argmax(axis=-1) + LOW_BINS


def global_peaks(residual: np.ndarray) -> dict[str, Any]:
    """Averaged TILE x TILE power spectrum of the residual; strongest peak on the 8 px grid."""
    h, w = residual.shape
    ny, nx = h // TILE, w // TILE
    tiles = residual[: ny * TILE, : nx * TILE].reshape(ny, TILE, nx, TILE).transpose(0, 2, 1, 3)
    t = tiles.reshape(-1, TILE, TILE)
    power = (np.abs(np.fft.fft2(t - t.mean(axis=(1, 2), keepdims=True))) ** 2).mean(axis=0)
    logp = np.log(power + 1e-9)
    excess = logp - ndimage.median_filter(logp, size=5, mode="wrap")
    sig = excess * np.sqrt(ny * nx)  # the mean of n periodograms has log-spread ~ 1/sqrt(n)
    s = TILE // 8
    grid = np.zeros_like(sig, dtype=bool)
    grid[::s, ::s] = True
    grid[:: TILE // 2, :: TILE // 2] = False  # period 2 (and DC): camera demosaicing does this
    v, u = np.unravel_index(np.argmax(np.where(grid, sig, -np.inf)), sig.shape)
    fy, fx = min(v, TILE - v) / TILE, min(u, TILE - u) / TILE
    # The grid period: the smallest P with P*fx and P*fy whole numbers (2, 4 or 8 here).
    period = next(p for p in (2, 4, 8) if (p * fx).is_integer() and (p * fy).is_integer())
    return {"significance": float(sig[v, u]), "fx": float(fx), "fy": float(fy), "period_px": period}


def factor_candidates(freq: float) -> str:
    """Words for the causes of a peak at freq: enlargement factors s with 1/s = +-freq mod 1."""
    cands = sorted({round(1.0 / f, 2) for f in (freq, 1.0 - freq) if 0.0 < f < 1.0})
    text = "enlarging by " + " or ".join(f"x{c:g}" for c in cands)
    if abs(freq - 0.5) < 1e-9:  # period 2 is also what colour-filter demosaicing leaves
        text += ", or by another camera's demosaicing (a spliced photo)"
    return text


@register_expert
class SpectrumExpert(Expert):
    spec = ExpertSpec(
        name="spectrum",
        version="0.1.0",
        kind="signal",
        targets="both",
        description=(
            "Frequency analysis: local periodic interpolation traces of resampled regions "
            "(tampered), and global periodic peaks of upsampling grids (generator evidence)."
        ),
        produces_heatmap=True,
        reference=(
            "Popescu & Farid 2005; Kirchner 2008 (fast resampling detection); "
            "Durall et al. 2020 and Frank et al. 2020 (spectral artifacts of generators)"
        ),
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        gray = image.gray
        if min(gray.shape) < 2 * BLOCK:
            return self.abstain(f"image too small for spectral blocks (< {2 * BLOCK} px a side)")
        e = predictor_residual(gray)
        if float(np.mean(np.abs(e) > 1.0)) < 0.02:
            return self.abstain("flat image: almost no pixel-level detail to analyse")
        best, bins = local_excess(e)
        smooth = ndimage.uniform_filter(best, 3, mode="nearest")
        heat = upsample_blocks(ramp(smooth, LOCAL_LO, LOCAL_HI), BLOCK, gray.shape, step=STEP)
        glob = global_peaks(e)
        return self._report(image, smooth, bins, heat, glob)

    def _report(
        self,
        image: ImageInput,
        smooth: np.ndarray,
        bins: np.ndarray,
        heat: np.ndarray,
        glob: dict[str, Any],
    ) -> ExpertResult:
        local_score = float(ramp(np.array(smooth.max()), LOCAL_LO + 0.5, LOCAL_HI + 1.0))
        jpeg = image.is_jpeg
        global_score = (
            0.0 if jpeg else float(ramp(np.array(glob["significance"]), GLOBAL_LO, GLOBAL_HI))
        )
        evidence = self._local_evidence(smooth, bins, heat)
        evidence.append(self._global_evidence(glob, jpeg, global_score))
        details = {
            "local_resampling": round(local_score, 3),
            "global_periodicity": round(global_score, 3),
            "global_judged": not jpeg,
            "global_peak": {
                k: (round(v, 3) if isinstance(v, float) else v) for k, v in glob.items()
            },
            "local_max_excess": round(float(smooth.max()), 2),
            "flagged_share": round(float((heat >= 0.5).mean()), 4),
        }
        score = max(local_score, global_score)
        return self.result(score, evidence=evidence, heatmap=heat, details=details)

    def _local_evidence(
        self, smooth: np.ndarray, bins: np.ndarray, heat: np.ndarray
    ) -> list[Evidence]:
        out = []
        for box, n in components(heat >= 0.5, min_pixels=BLOCK * BLOCK // 2)[:3]:
            cy = min((box.y + box.height // 2) // STEP, bins.shape[0] - 1)
            cx = min((box.x + box.width // 2) // STEP, bins.shape[1] - 1)
            freq = int(bins[cy, cx]) / BLOCK
            out.append(
                Evidence(
                    kind="spectrum.resampled_region",
                    summary=(
                        f"Local resampling: region {bbox_words(box)} ({n} px) shows a periodic "
                        f"interpolation pattern at {freq:.3f} cycles/px that the rest of the "
                        f"image lacks, as left by {factor_candidates(freq)}."
                    ),
                    value=round(freq, 4),
                    bbox=box,
                )
            )
        return out

    @staticmethod
    def _global_evidence(glob: dict[str, Any], jpeg: bool, score: float) -> Evidence:
        where = f"period {glob['period_px']} px (fx={glob['fx']:.3f}, fy={glob['fy']:.3f})"
        if jpeg:
            text = (
                f"Global periodicity not judged: the file is JPEG, whose 8x8 grid puts peaks on "
                f"the same frequencies as generator upsampling (strongest: {where})."
            )
        else:
            text = (
                f"Global periodicity: strongest peak on the 4/8 px upsampling grid at {where}, "
                f"significance {glob['significance']:.1f} (>= {GLOBAL_HI:g} is strong); "
                f"{'generator-like' if score >= 0.5 else 'not distinctive'}."
            )
        return Evidence(kind="spectrum.global_periodicity", summary=text, value=round(score, 3))
