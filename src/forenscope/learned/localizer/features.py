"""Per-block (16 px) forensic features, each also put in context of its image and neighbours.

A forged region differs from the rest of *its own* image: in noise level, in how it reacts to a
new JPEG save (ELA / JPEG ghost curve), in where its 8x8 blocking grid sits. So every raw block
statistic is given to the model four ways: raw, as a robust z against the image, smoothed over
3x3 blocks, and as a local (3x3) minus wider (9x9) contrast. Inference needs numpy, scipy, Pillow.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

BLOCK = 16
GHOST_QUALITIES = (50, 65, 80, 90, 97)
# Immerkaer's kernel (zero response to linear ramps), scaled so white noise keeps its sigma.
_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32) / 6.0
_GLOBAL_KEYS = ("noise_y", "noise_cb", "ghost_80", "ghost_97", "grid_h", "grid_v", "texture")


def block_mean(a: np.ndarray, size: int = BLOCK) -> np.ndarray:
    """Mean of each non-overlapping size x size block (remainders dropped)."""
    nby, nbx = a.shape[0] // size, a.shape[1] // size
    a = np.asarray(a[: nby * size, : nbx * size], dtype=np.float32)
    # Summing the contiguous axis first is several times faster than mean(axis=(1, 3)).
    rows = a.reshape(nby * size, nbx, size).sum(axis=2)
    return np.asarray(rows.reshape(nby, size, nbx).sum(axis=1) / (size * size), dtype=np.float32)


def _log(a: np.ndarray) -> np.ndarray:
    return np.asarray(np.log(a + 0.05), dtype=np.float32)


def _ycbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = rgb.astype(np.float32)
    y = f @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    cb = f @ np.array([-0.1687, -0.3313, 0.5], dtype=np.float32)
    cr = f @ np.array([0.5, -0.4187, -0.0813], dtype=np.float32)
    return y, cb, cr


def _jpeg_error(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Per-pixel squared error (mean over RGB) of a re-save at `quality`: ELA / JPEG ghost."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=2)
    with Image.open(buf) as decoded:
        # A JPEG saved from RGB decodes as RGB: no converted copy needed then.
        again = np.asarray(decoded if decoded.mode == "RGB" else decoded.convert("RGB"))
    # Integer squares, exact as the float32 ones were (a sum of three is < 2**24). A square of
    # |d| <= 255 fits uint16, and uint16 arithmetic wraps modulo 2**16, so squaring the int16
    # difference's bits as uint16 gives d**2 exactly with half the memory traffic of int32.
    d = np.subtract(again, rgb, dtype=np.int16).view(np.uint16)
    sq = np.multiply(d, d)
    total = np.add(sq[..., 0], sq[..., 1], dtype=np.int32)
    total += sq[..., 2]
    return np.asarray(total.astype(np.float32) / 3.0, dtype=np.float32)


def _grid_phase_energy(y: np.ndarray, axis: int) -> np.ndarray:
    """Mean |first difference| per block at each of the 8 phases of the 8x8 JPEG grid.

    Returns (rows, cols, 8); phase 7 is the difference across an aligned 8 px block boundary.
    """
    d = np.abs(np.diff(y, axis=axis))
    d = np.concatenate([d, np.zeros_like(d[:1] if axis == 0 else d[:, :1])], axis=axis)
    nby, nbx = y.shape[0] // BLOCK, y.shape[1] // BLOCK
    d = d[: nby * BLOCK, : nbx * BLOCK]
    if axis == 0:
        v = d.reshape(nby, BLOCK // 8, 8, nbx, BLOCK).mean(axis=(1, 4))  # (nby, 8, nbx)
        return np.asarray(v.transpose(0, 2, 1), dtype=np.float32)
    v = d.reshape(nby, BLOCK, nbx, BLOCK // 8, 8).mean(axis=(1, 3))  # (nby, nbx, 8)
    return np.asarray(v, dtype=np.float32)


def raw_block_features(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Raw per-block statistics of an RGB uint8 image, each (rows, cols) float32."""
    y, cb, cr = _ycbcr(rgb)
    out: dict[str, np.ndarray] = {}
    for name, ch in (("noise_y", y), ("noise_cb", cb), ("noise_cr", cr)):
        out[name] = _log(block_mean(np.abs(ndimage.correlate(ch, _IMMERKAER, mode="reflect"))))
    out["diff1"] = _log(block_mean(np.abs(np.diff(y, axis=1, append=y[:, -1:]))))
    # Scene texture (not noise): gradient of the 2x-averaged, slightly smoothed image.
    small = ndimage.gaussian_filter(block_mean(y, 2), 1.0)
    grad = np.hypot(
        np.diff(small, axis=0, append=small[-1:]), np.diff(small, axis=1, append=small[:, -1:])
    )
    out["texture"] = _log(
        block_mean(grad, BLOCK // 2)[: out["noise_y"].shape[0], : out["noise_y"].shape[1]]
    )
    out["noise_vs_texture"] = out["noise_y"] - out["texture"]
    out["bright"] = block_mean(y) / 255.0
    out["std"] = _log(np.sqrt(np.maximum(block_mean(y * y) - block_mean(y) ** 2, 0.0)))
    # Plane by plane: numpy reduces a short last axis slowly (about 1 s at 12 MP); same result.
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    hi, lo = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    clip = ((hi >= 250) | (lo <= 3)).astype(np.float32)
    out["clipped"] = block_mean(clip)
    ghosts = np.stack([_log(block_mean(_jpeg_error(rgb, q))) for q in GHOST_QUALITIES])
    for q, g in zip(GHOST_QUALITIES, ghosts, strict=True):
        out[f"ghost_{q}"] = g
        out[f"ghost_{q}_shape"] = g - ghosts.mean(axis=0)
    for name, axis in (("grid_h", 1), ("grid_v", 0)):
        e = _grid_phase_energy(y, axis) + 0.05
        out[name] = np.log(e[..., 7] / e[..., :7].mean(axis=-1))
        out[f"{name}_peak"] = np.log(e.max(axis=-1) / np.median(e, axis=-1))
    return out


def _robust_z(f: np.ndarray) -> np.ndarray:
    med = float(np.median(f))
    mad = float(np.median(np.abs(f - med))) * 1.4826
    return np.clip((f - med) / max(mad, 0.05), -10.0, 10.0).astype(np.float32)


def context_features(raw: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """Stack raw statistics with their image-relative and neighbourhood-relative versions.

    Returns X of shape (rows * cols, n_features) and the feature names.
    """
    cols: list[np.ndarray] = []
    names: list[str] = []
    for key in sorted(raw):
        f = raw[key].astype(np.float32)
        z = _robust_z(f)
        s3 = ndimage.uniform_filter(z, 3, mode="nearest")
        s9 = ndimage.uniform_filter(z, 9, mode="nearest")
        for suffix, arr in (("raw", f), ("z", z), ("z3", s3), ("local", s3 - s9)):
            cols.append(arr)
            names.append(f"{key}:{suffix}")
    shape = next(iter(raw.values())).shape
    for key in _GLOBAL_KEYS:  # image-wide levels: lets the trees condition on the image's type
        cols.append(np.full(shape, float(np.median(raw[key])), dtype=np.float32))
        names.append(f"{key}:image_median")
    x = np.stack([c.ravel() for c in cols], axis=1)
    return np.nan_to_num(x).astype(np.float32), names


def image_features(rgb: np.ndarray) -> tuple[np.ndarray, tuple[int, int], list[str]]:
    """Feature matrix of an image, its block-grid shape and the feature names."""
    if min(rgb.shape[:2]) < 2 * BLOCK:
        raise ValueError(f"image too small for {BLOCK} px blocks: {rgb.shape[:2]}")
    raw = raw_block_features(np.ascontiguousarray(rgb[..., :3], dtype=np.uint8))
    x, names = context_features(raw)
    grid = next(iter(raw.values())).shape
    return x, (int(grid[0]), int(grid[1])), names


def block_labels(mask: np.ndarray) -> np.ndarray:
    """Share of manipulated pixels in each block, flattened like the feature rows."""
    return block_mean(mask.astype(np.float32)).ravel()
