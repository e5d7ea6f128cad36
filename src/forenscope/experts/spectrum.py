"""Frequency spectrum: local resampling traces (tampered) and global periodic peaks (generated).

Local (Kirchner 2008): a fixed linear predictor leaves a small error on interpolated pixels, so
the probability map p = exp(-e^2) of an enlarged (resampled) region is periodic. Per 64 px block
(stride 32) we take the row- and column-profiles of p, and compare their spectra with the image's
median block spectrum; a peak of its own that the rest of the image lacks marks the block.

Resizing a whole photo (web photos, wallpapers) is not tampering. When the trace of a marked area
is about as strong in equally textured blocks elsewhere, or in the image's median block, the
whole image was resampled: that is reported as context and does not raise the score.

Global (Durall 2020, Frank 2020): generator upsamplers leave isolated peaks on the grid of their
upsampling period in the averaged spectrum of the image residual. A JPEG 8x8 grid and camera
demosaicing (period 2) produce the same peaks, so only periods 4 and 8 of an image without a
JPEG file or 8 px grid count, and only as weak evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..io.input import ImageInput
from ..residual import reflect_border
from ..types import Evidence, ExpertResult, ExpertSpec
from . import _jpeg_math as jm
from ._signal_math import bbox_words, components, ramp, upsample_blocks
from ._working import paint_blocks, rows_per_strip
from .base import Expert
from .registry import register_expert

BLOCK, STEP = 64, 32  # local analysis window and stride
# Pixels per strip of the predictor's pixel work (float64 temporaries, about 40 bytes a pixel),
# by pixels so a strip holds as many bytes at any width. A quarter of this fits a core's L2
# cache, but fewer numpy calls hand the GIL to the other expert thread less often, which gains
# more (BENCHMARKS.md, eighth round).
STRIP_PIXELS = 1 << 17
LOW_BINS = 4  # profile-spectrum bins below this carry image content, not resampling
LOCAL_LO, LOCAL_HI = 3.0, 6.0  # summed x+y log-power excess (nats); heat 0.5 at 4.5
TILE = 64  # Welch tile for the global spectrum
GLOBAL_CHUNK = 512  # tiles transformed at a time
GLOBAL_LO, GLOBAL_HI = 6.0, 12.0  # significance of a global grid peak; score 0.5 at 9
RAW_MIN = 3.0  # nats: a peak of the typical block that marks a whole-image resize
# A marked area whose peak is at least this fraction as strong (median) in blocks elsewhere
# with as much detail is part of a whole-image resampling (measured: 0.78-0.87 for the shipped
# photo enlarged as a whole, 0.08-0.30 for enlarged regions, < 0 for Columbia's splices).
SHARED_FRACTION = 0.6
MIN_PEERS = 8  # blocks elsewhere with as much detail, needed to compare
JPEG_GRID_MIN = 0.25  # period-8 grid contrast of a once-JPEG image (as in jpeg_artifacts)
# Kirchner's fixed predictor: each pixel from its 8 neighbours.
_PREDICTOR = np.array([[-0.25, 0.5, -0.25], [0.5, 0.0, 0.5], [-0.25, 0.5, -0.25]], np.float32)


def strip_rows(width: int) -> int:
    """Rows per strip of pixel work: about STRIP_PIXELS pixels, at least one row."""
    return rows_per_strip(width, STRIP_PIXELS)


def predictor_residual(gray: np.ndarray) -> np.ndarray:
    """`gray - ndimage.correlate(gray, _PREDICTOR, mode="reflect")`, `strip_rows` at a time.

    scipy sums the eight weighted neighbours in float64 and stores the sum as float32. For the
    luma of 8-bit pixels (multiples of 2^-27 below 2^8; weights 1/2 and 1/4) that float64 sum
    is exact in any order, so summing rows and columns of neighbours first gives its values bit
    for bit, with strip-sized temporaries that stay in the CPU cache (2x faster at 12 MP).
    """
    g = np.asarray(gray, dtype=np.float32)
    out = np.empty_like(g)
    step = strip_rows(g.shape[1])
    for r0 in range(0, g.shape[0], step):
        r1 = min(r0 + step, g.shape[0])
        out[r0:r1] = g[r0:r1] - _predicted(g, r0, r1)
    return out


def detail_share(e: np.ndarray) -> float:
    """Share of pixels with |e| > 1 (as `np.mean` of the mask gives it), strip by strip."""
    step = strip_rows(e.shape[1])
    count = sum(
        np.count_nonzero(np.abs(e[r0 : r0 + step]) > 1.0) for r0 in range(0, e.shape[0], step)
    )
    return float(count / e.size)


def _predicted(g: np.ndarray, r0: int, r1: int) -> np.ndarray:
    """Rows [r0, r1) of the predictor's estimate, float64 sums rounded once to float32."""
    h, w = g.shape
    top, bottom = max(r0 - 1, 0), min(r1 + 1, h)
    p = np.empty((r1 - r0 + 2, w + 2))  # float64 with a reflected one-pixel border
    p[top - r0 + 1 : bottom - r0 + 1, 1:-1] = g[top:bottom]
    reflect_border(p, r0 == 0, r1 == h)
    vertical = np.add(p[:-2], p[2:])  # above + below, at every column of the border too
    cross = np.add(p[1:-1, :-2], p[1:-1, 2:])
    cross += vertical[:, 1:-1]
    diagonal = np.add(vertical[:, :-2], vertical[:, 2:])
    cross += cross
    cross -= diagonal
    cross *= 0.25  # 0.5 * the 4 neighbours - 0.25 * the 4 diagonals
    return cross.astype(np.float32)


def block_profiles(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-profile (along x) and row-profile (along y) of every BLOCK window, stride STEP,
    of the probability map p = exp(-e^2) of the predictor residual e.

    p is made STEP rows at a time (the rows past the last window are never used): each strip's
    sums are the numpy reductions the whole map had, so the values are the same, without an
    image-sized map."""
    h, w = e.shape
    ny, nx = (h - BLOCK) // STEP + 1, (w - BLOCK) // STEP + 1
    k = BLOCK // STEP
    strips = np.empty((ny + k - 1, w), np.float32)
    bands = np.empty(((ny + k - 1) * STEP, nx + k - 1), np.float32)
    for i in range(ny + k - 1):
        es = e[i * STEP : (i + 1) * STEP]
        p = np.exp(-es * es)
        strips[i] = p.reshape(-1, STEP, w).sum(axis=1)[0]
        bands[i * STEP : (i + 1) * STEP] = (
            p[:, : (nx + k - 1) * STEP].reshape(STEP, -1, STEP).sum(axis=2)
        )
    cols = np.asarray(sum(strips[i : i + ny] for i in range(k)))  # (ny, w): sums over BLOCK rows
    px = np.stack([cols[:, j * STEP : j * STEP + BLOCK] for j in range(nx)], axis=1)
    rows = np.asarray(sum(bands[:, j : j + nx] for j in range(k)))  # (rows, nx): over BLOCK cols
    py = np.stack([rows[i * STEP : i * STEP + BLOCK] for i in range(ny)], axis=0)
    return px / BLOCK, py.transpose(0, 2, 1) / BLOCK


def log_spectrum(profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log power of each profile above LOW_BINS, minus its own median; and a flatness flag."""
    x = profiles - profiles.mean(axis=-1, keepdims=True)
    power = np.abs(np.fft.rfft(x * np.hanning(x.shape[-1]), axis=-1)) ** 2
    logp = np.log(power[..., LOW_BINS:] + 1e-12)
    flat = x.std(axis=-1) < 1e-3  # constant profile: a flat block, nothing to measure
    return logp - np.median(logp, axis=-1, keepdims=True), flat


def block_spectra(e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block of the predictor residual e: x and y profile log-spectra (each relative to its
    own median) and a flag for flat blocks."""
    px, py = block_profiles(e)
    sx, flat_x = log_spectrum(px)
    sy, flat_y = log_spectrum(py)
    return sx, sy, flat_x | flat_y


def local_excess(sx: np.ndarray, sy: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per block: strongest x+y spectral excess over the image's median block, and its bin.

    The image-wide median removes what every block shares (a JPEG 8x8 grid, a global resize);
    the block must also peak in its own spectrum, not only where the median block dips.
    """
    ex = sx - np.median(sx[~flat], axis=0) if (~flat).any() else sx
    ey = sy - np.median(sy[~flat], axis=0) if (~flat).any() else sy
    total = np.minimum(ex + ey, sx + sy)  # isotropic rescaling peaks at the same bin in x and y
    best = total.max(axis=-1)
    best[flat] = 0.0
    return best, total.argmax(axis=-1) + LOW_BINS


def block_texture(e: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mean absolute predictor residual per block: how much pixel-level detail it has to show a
    resampling trace in (an enlarged area has less, so peers are taken at >= half of it).

    The value `ndimage.uniform_filter(|e|, BLOCK, mode="nearest")` has at each block's centre,
    computed at the centres only. Block (i, j)'s window is rows and columns
    [k * STEP, k * STEP + BLOCK) (inside the image, so "nearest" never pads), that is BLOCK //
    STEP strips of STEP rows, then of STEP columns. The filter sums in float64 and stores each
    pass as float32; a residual of an 8-bit image (multiples of 2^-29 below 2^9) sums exactly
    in float64 in any order, so these are its values bit for bit, at a fraction of the cost.
    """
    ny, nx = shape
    k = BLOCK // STEP
    width = (nx + k - 1) * STEP
    strips = np.stack(  # a strip at a time: no image-sized |e|
        [
            np.abs(e[i * STEP : (i + 1) * STEP, :width]).sum(axis=0, dtype=np.float64)
            for i in range(ny + k - 1)
        ]
    )
    col_mean = (np.asarray(sum(strips[i : i + ny] for i in range(k))) / BLOCK).astype(np.float32)
    bands = col_mean.reshape(ny, nx + k - 1, STEP).sum(axis=2, dtype=np.float64)
    mean = (sum(bands[:, j : j + nx] for j in range(k)) / BLOCK).astype(np.float32)
    return np.asarray(mean, dtype=np.float64)


def peak_at(raw: np.ndarray, b: int) -> np.ndarray:
    """Each block's own peak (nats) within one bin of frequency bin b (absolute bin index)."""
    i = b - LOW_BINS
    return np.asarray(raw[..., max(i - 1, 0) : i + 2].max(axis=-1))


def shared_trace(
    area: np.ndarray, b: int, raw: np.ndarray, texture: np.ndarray, flat: np.ndarray
) -> tuple[float, float, bool]:
    """Median own peak at bin b inside `area` and in blocks elsewhere with at least half its
    detail (nan when too few), and whether the area's trace is the whole image's: as strong in
    those peers, or (with too few peers) covering most of the image's detailed blocks."""
    detailed = ~flat & (texture >= 0.5 * float(np.median(texture[area])))
    peers = detailed & ~ndimage.binary_dilation(area, iterations=2)
    peak = peak_at(raw, b)
    inside = float(np.median(peak[area]))
    if int(peers.sum()) < MIN_PEERS:
        return inside, float("nan"), int(area.sum()) >= 0.5 * int(detailed.sum())
    out = float(np.median(peak[peers]))
    return inside, out, out >= SHARED_FRACTION * max(inside, 0.0)


@dataclass
class Trace:
    """A marked area of the local map: its blocks, frequency bin, and median own peak (nats)
    inside and in equally textured blocks elsewhere (nan when there were too few to compare)."""

    blocks: np.ndarray
    bin: int
    inside: float
    peers: float


@dataclass
class Local:
    """The local map after whole-image traces are set apart."""

    smooth: np.ndarray  # smoothed block excess, zero on areas judged whole-image
    local: list[Trace]
    shared: list[Trace]
    median_peak: tuple[int, float] | None  # the typical block's own peak (bin, nats), if any


def split_local_global(e: np.ndarray, once_jpeg: bool) -> Local:
    """Marked areas, each judged local or shared with the whole image (a resize)."""
    sx, sy, flat = block_spectra(e)
    raw = sx + sy
    best, bins = local_excess(sx, sy, flat)
    smooth = ndimage.uniform_filter(best, 3, mode="nearest")
    # The typical block's own peak: a whole-image resize (a JPEG's 8x8 grid peaks there too).
    typical = np.median(raw[~flat], axis=0) if (~flat).any() else np.zeros(raw.shape[-1])
    ids = np.arange(typical.size) + LOW_BINS
    # Near-DC bins follow image content; the JPEG grid's are blocking, not resampling.
    grid = (ids % (BLOCK // 8) == 0) & once_jpeg
    typical = np.where((ids < 2 * LOW_BINS) | grid, -np.inf, typical)
    i = int(np.argmax(typical))
    median_peak = (i + LOW_BINS, float(typical[i])) if typical[i] >= RAW_MIN else None
    texture = block_texture(e, best.shape)
    labels, n = ndimage.label(smooth >= (LOCAL_LO + LOCAL_HI) / 2)
    out = Local(smooth, [], [], median_peak)
    for k in range(1, n + 1):
        area = labels == k
        b = int(np.bincount(bins[area]).argmax())
        inside, peers, shared = shared_trace(area, b, raw, texture, flat)
        trace = Trace(area, b, inside, peers)
        if shared or (median_peak is not None and abs(median_peak[0] - b) <= 1):
            out.shared.append(trace)
            out.smooth = np.where(area, 0.0, out.smooth)
        else:
            out.local.append(trace)
    return out


def global_peaks(residual: np.ndarray) -> dict[str, Any]:
    """Averaged TILE x TILE power spectrum of the residual; strongest peak on the 8 px grid."""
    h, w = residual.shape
    ny, nx = h // TILE, w // TILE
    # The tiles in row-major order, GLOBAL_CHUNK at a time: the spectra of all tiles at once
    # took about 4x the residual's memory. Their power is summed in the same order.
    total: np.ndarray | None = None
    step = max(1, GLOBAL_CHUNK // max(nx, 1))
    for ty in range(0, ny, step):
        k = min(step, ny - ty)
        tiles = residual[ty * TILE : (ty + k) * TILE, : nx * TILE].reshape(k, TILE, nx, TILE)
        t = tiles.transpose(0, 2, 1, 3).reshape(-1, TILE, TILE)
        total = _power_sum(t - t.mean(axis=(1, 2), keepdims=True), total)
    assert total is not None  # the image has at least one tile
    power = _mirror(total / (ny * nx))
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


def _mean_power(t: np.ndarray) -> np.ndarray:
    """`(np.abs(np.fft.fft2(t)) ** 2).mean(axis=0)` of real tiles, from their half spectrum."""
    return _mirror(_power_sum(t, None) / t.shape[0])


def _power_sum(t: np.ndarray, total: np.ndarray | None) -> np.ndarray:
    """`total` plus the power spectra of the real tiles t, added one tile after the other (as
    numpy's sum over the first axis adds), for the non-negative x frequencies only.

    A real tile's spectrum is conjugate-symmetric, so the columns past TILE / 2 are the mirror
    of the others: a real FFT along x, then the complex FFT of the TILE / 2 + 1 columns along y
    (a third of fft2's cost; the same values on the test images).
    """
    power = np.abs(np.fft.fft(np.fft.rfft(t, axis=-1), axis=-2)) ** 2
    if total is None:
        return np.asarray(power.sum(axis=0))
    return np.asarray(np.concatenate([total[None], power]).sum(axis=0))


def _mirror(half: np.ndarray) -> np.ndarray:
    """The full (TILE, TILE) power spectrum from its columns 0..TILE / 2."""
    n = TILE
    mirror = half[(-np.arange(half.shape[0])) % half.shape[0]][:, (n + 1) // 2 - 1 : 0 : -1]
    return np.concatenate([half, mirror], axis=1)


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
        version="0.2.1",
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
        if detail_share(e) < 0.02:
            return self.abstain("flat image: almost no pixel-level detail to analyse")
        # A JPEG file or an image with an 8 px grid (once JPEG) has grid peaks.
        once_jpeg = image.is_jpeg or jm.period8_strength(gray) >= JPEG_GRID_MIN
        local = split_local_global(e, once_jpeg)
        off = (BLOCK - STEP) // 2
        heat = paint_blocks(
            ramp(local.smooth, LOCAL_LO, LOCAL_HI), gray.shape, cell=STEP, offset=(off, off)
        )
        return self._report(local, heat, gray.shape, global_peaks(e), once_jpeg, image.is_jpeg)

    def _report(
        self,
        local: Local,
        heat: np.ndarray,
        shape: tuple[int, int],
        glob: dict[str, Any],
        once_jpeg: bool,
        is_jpeg: bool,
    ) -> ExpertResult:
        smooth = local.smooth
        local_score = float(ramp(np.array(smooth.max()), LOCAL_LO + 0.5, LOCAL_HI + 1.0))
        global_score = (
            0.0 if once_jpeg else float(ramp(np.array(glob["significance"]), GLOBAL_LO, GLOBAL_HI))
        )
        found = [e for t in local.local if (e := _local_evidence(t, shape)) is not None]
        evidence = sorted(found, key=lambda e: -_px(e))[:3]
        resized = _resize_evidence(local, once_jpeg)
        evidence += [resized] if resized else []
        evidence.append(self._global_evidence(glob, once_jpeg, is_jpeg, global_score))
        details = {
            "local_resampling": round(local_score, 3),
            "whole_image_resampling": resized.value if resized else None,
            "global_periodicity": round(global_score, 3),
            "global_judged": not once_jpeg,
            "global_peak": {
                k: (round(v, 3) if isinstance(v, float) else v) for k, v in glob.items()
            },
            "local_max_excess": round(float(smooth.max()), 2),
            "flagged_share": round(float((heat >= 0.5).mean()), 4),
        }
        # A whole-image resize is context: only local areas and generator periodicity score.
        score = max(local_score, global_score)
        return self.result(score, evidence=evidence, heatmap=heat, details=details)

    @staticmethod
    def _global_evidence(
        glob: dict[str, Any], gridded: bool, is_jpeg: bool, score: float
    ) -> Evidence:
        where = f"period {glob['period_px']} px (fx={glob['fx']:.3f}, fy={glob['fy']:.3f})"
        if gridded:
            why = (
                "the file is JPEG, whose 8x8 grid"
                if is_jpeg
                else "the image has an 8 px grid (an earlier JPEG save, or a resize whose "
                "pattern repeats every 8 px), which"
            )
            text = (
                f"Global periodicity not judged: {why} puts peaks on the same frequencies as "
                f"generator upsampling (strongest: {where})."
            )
        else:
            text = (
                f"Global periodicity: strongest peak on the 4/8 px upsampling grid at {where}, "
                f"significance {glob['significance']:.1f} (>= {GLOBAL_HI:g} is strong); "
                f"{'generator-like' if score >= 0.5 else 'not distinctive'}."
            )
        return Evidence(kind="spectrum.global_periodicity", summary=text, value=round(score, 3))


def _px(e: Evidence) -> int:
    return e.bbox.width * e.bbox.height if e.bbox else 0


def _local_evidence(t: Trace, shape: tuple[int, int]) -> Evidence | None:
    painted = upsample_blocks(t.blocks.astype(np.float32), BLOCK, shape, step=STEP) >= 0.5
    found = components(painted, min_pixels=BLOCK * BLOCK // 2)
    if not found:
        return None
    box, n = found[0]
    freq = t.bin / BLOCK
    if np.isfinite(t.peers):
        contrast = (
            f"(peak {t.inside:.1f} nats here vs {t.peers:.1f} in equally textured blocks elsewhere)"
        )
    else:
        contrast = (
            f"(peak {t.inside:.1f} nats; too few equally textured blocks elsewhere to compare)"
        )
    return Evidence(
        kind="spectrum.resampled_region",
        summary=(
            f"Local resampling: region {bbox_words(box)} ({n} px) shows a periodic interpolation "
            f"pattern at {freq:.3f} cycles/px that the rest of the image lacks {contrast}, as "
            f"left by {factor_candidates(freq)}."
        ),
        value=round(freq, 4),
        bbox=box,
    )


def _resize_evidence(local: Local, once_jpeg: bool) -> Evidence | None:
    """Context: the whole image carries one resampling trace (not a tamper finding)."""
    if local.shared:
        t = max(local.shared, key=lambda t: int(t.blocks.sum()))
        freq = t.bin / BLOCK
        if np.isfinite(t.peers):
            where = (
                f"about as strong in equally textured blocks across the image (median peak "
                f"{t.peers:.1f} nats) as in its strongest area ({t.inside:.1f} nats)"
            )
        else:
            where = "in the image's typical block too"
    elif local.median_peak is not None:
        freq = local.median_peak[0] / BLOCK
        where = f"in the image's typical block (peak {local.median_peak[1]:.1f} nats)"
    else:
        return None
    grid = ", or the JPEG 8x8 grid" if once_jpeg and (freq * 8).is_integer() else ""
    return Evidence(
        kind="spectrum.global_resampling",
        summary=(
            f"Whole image resampled: the periodic interpolation pattern at {freq:.3f} cycles/px "
            f"({factor_candidates(freq)}{grid}) is {where}. Resizing a whole photo is normal "
            "(web photos, wallpapers) and is not evidence of tampering."
        ),
        value=round(freq, 4),
    )
