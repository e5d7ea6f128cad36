"""Numpy helpers shared by the JPEG and ELA experts: tables, blockwise DCT, grids, re-encoding.

Everything works on 8x8 blocks in the JPEG sense. Tables are in natural (row-major) order, as
Pillow reports them in `Image.quantization`.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy import ndimage

from ..io import jpeg_codec

# ITU-T T.81 Annex K tables (quality 50 in the IJG scaling), natural order.
STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)  # fmt: skip
STD_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
] + [99] * 32, dtype=np.float64)  # fmt: skip


def ijg_table(quality: int, base: np.ndarray = STD_LUMA) -> np.ndarray:
    """The quantisation table libjpeg writes for `quality` (1..100), baseline-clamped to 1..255."""
    q = min(max(int(quality), 1), 100)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return np.asarray(np.clip((base * scale + 50) // 100, 1, 255), dtype=np.float64)


@lru_cache(maxsize=2)
def _all_tables(chroma: bool) -> np.ndarray:
    base = STD_CHROMA if chroma else STD_LUMA
    return np.stack([ijg_table(q, base) for q in range(1, 101)])


def estimate_quality(table: list[int] | np.ndarray, *, chroma: bool = False) -> tuple[int, float]:
    """Closest IJG quality for a table and the mean absolute table difference at that quality.

    A difference near 0 means a standard libjpeg table; larger values mean a custom table
    (cameras, Photoshop) and the quality is then only an equivalent.
    """
    t = np.asarray(table, dtype=np.float64).ravel()[:64]
    err = np.abs(_all_tables(chroma) - t).mean(axis=1)
    best = int(np.argmin(err))
    return best + 1, float(err[best])


@lru_cache(maxsize=1)
def dct_matrix() -> np.ndarray:
    """Orthonormal 8-point DCT-II matrix (rows = frequencies)."""
    k = np.arange(8)[:, None]
    n = np.arange(8)[None, :]
    m = np.cos(np.pi * (2 * n + 1) * k / 16) * np.sqrt(2 / 8)
    m[0] /= np.sqrt(2)
    return np.asarray(m, dtype=np.float64)


def blocks(gray: np.ndarray, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """View the image as (rows, cols, 8, 8) blocks on a grid starting at `phase` = (dy, dx)."""
    dy, dx = phase
    g = gray[dy:, dx:]
    bh, bw = g.shape[0] // 8, g.shape[1] // 8
    g = g[: bh * 8, : bw * 8]
    return g.reshape(bh, 8, bw, 8).swapaxes(1, 2)


def block_dct(gray: np.ndarray, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """2-D DCT of every 8x8 block (level-shifted by 128, as JPEG does): (rows, cols, 8, 8)."""
    d = dct_matrix()
    b = blocks(gray.astype(np.float64) - 128.0, phase)
    return np.asarray(np.einsum("ij,rcjk,lk->rcil", d, b, d, optimize=True))


# Image-sized work is done in horizontal strips of whole block rows of about this many bytes of
# float32: no image-sized temporary is allocated. Every output depends on its own block row
# only, so the results are the same as over the whole image. A quarter of this stays in a small
# L2 cache, but makes 4x the numpy calls, each of which can hand the GIL to the other expert
# thread; that cost more (BENCHMARKS.md, eighth round).
STRIP_BYTES = 1 << 21


def strip_rows(width: int, itemsize: int = 4, scale: int = 1) -> int:
    """Rows per strip (a multiple of 8) for an image `width` values of `itemsize` bytes wide, in
    `scale` times STRIP_BYTES."""
    return max(8, scale * STRIP_BYTES // max(width * itemsize, 1) // 8 * 8)


def _block_sums(g: np.ndarray) -> np.ndarray:
    """Sum of each 8x8 block of a float32 (8 * rows, 8 * cols) array with unit column stride:
    bit-identical to `.sum(axis=3).sum(axis=1)` of the blocks (see `_sums_of_8`)."""
    return np.asarray(_sums_of_8(g).reshape(g.shape[0] // 8, 8, g.shape[1] // 8).sum(axis=1))


def _sums_of_8(g: np.ndarray) -> np.ndarray:
    """(rows, cols // 8): each row's runs of 8 columns added as numpy's pairwise reduction of 8
    values adds them, ((0+1)+(2+3))+((4+5)+(6+7)), so bit-identical to `.sum(axis=-1)` over the
    runs, but on strided views: no copy, and no slow reduction over a length-8 axis. (Sums over
    8 rows, a reduction over an outer axis, add the rows in order, whatever the array around.)
    """
    c = g.reshape(g.shape[0], g.shape[1] // 8, 8)
    a = [c[:, :, k] for k in range(8)]
    rows = a[0] + a[1]
    rows += a[2] + a[3]  # (a0+a1)+(a2+a3): the in-place add rounds as the new array would
    right = a[4] + a[5]
    right += a[6] + a[7]
    rows += right
    return np.asarray(rows)


def _block_grid(values: np.ndarray, phase: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """The whole 8x8 blocks of the grid at `phase` (a view) and their (rows, cols) count."""
    dy, dx = phase
    g = values[dy:, dx:]
    bh, bw = g.shape[0] // 8, g.shape[1] // 8
    return g[: bh * 8, : bw * 8], bh, bw


def block_mean(values: np.ndarray, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Mean of `values` over each 8x8 block of the grid at `phase` (float32)."""
    g, bh, bw = _block_grid(values, phase)
    s = np.empty((bh, bw), np.float32)
    step = strip_rows(bw * 8)
    for y in range(0, bh * 8, step):
        strip = np.asarray(g[y : y + step], dtype=np.float32)  # converts one strip at most
        s[y // 8 : (y + step) // 8] = _block_sums(strip)
    return np.asarray(s / 64.0, dtype=np.float32)


def block_var(values: np.ndarray, phase: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Variance of `values` inside each 8x8 block of the grid at `phase` (float32).

    E[x^2] - E[x]^2 from float32 block means of the values and of their float32 squares, both
    taken in one pass over each strip.
    """
    g, bh, bw = _block_grid(values, phase)
    s = np.empty((bh, bw), np.float32)
    sq = np.empty((bh, bw), np.float32)
    step = strip_rows(bw * 8)
    for y in range(0, bh * 8, step):
        strip = np.asarray(g[y : y + step], dtype=np.float32)
        s[y // 8 : (y + step) // 8] = _block_sums(strip)
        sq[y // 8 : (y + step) // 8] = _block_sums(np.square(strip))
    mean = s / 64.0
    return np.asarray(np.maximum(sq / 64.0 - mean**2, 0.0), dtype=np.float32)


def grid_profile(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blocking strength per column phase and per row phase (8 values each, mean 1).

    JPEG quantises each 8x8 block independently, so the second difference across block borders
    is larger than inside blocks; its mean at each position modulo 8 peaks at the border phase.
    Returned as the strength of the boundary *between* pixel p-1 and p at phase p.
    """
    eh, ev = _boundary_steps(gray)
    # eh[i] is the step between columns i+1 and i+2, i.e. a boundary at phase (i + 2) % 8.
    pc, pr = (np.arange(eh.size) + 2) % 8, (np.arange(ev.size) + 2) % 8
    col = np.bincount(pc, weights=eh, minlength=8) / np.bincount(pc, minlength=8)
    row = np.bincount(pr, weights=ev, minlength=8) / np.bincount(pr, minlength=8)
    return col / max(col.mean(), 1e-9), row / max(row.mean(), 1e-9)


def _boundary_steps(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean boundary step (|x[p-1] - x[p]| minus the average of the neighbouring differences,
    clipped at 0) per column over all rows, and per row over all columns, in float64.

    Computed in strips of rows, as the whole-image expressions would round: each step is the
    same float64 expression of the same pixels; a row's mean sums its own steps; a column's
    sum over the rows is carried from strip to strip as the first row of the next strip's sum,
    which adds the rows in order as a reduction over axis 0 does.
    """
    h, w = gray.shape
    if h < 4 or w < 4:  # too small for strips: the plain expressions (empty means included)
        g = gray.astype(np.float64)
        dh = np.abs(np.diff(g, axis=1))
        dv = np.abs(np.diff(g, axis=0))
        eh = np.clip(dh[:, 1:-1] - 0.5 * (dh[:, :-2] + dh[:, 2:]), 0, None).mean(axis=0)
        ev = np.clip(dv[1:-1, :] - 0.5 * (dv[:-2, :] + dv[2:, :]), 0, None).mean(axis=1)
        return eh, ev
    step = strip_rows(w, 8, 2)
    col_sum = np.zeros((step + 1, w - 3))  # row 0: the sum over the rows before the strip
    ev = np.empty(h - 3)
    # Buffers reused by every strip; the same operations as the expressions, in place.
    g = np.empty((step + 3, w))
    d = np.empty((step + 2, w))
    half = np.empty((step, w))
    for y in range(0, h, step):
        n = min(step, h - y)  # rows of eh in this strip; ev also needs the 3 rows below
        m = min(step + 3, h - y)
        g[:m] = gray[y : y + m]
        # Across columns: |x[p] - x[p-1]| and the step minus the mean of its neighbours.
        dh = d[:n, : w - 1]
        np.abs(np.subtract(g[:n, 1:], g[:n, :-1], out=dh), out=dh)
        np.multiply(
            np.add(dh[:, :-2], dh[:, 2:], out=half[:n, : w - 3]), 0.5, out=half[:n, : w - 3]
        )
        steps = col_sum[1 : n + 1]
        np.clip(np.subtract(dh[:, 1:-1], half[:n, : w - 3], out=steps), 0, None, out=steps)
        col_sum[0] = col_sum[: n + 1].sum(axis=0) if y else steps.sum(axis=0)
        if m > 3:  # across rows
            dv = d[: m - 1]
            np.abs(np.subtract(g[1:m], g[: m - 1], out=dv), out=dv)
            k = m - 3
            np.multiply(np.add(dv[:k], dv[2 : k + 2], out=half[:k]), 0.5, out=half[:k])
            rows = np.clip(
                np.subtract(dv[1 : k + 1], half[:k], out=half[:k]), 0, None, out=half[:k]
            )
            ev[y : y + k] = rows.mean(axis=1)
    return col_sum[0] / h, ev


def grid_phase(gray: np.ndarray) -> tuple[tuple[int, int], float]:
    """The (dy, dx) origin of the dominant 8x8 blocking grid and its strength.

    Strength = the smaller of the row and column contrast (peak over the median of the other
    seven phases, minus 1): about 0 with no blocking, above ~0.1 for visible JPEG blocking.
    """
    col, row = grid_profile(gray)
    dx, dy = int(np.argmax(col)), int(np.argmax(row))
    sc = col[dx] / max(float(np.median(np.delete(col, dx))), 1e-9) - 1
    sr = row[dy] / max(float(np.median(np.delete(row, dy))), 1e-9) - 1
    return (dy, dx), float(min(sc, sr))


def period8_strength(gray: np.ndarray) -> float:
    """`grid_phase`'s strength, counting only blocking with period 8 itself: the peak must also
    stand above the phase 4 px away, which a period-4 pattern (a x4 upsampler) matches."""
    out = np.inf
    for p in grid_profile(gray):
        k = int(np.argmax(p))
        rest = max(float(np.median(np.delete(p, k))), float(p[(k + 4) % 8]), 1e-9)
        out = min(out, float(p[k]) / rest - 1)
    return float(out)


def recompress(
    img: np.ndarray, quality: int, phase: tuple[int, int] = (0, 0), *, uint8: bool = False
) -> np.ndarray:
    """Encode and decode with libjpeg at `quality` on the grid starting at `phase`; float32
    (`uint8`: the decoded bytes themselves, no float copy; possibly read-only).

    The image is cropped to start at the grid origin and padded back, so the output has the
    input's shape; the first `phase` rows/columns are copied unchanged.
    """
    dy, dx = phase
    sub = img[dy:, dx:]
    mode = "L" if sub.ndim == 2 else "RGB"
    # jpeg_codec: the same bytes as a save to BytesIO, without holding the GIL meanwhile
    data = jpeg_codec.encode(
        Image.fromarray(np.ascontiguousarray(sub), mode), quality=int(quality), subsampling=0
    )
    # Only the JPEG plugin is asked to open it: no probing of the other formats first.
    decoded = np.asarray(Image.open(io.BytesIO(data), formats=["JPEG"]))
    if not uint8:
        # uint8 first, then float32: the same values, faster than converting inside asarray.
        decoded = decoded.astype(np.float32)
    if dy == 0 and dx == 0:
        return decoded  # a new float32 array already: no image-sized copy to fill
    out = img.astype(decoded.dtype)  # astype copies
    out[dy:, dx:] = decoded
    return out


def robust_z(values: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(x - median) / (1.4826 * MAD) using only `valid` entries for the statistics."""
    ref = values[valid] if valid is not None and valid.any() else values.ravel()
    s = np.sort(ref, axis=None)
    if s.size == 0 or np.isnan(s[-1]):  # numpy's empty and NaN rules
        med = float(np.median(ref))
        mad = float(np.median(np.abs(ref - med))) * 1.4826
    else:
        med = _median_of_sorted(s)
        mad = _median_of_deviations(s, med) * 1.4826
    return (values - med) / max(mad, 1e-6)


# numpy partitions for a median or a percentile with several order statistics (the middle
# pair, the last one for its NaN check), which takes its slow general selection; sorting with
# its SIMD sort and reading the sorted copy is several times faster on block maps. The results
# are the same: both only depend on the multiset of values.


def median(values: np.ndarray) -> float:
    """`float(np.median(values))`, from a sorted copy."""
    s = np.sort(values, axis=None)
    if s.size == 0 or np.isnan(s[-1]):
        return float(np.median(values))  # numpy's empty and NaN rules
    return _median_of_sorted(s)


def _median_of_sorted(s: np.ndarray) -> float:
    """np.median's value for a sorted 1-D array without NaN: the mean of the middle pair (or
    middle value), taken as np.median takes it."""
    h = s.size // 2
    return float(np.mean(s[h - 1 : h + 1] if s.size % 2 == 0 else s[h : h + 1], axis=0))


def percentile_minus_median(values: np.ndarray, q: float) -> float:
    """`float(np.percentile(values, q) - np.median(values))`, from one sorted copy."""
    s = np.sort(values, axis=None)
    return float(np.percentile(s, q) - np.median(s))


def robust_z_percentile(values: np.ndarray, q: float) -> float:
    """`float(np.percentile(robust_z(values), q))`, from sorted copies: z is a monotone
    function of the values (a subtraction and a division by a positive scale, each rounded), so
    z of the sorted values is z sorted, and the percentile of that is the same."""
    s = np.sort(values, axis=None)
    if s.size == 0 or np.isnan(s[-1]):
        return float(np.percentile(robust_z(values), q))
    med = _median_of_sorted(s)
    mad = _median_of_deviations(s, med) * 1.4826
    return float(np.percentile((s - med) / max(mad, 1e-6), q))


def _median_of_deviations(s: np.ndarray, med: float) -> float:
    """`float(np.median(np.abs(s - med)))` for a sorted `s` without NaN, without sorting the
    deviations: those of the values below `med` fall and the others rise, so the deviations are
    two sorted runs, and the middle order statistics are picked from the two."""
    dev = np.abs(s - med)
    cut = int(np.searchsorted(s, med))  # s[:cut] < med <= s[cut:]
    below, above = dev[:cut][::-1], dev[cut:]
    n = s.size
    ks = [n // 2 - 1, n // 2] if n % 2 == 0 else [n // 2]
    middle = np.array([_kth_of_two(below, above, k) for k in ks], dtype=dev.dtype)
    return _median_of_sorted(middle)


def _kth_of_two(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """The k-th smallest (from 0) value of two sorted arrays together (a binary search on how
    many of the k + 1 smallest come from `a`); as a Python float, which holds it exactly."""
    lo, hi = max(0, k + 1 - b.size), min(k + 1, a.size)
    while lo < hi:
        i = (lo + hi) // 2  # i from a, k + 1 - i from b
        if b[k - i] > a[i]:  # a[i] is among the k + 1 smallest: take more from a
            lo = i + 1
        else:
            hi = i
    j = k + 1 - lo
    if lo == 0:
        return float(b[j - 1])
    if j == 0:
        return float(a[lo - 1])
    return float(max(a[lo - 1], b[j - 1]))


def upsample_blocks(
    block_map: np.ndarray, shape: tuple[int, int], phase: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """Paint a per-block map back onto pixels (edges outside the block grid take the nearest)."""
    up = np.repeat(np.repeat(block_map, 8, axis=0), 8, axis=1)
    dy, dx = phase
    h, w = shape
    pad = ((dy, max(h - dy - up.shape[0], 0)), (dx, max(w - dx - up.shape[1], 0)))
    return np.pad(up, pad, mode="edge")[:h, :w].astype(np.float32)


def smooth_blocks(block_map: np.ndarray, size: int = 3) -> np.ndarray:
    """Median then mean filter over blocks: removes isolated blocks, keeps region edges."""
    if size == 3 and block_map.ndim == 2 and not np.isnan(block_map).any():
        m = median3x3(block_map)
    else:
        m = ndimage.median_filter(block_map, size=size, mode="nearest")
    return np.asarray(ndimage.uniform_filter(m, size=size, mode="nearest"))


def _sort3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
    """Element-wise (min, median, max) of three arrays."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    mid = np.minimum(hi, c)
    hi = np.maximum(hi, c)
    return np.minimum(lo, mid), np.maximum(lo, mid), hi


def median3x3(values: np.ndarray) -> np.ndarray:
    """`ndimage.median_filter(values, size=3, mode="nearest")` of a 2-D array without NaN.

    The median of 9 by comparisons only (sort each column of 3, then the median is the median of
    the largest column minimum, the median column median and the smallest column maximum), so
    it picks the same element as scipy's selection, ~10x faster on block maps.
    """
    p = np.pad(values, 1, mode="edge")
    h, w = values.shape
    lo, mid, hi = _sort3(p[:-2], p[1:-1], p[2:])  # each column of the 3 rows around a row
    a = np.maximum(np.maximum(lo[:, :-2], lo[:, 1:-1]), lo[:, 2:])
    b = _sort3(mid[:, :-2], mid[:, 1:-1], mid[:, 2:])[1]
    c = np.minimum(np.minimum(hi[:, :-2], hi[:, 1:-1]), hi[:, 2:])
    return np.asarray(_sort3(a, b, c)[1][:h, :w], dtype=values.dtype)


def local_grid_profiles(
    gray: np.ndarray, *, clip: float = 2.0, window: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Per-block blocking strength at each of the 8 row and 8 column phases.

    Returns (rows, cols, 8) arrays for row phases and for column phases, each normalised to
    mean 1 over the 8 phases and averaged over `window` x `window` blocks. Steps are clipped at
    `clip` grey levels: JPEG block steps are small, and clipping keeps real edges from voting.
    """
    h, w = gray.shape
    bh, bw = h // 8, w // 8
    pc = np.empty((bh, bw, 8), np.float32)
    pr = np.empty((bh, 8, bw), np.float32)
    step = strip_rows(w)
    for y in range(0, bh * 8, step):
        eh, ev = _clipped_steps(gray, y, min(y + step, bh * 8), clip)
        # Per block: each column's 8 rows added (as .sum(axis=1) of the blocks), each row's 8
        # columns added (as .sum(axis=3)).
        rows = slice(y // 8, y // 8 + len(eh) // 8)
        pc[rows] = eh[:, : bw * 8].reshape(-1, 8, bw * 8).sum(axis=1).reshape(-1, bw, 8)
        pr[rows] = _sums_of_8(ev[:, : bw * 8]).reshape(-1, 8, bw)
    return _phase_profile(pr.transpose(0, 2, 1), window), _phase_profile(pc, window)


def _phase_profile(p: np.ndarray, window: int) -> np.ndarray:
    """Block sums per phase averaged over `window` x `window` blocks, normalised to mean 1."""
    p = ndimage.uniform_filter(p, size=(window, window, 1), mode="nearest")
    p /= np.maximum(p.mean(axis=-1, keepdims=True), 1e-3)  # in place: the same quotients
    return p


def _clipped_steps(
    gray: np.ndarray, y0: int, y1: int, clip: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rows y0..y1 of `local_grid_profiles`' clipped boundary steps across columns (stored at
    the column right of the boundary) and across rows (at the row below it), float32."""
    h, w = gray.shape
    top = max(y0 - 2, 0)  # the steps across rows at y need rows y - 2 .. y + 1
    g = np.asarray(gray[top : min(y1 + 1, h)], dtype=np.float32)
    rows = g[y0 - top : y1 - top]
    # The expressions clip(d[1:-1] - 0.5 * (d[:-2] + d[2:])) of |np.diff|, with fewer arrays.
    eh = np.empty((y1 - y0, w), np.float32)
    eh[:, :2] = eh[:, -1:] = 0.0  # no step stored there: the rest is written below
    dh = np.abs(np.subtract(rows[:, 1:], rows[:, :-1]))
    half = np.add(dh[:, :-2], dh[:, 2:])
    half *= 0.5
    np.clip(np.subtract(dh[:, 1:-1], half, out=eh[:, 2:-1]), 0, clip, out=eh[:, 2:-1])
    ev = np.empty((y1 - y0, w), np.float32)
    lo, hi = max(y0, 2), min(y1, h - 1)  # rows with a step: 2 .. h - 2
    ev[: max(lo - y0, 0)] = ev[max(hi - y0, 0) :] = 0.0  # rows without a step
    if hi > lo:
        dv = np.abs(np.subtract(g[1:], g[:-1]))  # dv[i] = |g[i + 1] - g[i]|, from row `top`
        d = dv[lo - 2 - top : hi - top]
        half = np.add(d[:-2], d[2:])
        half *= 0.5
        out = ev[lo - y0 : hi - y0]
        np.clip(np.subtract(d[1:-1], half, out=out), 0, clip, out=out)
    return eh, ev


def off_grid_excess(profile: np.ndarray, own: int) -> np.ndarray:
    """Blocking at each phase beyond what the dominant grid at phase `own` explains.

    An area with stronger blocking on the dominant grid (an earlier, lower-quality save on the
    same grid) also changes the other phases: the steps next to its block borders, the smooth
    interiors of its blocks and the 2-px period of 4:2:0 chroma upsampling all shape them. That
    pattern is mirror-symmetric about the grid's border, so phase k is compared with its mirror
    phase 2 * own - k (same parity, same distance to the border); the phase opposite the border
    is its own mirror and is compared with the two phases 2 px from it. A second grid at phase k
    has no such twin. `profile` is (..., 8); the result has the same shape, 0 at `own`.
    """
    k = np.arange(8)
    out: np.ndarray = profile - profile[..., (2 * own - k) % 8]
    far = (own + 4) % 8
    out[..., far] = profile[..., far] - 0.5 * (
        profile[..., (far + 2) % 8] + profile[..., (far - 2) % 8]
    )
    return out


def hot_bbox(heat: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of the largest connected area with heat >= threshold, if any."""
    labels, n = ndimage.label(heat >= threshold)
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    sl = ndimage.find_objects(labels)[int(np.argmax(sizes))]
    assert sl is not None
    ys, xs = sl
    return int(xs.start), int(ys.start), int(xs.stop - xs.start), int(ys.stop - ys.start)


def _pixel_spans(n: int, offset: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) pixels that block i covers in `upsample_blocks` (edges take the nearest)."""
    start = offset + 8 * np.arange(n)
    end = start + 8
    if n:
        start[0], end[-1] = 0, max(end[-1], size)
    return np.clip(start, 0, size), np.clip(end, 0, size)


def hot_bbox_blocks(
    block_map: np.ndarray,
    shape: tuple[int, int],
    phase: tuple[int, int] = (0, 0),
    threshold: float = 0.5,
) -> tuple[int, int, int, int] | None:
    """`hot_bbox(upsample_blocks(block_map, shape, phase), threshold)`, found on the blocks.

    Painting blocks onto pixels keeps 4-connectivity and the raster order of the areas (so the
    same area wins a tie), and an area's pixel count is the sum of its blocks' painted sizes;
    so only the block map is labelled, not an image-sized map.
    """
    y0, y1 = _pixel_spans(block_map.shape[0], phase[0], shape[0])
    x0, x1 = _pixel_spans(block_map.shape[1], phase[1], shape[1])
    rows, cols = y1 - y0, x1 - x0
    # The float32 values of the painted map; blocks painted onto no pixel do not exist.
    hot = (np.asarray(block_map, dtype=np.float32) >= threshold) & np.outer(rows > 0, cols > 0)
    labels, n = ndimage.label(hot)
    if n == 0:
        return None
    sizes = np.bincount(labels.ravel(), weights=np.outer(rows, cols).ravel())[1:]
    sl = ndimage.find_objects(labels)[int(np.argmax(sizes))]
    assert sl is not None
    ys, xs = sl
    top, left = int(y0[ys.start]), int(x0[xs.start])
    return left, top, int(x1[xs.stop - 1]) - left, int(y1[ys.stop - 1]) - top


# The first AC frequencies in zigzag order: (row, column) inside the 8x8 block.
ZIGZAG_AC = [(0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1), (3, 0), (4, 0),
             (3, 1), (2, 2), (1, 3), (0, 4)]  # fmt: skip


_HIST_RANGE = 1024


@lru_cache(maxsize=128)
def _lattice_masks(q: int, tol: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin weights over [-1024, 1024]: kept (from the first off-lattice bin on, which makes the
    test conservative on decreasing histograms), on the lattice of q, half-way between."""
    b = np.arange(-_HIST_RANGE, _HIST_RANGE + 1)
    keep = np.abs(b) >= q / 2
    d = np.abs(b - q * np.round(b / q))
    return (keep.astype(np.float64), (keep & (d <= tol)).astype(np.float64),
            (keep & (d >= (q - 1) / 2)).astype(np.float64))  # fmt: skip


def histogram_period(
    values: np.ndarray, tol: int = 0, max_period: int = 32, min_score: float = 0.6
) -> tuple[int, float]:
    """(period, score) of integer `values`: quantisation by a step q leaves them on multiples
    of q (within `tol` for pixel-domain coefficients, which carry rounding noise).

    For each q, among values outside the zero bin, the histogram density on the lattice is
    compared with the density half-way between lattice points: score = (on - off) / (on + off),
    near 1 for a quantised histogram and near 0 (or below) for a smooth one. Divisors of the
    true step also score high and its multiples hold few values on their lattice, so the largest
    step that passes both tests wins.
    """
    v = values[np.abs(values) <= _HIST_RANGE]
    hist = np.bincount(v + _HIST_RANGE, minlength=2 * _HIST_RANGE + 1).astype(np.float64)
    best = (1, 0.0)
    for q in range(4 * tol + 2 if tol else 2, max_period + 1):
        keep, on_bins, off_bins = _lattice_masks(q, tol)
        total = float(hist @ keep)
        if total < 100:
            break
        on_mass = float(hist @ on_bins)
        on = on_mass / (2 * tol + 1)
        off = float(hist @ off_bins) / (1 if q % 2 == 0 else 2)
        score = (on - off) / max(on + off, 1e-9)
        # Odd multiples of the step also have empty half-way bins; they hold only a fraction
        # of the values on their lattice, so a step must also hold most values near it.
        if score >= min_score and on_mass / total >= 0.6:
            best = (q, score)
    return best


def rounded_ac(
    gray: np.ndarray, phase: tuple[int, int] = (0, 0), table: list[int] | None = None
) -> np.ndarray:
    """(len(ZIGZAG_AC), rows, cols) int32: `np.round(coef[:, :, u, v])` of `block_dct(gray,
    phase)`, divided by `table` (natural order) if given, for the ZIGZAG_AC frequencies.

    Computed in strips of block rows (the DCT of a block does not depend on the strip around it;
    tested bit-equal), so the image-sized float64 coefficient arrays are never held whole.
    """
    g, bh, bw = _block_grid(gray, phase)
    out = np.empty((len(ZIGZAG_AC), bh, bw), np.int32)
    u, v = np.array(ZIGZAG_AC).T
    scale = None if table is None else np.asarray(table[:64], np.float64).reshape(8, 8)[u, v]
    step = strip_rows(bw * 8, 8, 4)
    for y in range(0, bh * 8, step):
        coef = block_dct(g[y : y + step])[:, :, u, v]  # only the frequencies used
        if scale is not None:
            coef = coef / scale  # the same division as of all 64, per coefficient
        out[:, y // 8 : (y + step) // 8] = np.round(coef.transpose(2, 0, 1))
    return out


def dq_block_llr(
    coef: np.ndarray, *, tol: int = 0, min_score: float = 0.6
) -> tuple[np.ndarray, list[int]]:
    """Per-block log-likelihood ratio 'tampered vs double-quantised' (Lin et al. 2009, BPPM).

    `coef` is (rows, cols, 8, 8) DCT coefficients in the units whose histogram should be
    periodic. For each low frequency with a clear period p, a coefficient in bin x has
    P(x | consistent) = h(x) / (mass of the period window around x) and P(x | tampered) = 1/p;
    the block's LLR sums log(1/p) - log P(x | consistent) over those frequencies. Values in the
    window around 0 carry no information and are skipped. Returns the map and the periods used.
    """
    rounded = [np.round(coef[:, :, u, v]).astype(np.int64) for u, v in ZIGZAG_AC]
    return dq_block_llr_rounded(rounded, tol=tol, min_score=min_score)


def dq_block_llr_rounded(
    rounded: np.ndarray | list[np.ndarray], *, tol: int = 0, min_score: float = 0.6
) -> tuple[np.ndarray, list[int]]:
    """`dq_block_llr` from the rounded coefficients of the ZIGZAG_AC frequencies, one (rows,
    cols) integer map per frequency (as `rounded_ac` gives)."""
    llr = np.zeros(rounded[0].shape, np.float64)
    periods = []
    for plane in rounded:
        x = np.asarray(plane, dtype=np.int64)
        p, _ = histogram_period(x, tol, min_score=min_score)
        if p < 2:
            continue
        periods.append(p)
        lo = int(x.min())
        h = np.bincount((x - lo).ravel()).astype(np.float64)
        # A block's contribution depends on its bin only: computed once per bin (the same
        # element-wise expressions on the bin values), then looked up per block.
        b = np.arange(lo, lo + h.size, dtype=np.int64)
        # Window of p bins centred on the nearest multiple of p.
        centre = p * np.round(b / p)
        start = (centre - p // 2 - lo).astype(np.int64)
        csum = np.concatenate([[0.0], np.cumsum(h)])
        idx = np.clip(start, 0, h.size)
        end = np.clip(start + p, 0, h.size)
        window = csum[end] - csum[idx]
        p_ok = (h + 0.5) / (window + 0.5 * p)
        contrib = np.log(1.0 / p) - np.log(np.minimum(p_ok, 1.0))
        informative = np.abs(centre) > 0  # the zero window: no evidence either way
        llr += np.where(informative, contrib, 0.0)[x - lo]
    return llr, periods
