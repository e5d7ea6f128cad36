"""Immerkaer's noise residual (Immerkaer 1996): the 3x3 Laplacian-difference kernel that
ignores linear ramps, and its absolute response computed faster than scipy with the same bits.
Used by the noise and face experts and by the learned localizer's features; its strips' reflected
one-pixel border (`reflect_border`) also serves ela's Laplacian and spectrum's predictor."""

from __future__ import annotations

import numpy as np

# Immerkaer's kernel (zero response to linear ramps), /6 so white noise keeps its sigma.
IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32) / 6.0


# Pixels per chunk of rows (2 to 32 rows): 32 rows at 12 MP, 16 at 48 MP. Each chunk is a
# dozen numpy calls, and each call lets the other expert thread take the GIL: with chunks of
# 1 << 15 pixels, the two expert threads traded it 15-18 thousand times per 12 MP analysis.
# A quarter of this keeps the float64 temporaries (40 bytes a pixel) in a small L2 cache, but
# one thread was no faster with it (BENCHMARKS.md, eighth round).
CHUNK_PIXELS = 1 << 17
MAX_CHUNK_ROWS = 32


def immerkaer_abs(
    ch: np.ndarray, top: int = 0, n: int | None = None, chunk: int | None = None
) -> np.ndarray:
    """`|ndimage.correlate(ch, IMMERKAER, mode="reflect")|` of rows [top, top + n), float32.

    scipy's numbers, a third faster: it adds the nine products weight * pixel in float64, in
    the kernel's row-major order, from 0.0, and rounds the sum to float32. A product of two
    float32s is exact in float64 and the weights are 1, -2 and 4 times the float32 1/6, so w * x
    and its doubles are those products; the additions below are scipy's, in its order. Chunks
    of `chunk` rows (by default about CHUNK_PIXELS pixels, 2 to 32 rows) keep the float64
    temporaries in cache; each output value is the same whatever the chunk.
    """
    rows, w = ch.shape
    n = rows - top if n is None else n
    chunk = chunk or min(MAX_CHUNK_ROWS, max(2, round(CHUNK_PIXELS / max(w, 1))))
    w1 = np.float64(IMMERKAER[0, 0])
    out = np.empty((n, w), dtype=np.float32)
    for c0 in range(0, n, chunk):
        m = min(chunk, n - c0)
        lo, hi = top + c0 - 1, top + c0 + m + 1  # input rows, one halo row each side
        a, b = max(lo, 0), min(hi, rows)
        p = np.empty((m + 2, w + 2), dtype=np.float64)  # w1 * pixel, edges reflected
        np.multiply(ch[a:b], w1, out=p[a - lo : b - lo, 1:-1], dtype=np.float64)
        reflect_border(p, lo < 0, hi > rows)
        p2 = p + p
        acc = p[:m, :w] - p2[:m, 1 : w + 1]
        acc += p[:m, 2:]
        acc -= p2[1 : m + 1, :w]
        acc += p2[1 : m + 1, 1 : w + 1] + p2[1 : m + 1, 1 : w + 1]
        acc -= p2[1 : m + 1, 2:]
        acc += p[2:, :w]
        acc -= p2[2:, 1 : w + 1]
        acc += p[2:, 2:]
        np.abs(acc, out=out[c0 : c0 + m], casting="same_kind")
    return out


def reflect_border(p: np.ndarray, top: bool, bottom: bool) -> None:
    """Fill the one-pixel border of a padded strip `p` (interior p[1:-1, 1:-1], plus the rows
    above and below it that lie inside the image) as scipy's mode "reflect" extends an image:
    its first (`top`) and last (`bottom`) row, and every row's end columns, repeated."""
    if top:
        p[0, 1:-1] = p[1, 1:-1]
    if bottom:
        p[-1, 1:-1] = p[-2, 1:-1]
    p[:, 0], p[:, -1] = p[:, 1], p[:, -2]
