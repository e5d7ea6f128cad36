"""Small numpy/scipy helpers shared by the signal experts (noise, spectrum, copy-move).

Private: the experts' public contract is their `ExpertResult`; these helpers may change freely.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..types import BBox

MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation of a Gaussian


def blocks(a: np.ndarray, size: int) -> np.ndarray:
    """Non-overlapping size x size blocks of a 2-D array as (rows, cols, size*size).

    The right and bottom remainders (less than one block) are dropped.
    """
    nby, nbx = a.shape[0] // size, a.shape[1] // size
    v = a[: nby * size, : nbx * size].reshape(nby, size, nbx, size)
    return v.transpose(0, 2, 1, 3).reshape(nby, nbx, size * size)


def channel_min_max(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel minimum and maximum over the colour channels of an (H, W, C) array.

    Plane by plane: numpy's reduction over a short last axis is about 20x slower (0.9 s for an
    RGB max at 12 MP). Minimum and maximum are exact, so the values are the same.
    """
    planes = [rgb[..., i] for i in range(rgb.shape[-1])]
    lo, hi = planes[0], planes[0]
    for plane in planes[1:]:
        lo, hi = np.minimum(lo, plane), np.maximum(hi, plane)
    return lo, hi


LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601


def luma_matmul(rgb: np.ndarray, rows: int = 256) -> np.ndarray:
    """`rgb.astype(np.float32) @ LUMA`, bit for bit (each row's products are the same BLAS
    calls), made `rows` rows at a time: no float32 copy of the whole RGB image (576 MB at
    48 MP). Not `ImageInput.gray`, which rounds differently; the experts that were fitted on
    this luma keep it."""
    out = np.empty(rgb.shape[:2], dtype=np.float32)
    for r0 in range(0, rgb.shape[0], rows):
        out[r0 : r0 + rows] = rgb[r0 : r0 + rows].astype(np.float32) @ LUMA
    return out


def block_median(a: np.ndarray, size: int) -> np.ndarray:
    """`np.median(blocks(a, size), axis=2)` bit for bit: a sort of each block (vectorised in
    numpy, 5x faster than median's partition at 12 MP) and the same middle value (the float
    mean of the two middle ones for an even count)."""
    s = np.sort(blocks(a, size), axis=2)
    n = size * size
    if n % 2:
        return s[..., n // 2]
    return np.asarray((s[..., n // 2 - 1] + s[..., n // 2]) / 2)


def channel_mean3(a: np.ndarray) -> np.ndarray:
    """`a.mean(axis=-1)` of an (H, W, 3) float array, bit for bit (numpy adds the three in
    order, then divides), at a third of its cost."""
    return np.asarray((a[..., 0] + a[..., 1] + a[..., 2]) / 3)


def wrap_max_filter(a: np.ndarray, size: int) -> np.ndarray:
    """`ndimage.maximum_filter(a, size, mode="wrap")` for an odd size, by doubling windows
    (maximum is exact, so the values are identical) in a fraction of its time at 12 MP."""
    if size % 2 != 1 or min(a.shape) < size // 2:
        raise ValueError(f"odd size no larger than twice the array's sides, got {size}")
    out = a
    for axis in range(a.ndim):
        out = _sliding_max_wrap(out, size, axis)
    return out


def _sliding_max_wrap(a: np.ndarray, size: int, axis: int) -> np.ndarray:
    r, n = size // 2, a.shape[axis]
    m = np.concatenate([a.take(range(n - r, n), axis), a, a.take(range(r), axis)], axis=axis)
    width = 1  # m[i] holds the max over `width` samples starting at padded position i
    while 2 * width <= size:
        m = np.maximum(_along(m, axis, 0, -width), _along(m, axis, width, None))
        width *= 2
    if width < size:
        m = np.maximum(_along(m, axis, 0, width - size), _along(m, axis, size - width, None))
    return m


def _along(a: np.ndarray, axis: int, start: int, stop: int | None) -> np.ndarray:
    index: list[slice] = [slice(None)] * a.ndim
    index[axis] = slice(start, stop)
    return a[tuple(index)]


def upsample_blocks(
    block_map: np.ndarray, size: int, shape: tuple[int, int], step: int | None = None
) -> np.ndarray:
    """Paint a per-block map back to pixel size (nearest), edge-padding the remainder.

    `step` is the block stride when blocks overlap: each block then paints the step x step cell
    at its centre, so the map stays aligned with the image.
    """
    step = step or size
    cells = np.repeat(np.repeat(block_map, step, axis=0), step, axis=1)
    off = (size - step) // 2
    out = np.pad(
        cells,
        (
            (off, max(0, shape[0] - off - cells.shape[0])),
            (off, max(0, shape[1] - off - cells.shape[1])),
        ),
        mode="edge",
    )
    return out[: shape[0], : shape[1]].astype(np.float32)


def robust_center_scale(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based sigma of the finite values (scale never below a tiny epsilon)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0, 1.0
    med = float(np.median(v))
    mad = float(np.median(np.abs(v - med))) * MAD_TO_SIGMA
    return med, max(mad, 1e-6)


def ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear map of [lo, hi] onto [0, 1], clipped: the heatmap's 0.5 level is (lo + hi) / 2."""
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def components(mask: np.ndarray, min_pixels: int = 1) -> list[tuple[BBox, int]]:
    """Connected components of a boolean mask as (bbox, pixel count), largest first."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    out: list[tuple[BBox, int]] = []
    for i, sl in enumerate(ndimage.find_objects(labels)):
        if sl is None or sizes[i] < min_pixels:
            continue
        ys, xs = sl
        box = BBox(x=xs.start, y=ys.start, width=xs.stop - xs.start, height=ys.stop - ys.start)
        out.append((box, int(sizes[i])))
    out.sort(key=lambda t: -t[1])
    return out


def bbox_words(box: BBox) -> str:
    """'x=10..50, y=20..80' (inclusive pixel ranges), the form a person can check in an editor."""
    return f"x={box.x}..{box.x + box.width - 1}, y={box.y}..{box.y + box.height - 1}"
