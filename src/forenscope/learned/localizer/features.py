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

from ...io import jpeg_codec
from ...residual import immerkaer_abs

BLOCK = 16
GHOST_QUALITIES = (50, 65, 80, 90, 97)
_GLOBAL_KEYS = ("noise_y", "noise_cb", "ghost_80", "ghost_97", "grid_h", "grid_v", "texture")


def block_mean(a: np.ndarray, size: int = BLOCK) -> np.ndarray:
    """Mean of each non-overlapping size x size block (remainders dropped)."""
    nby, nbx = a.shape[0] // size, a.shape[1] // size
    a = np.asarray(a[: nby * size, : nbx * size], dtype=np.float32)
    # Summing the contiguous axis first is several times faster than mean(axis=(1, 3)).
    rows = a.reshape(nby * size, nbx, size).sum(axis=2)
    return np.asarray(rows.reshape(nby, size, nbx).sum(axis=1) / (size * size), dtype=np.float32)


def _block_mean16(a: np.ndarray) -> np.ndarray:
    """`block_mean(a, 16)` with the same float32 additions in the same order, in fewer numpy
    calls: numpy sums 16 contiguous float32s pairwise as ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))
    with r_j = a_j + a_(j+8); the row sums are then added as block_mean adds them."""
    nby = a.shape[0] // BLOCK
    rows = _row_sums16(a[: nby * BLOCK]).reshape(nby, BLOCK, -1)
    return np.asarray(rows.sum(axis=1) / (BLOCK * BLOCK), dtype=np.float32)  # as block_mean


def _half_mean(a: np.ndarray) -> np.ndarray:
    """`block_mean(a, 2)` (same additions, same order) without numpy's slow length-2 reduce."""
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    total: np.ndarray = a[:h:2, :w:2] + a[:h:2, 1:w:2]
    total += a[1:h:2, :w:2] + a[1:h:2, 1:w:2]
    total /= 4
    return total


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


# The statistics are computed strip by strip, so image-sized temporaries (float copies,
# correlations, decoded re-saves) stay strip-sized: at 48 MP the whole-image version peaked near
# 3 GB, and strip-sized arrays stay in the CPU cache. The results are bit-identical to whole-image
# ones: each strip carries the halo rows its filters read (1 row for the 3x3 noise kernel and the
# vertical difference; one 16 px MCU row on each side for the JPEG re-save, whose 4:2:0 MCUs are
# 16x16 and whose decoder's chroma upsampling reads the neighbouring chroma rows).
JPEG_STRIP_BLOCKS = 32  # block rows re-saved at a time: the 2 halo MCU rows cost 6% more coding
# Pixels of the pixel statistics at a time (whole block rows: 8 at 12 MP, 4 at 48 MP), and
# block rows of each re-save's error. Each strip is many numpy calls, and each call lets another
# expert thread take the GIL: strips of half this and of one block row made the two expert
# threads trade it about 45 thousand times in the localizer alone at 12 MP, which cost more than
# larger strips lose in cache (BENCHMARKS.md, eighth round).
STRIP_PIXELS = 1 << 19
GHOST_BLOCKS = 4


def strip_blocks(width: int) -> int:
    """Block rows per strip of the pixel statistics: about STRIP_PIXELS pixels, at least one."""
    return max(1, round(STRIP_PIXELS / (max(width, 1) * BLOCK)))


def raw_block_features(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Raw per-block statistics of an RGB uint8 image, each (rows, cols) float32."""
    h, w = rgb.shape[:2]
    nby = h // BLOCK
    strip = strip_blocks(w)
    parts: dict[str, list[np.ndarray]] = {}
    # The 2x-averaged luma for the texture statistic, filled strip by strip (a quarter of Y).
    small = np.empty((h // 2, w // 2), dtype=np.float32)
    for b0 in range(0, nby, JPEG_STRIP_BLOCKS):
        b1 = min(nby, b0 + JPEG_STRIP_BLOCKS)
        # the last strip also covers the remainder rows (they feed `small` and the halos)
        r1 = h if b1 == nby else b1 * BLOCK
        for key, val in _ghost_strip(rgb, b0 * BLOCK, r1).items():
            parts.setdefault(key, []).append(val)
        for c0 in range(b0, b1, strip):
            c1 = min(b1, c0 + strip)
            s1 = r1 if c1 == b1 else c1 * BLOCK
            for key, val in _strip_features(rgb, c0 * BLOCK, s1, small).items():
                parts.setdefault(key, []).append(val)
    out = {key: np.concatenate(vals) for key, vals in parts.items()}
    out["texture"] = _texture(small, nby, strip)[:, : out["noise_y"].shape[1]]
    out["noise_vs_texture"] = out["noise_y"] - out["texture"]
    ghosts = np.stack([out[f"ghost_{q}"] for q in GHOST_QUALITIES])
    mean_ghost = ghosts.mean(axis=0)
    for q in GHOST_QUALITIES:
        out[f"ghost_{q}_shape"] = out[f"ghost_{q}"] - mean_ghost
    for name in ("grid_h", "grid_v"):
        e = out.pop(f"{name}_energy")
        out[name] = np.log(e[..., 7] / e[..., :7].mean(axis=-1))
        out[f"{name}_peak"] = np.log(e.max(axis=-1) / np.median(e, axis=-1))
    return out


def _strip_features(rgb: np.ndarray, r0: int, r1: int, small: np.ndarray) -> dict[str, np.ndarray]:
    """The per-block pixel statistics of rows [r0, r1) (r0 on a block row), halos included."""
    h = rgb.shape[0]
    e0, e1 = max(0, r0 - 1), min(h, r1 + 1)
    y_ext, cb_ext, cr_ext = _ycbcr(rgb[e0:e1])
    top, n = r0 - e0, r1 - r0
    y = y_ext[top : top + n]
    out: dict[str, np.ndarray] = {}
    for name, ch in (("noise_y", y_ext), ("noise_cb", cb_ext), ("noise_cr", cr_ext)):
        out[name] = _log(_block_mean16(immerkaer_abs(ch, top, n)))
    # np.diff with append=last column: the last difference is +0.0
    d = np.empty_like(y)
    np.subtract(y[:, 1:], y[:, :-1], out=d[:, :-1])
    d[:, -1] = 0.0
    out["diff1"] = _log(_block_mean16(np.abs(d, out=d)))
    small[r0 // 2 : r0 // 2 + n // 2] = _half_mean(y)
    mean = _block_mean16(y)
    out["bright"] = mean / 255.0
    out["std"] = _log(np.sqrt(np.maximum(_block_mean16(y * y) - mean**2, 0.0)))
    # A channel is clipped when >= 250 or <= 3, i.e. when (v - 4) mod 256 >= 246; channel by
    # channel (numpy reduces a short last axis slowly).
    shifted = rgb[r0:r1] - np.uint8(4)
    top_ch = np.maximum(np.maximum(shifted[..., 0], shifted[..., 1]), shifted[..., 2])
    out["clipped"] = _block_mean16((top_ch >= 246).astype(np.float32))
    out["grid_h_energy"] = _grid_energy_h(y) + 0.05
    # the vertical difference of the strip's last row reads the next strip's first row
    out["grid_v_energy"] = _grid_energy_v(y_ext[top:], n // BLOCK) + 0.05
    return out


def _row_sums16(a: np.ndarray) -> np.ndarray:
    """Sum of each row's 16-pixel pieces, (rows, cols // 16), in numpy's pairwise order."""
    nbx = a.shape[1] // BLOCK
    v = a[:, : nbx * BLOCK].reshape(a.shape[0], nbx, BLOCK)
    r = v[..., :8] + v[..., 8:]
    p = r[..., 0::2] + r[..., 1::2]
    q = p[..., 0::2] + p[..., 1::2]
    out: np.ndarray = q[..., 0] + q[..., 1]
    return out


def _grid_energy_h(y: np.ndarray) -> np.ndarray:
    """`_grid_phase_energy(y, 1)` with numpy's additions in numpy's order, 3x faster: its mean
    over (rows, halves) adds the 32 values of each (block, phase) one after another."""
    nby, nbx = y.shape[0] // BLOCK, y.shape[1] // BLOCK
    d = np.empty_like(y)  # |horizontal difference|, the last column's +0.0 as np.diff's pad
    np.subtract(y[:, 1:], y[:, :-1], out=d[:, :-1])
    d[:, -1] = 0.0
    np.abs(d, out=d)
    v = d[: nby * BLOCK, : nbx * BLOCK].reshape(nby, BLOCK, nbx, 2, 8)
    acc: np.ndarray = v[:, 0, :, 0] + v[:, 0, :, 1]
    for i in range(1, BLOCK):
        acc += v[:, i, :, 0]
        acc += v[:, i, :, 1]
    acc /= 2 * BLOCK
    return acc


def _grid_energy_v(y: np.ndarray, nby: int) -> np.ndarray:
    """`_grid_phase_energy(y, 0)[:nby]` likewise: per block and phase p, numpy adds the pairwise
    sums of rows p and p + 8. `y` holds one row more than the blocks unless it ends the image."""
    d = np.abs(np.diff(y, axis=0))
    if d.shape[0] < nby * BLOCK:  # the image's last row: its difference is the zero pad
        d = np.concatenate([d, np.zeros_like(d[:1])])
    rs = _row_sums16(d[: nby * BLOCK]).reshape(nby, 2, 8, -1)
    v: np.ndarray = rs[:, 0] + rs[:, 1]
    v /= 2 * BLOCK
    return v.transpose(0, 2, 1)


def _ghost_strip(rgb: np.ndarray, r0: int, r1: int) -> dict[str, np.ndarray]:
    """The JPEG ghost statistic of block rows [r0, r1) at each quality: `_jpeg_error`'s
    block means, the re-save made of the strip plus one MCU row above and below."""
    h, w = rgb.shape[:2]
    j0, j1 = max(0, r0 - BLOCK), min(h, r1 + BLOCK)
    src = Image.fromarray(rgb[j0:j1])  # one copy for the five saves
    decoded = np.empty((j1 - j0, w, 4), dtype=np.uint8)
    # The reference as int16 in the decoded layout (4 bytes a pixel), once for the five saves:
    # the differences are then contiguous; the pad channel is never read.
    ref = np.empty((r1 - r0, w, 4), dtype=np.int16)
    ref[..., :3] = rgb[r0:r1]
    out: dict[str, np.ndarray] = {}
    whole = (r1 - r0) // BLOCK * BLOCK  # the strip's rows of whole blocks
    step = GHOST_BLOCKS * BLOCK  # a few block rows at a time: they stay in cache
    for q in GHOST_QUALITIES:
        _resave_into(src, q, decoded)
        rows = []
        for i in range(0, whole, step):
            n = min(step, whole - i)
            err = _squared_error(decoded[r0 - j0 + i : r0 - j0 + i + n], ref[i : i + n])
            rows.append(_block_mean16(err))
        out[f"ghost_{q}"] = _log(np.concatenate(rows))
    return out


def _resave_into(src: Image.Image, quality: int, out: np.ndarray) -> None:
    """JPEG-save `src` at `quality` (4:2:0) and decode it into `out` (h, w, 4): RGB, pad byte.
    Saved through `jpeg_codec`, which lets the other expert threads run meanwhile."""
    buf = io.BytesIO(jpeg_codec.encode(src, quality=quality, subsampling=2))
    with Image.open(buf) as decoded:
        # Pillow stores RGB as 4 bytes a pixel, like RGBX: decoding straight into `out` saves
        # the copy np.asarray would make through tobytes().
        target = None
        if decoded.mode == "RGB" and decoded.size == (out.shape[1], out.shape[0]):
            target = Image.frombuffer("RGBX", decoded.size, out, "raw", "RGBX", 0, 1).im
            decoded.im = target
        decoded.load()
        if decoded.im is not target:  # another Pillow (or mode) made its own image: copy
            out[..., :3] = np.asarray(decoded if decoded.mode == "RGB" else decoded.convert("RGB"))


def _squared_error(again: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-pixel squared error, mean over RGB, of a decoded uint8 (h, w, 4) re-save and the
    int16 (h, w, 4) original: the values of `_jpeg_error` (channel 3 is ignored)."""
    d = again.astype(np.int16)
    d -= ref
    # |d| <= 255, so d**2 fits uint16 and uint16 arithmetic (modulo 2**16) squares the int16
    # bits exactly; the float32 sum of three is exact too (< 2**24).
    sq = d.view(np.uint16)
    sq *= sq
    total = sq[..., 0].astype(np.float32)
    total += sq[..., 1]
    total += sq[..., 2]
    total /= 3.0
    return total


def _texture(small: np.ndarray, nby: int, strip: int) -> np.ndarray:
    """Scene texture (not noise) per block: gradient of the 2x-averaged, slightly smoothed image.

    Strip by strip too (`strip` block rows): the Gaussian (sigma 1, radius 4) reads 4 rows each
    side and the vertical difference one more below, so each strip carries those halo rows."""
    hs = small.shape[0]
    rows: list[np.ndarray] = []
    half = BLOCK // 2
    for b0 in range(0, nby, strip):
        b1 = min(nby, b0 + strip)
        s0, s1 = b0 * half, b1 * half
        lo, hi = max(0, s0 - 4), min(hs, s1 + 5)
        sm = ndimage.gaussian_filter(small[lo:hi], 1.0)[s0 - lo : s1 + 1 - lo]
        grad = np.hypot(np.diff(sm, axis=0, append=sm[-1:]), np.diff(sm, axis=1, append=sm[:, -1:]))
        rows.append(_log(block_mean(grad[: s1 - s0], half)))
    return np.concatenate(rows)


def _robust_z(f: np.ndarray) -> np.ndarray:
    med = float(np.median(f))
    mad = float(np.median(np.abs(f - med))) * 1.4826
    return np.clip((f - med) / max(mad, 0.05), -10.0, 10.0).astype(np.float32)


def context_features(raw: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """Stack raw statistics with their image-relative and neighbourhood-relative versions.

    Returns X of shape (rows * cols, n_features) and the feature names.
    """
    shape = next(iter(raw.values())).shape
    # Filled column by column and cleaned in place: a stack, nan_to_num and astype made three
    # (rows * cols, n_features) copies; the values are the same float32s.
    x = np.empty((shape[0] * shape[1], 4 * len(raw) + len(_GLOBAL_KEYS)), dtype=np.float32)
    names: list[str] = []
    for key in sorted(raw):
        f = raw[key].astype(np.float32)
        z = _robust_z(f)
        s3 = ndimage.uniform_filter(z, 3, mode="nearest")
        s9 = ndimage.uniform_filter(z, 9, mode="nearest")
        for suffix, arr in (("raw", f), ("z", z), ("z3", s3), ("local", s3 - s9)):
            x[:, len(names)] = arr.ravel()
            names.append(f"{key}:{suffix}")
    for key in _GLOBAL_KEYS:  # image-wide levels: lets the trees condition on the image's type
        x[:, len(names)] = np.float32(np.median(raw[key]))
        names.append(f"{key}:image_median")
    np.nan_to_num(x, copy=False)
    return x, names


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
