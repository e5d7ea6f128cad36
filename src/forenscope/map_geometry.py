"""The geometry of float maps, shared by the experts that draw them and the fusion that combines
them (so neither imports the other's layer): the working size and the resize."""

from __future__ import annotations

import numpy as np
from PIL import Image

from .io.pixels import image_array

# Maps are drawn and combined with their longer side at most this (experts/_working.py).
WORK_SIDE = 1024


def working_size(height: int, width: int, max_side: int = WORK_SIDE) -> tuple[int, int]:
    """(height, width) scaled down so the longer side is at most `max_side` (never enlarged)."""
    scale = min(1.0, max_side / max(height, width, 1))
    return max(1, round(height * scale)), max(1, round(width * scale))


def averaging(pixels: float, max_pixels: float) -> int:
    """The smallest integer f for which an image of `pixels`, averaged over f x f pixels, holds
    at most `max_pixels` (1: full size). copy_move's search and the face detection use it."""
    f = 1
    while pixels > max_pixels * f * f:
        f += 1
    return f


def resize_map(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of a 2-D map to (height, width), float32."""
    arr = np.asarray(heatmap, dtype=np.float32)
    if arr.ndim == 3:  # tolerate (H, W, 1) maps
        arr = arr[..., 0]
    if arr.shape == (height, width):
        return np.nan_to_num(arr)  # a copy, as callers expect
    # min and max are NaN or infinite when any value is: only then is a cleaned copy needed
    # (a full-size map's copy is 183 MB at 48 MP before Pillow makes its own).
    if not (arr.size and np.isfinite(arr.min()) and np.isfinite(arr.max())):
        arr = np.nan_to_num(arr)
    img = Image.fromarray(np.ascontiguousarray(arr), mode="F")
    # as float32, a strip at a time (`np.asarray` would hold the map twice more as bytes)
    return image_array(img.resize((width, height), Image.Resampling.BILINEAR), np.float32)
