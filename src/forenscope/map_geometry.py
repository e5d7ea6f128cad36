"""The geometry of float maps, shared by the experts that draw them and the fusion that combines
them (so neither imports the other's layer): the working size and the resize."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Maps are drawn and combined with their longer side at most this (experts/_working.py).
WORK_SIDE = 1024


def working_size(height: int, width: int, max_side: int = WORK_SIDE) -> tuple[int, int]:
    """(height, width) scaled down so the longer side is at most `max_side` (never enlarged)."""
    scale = min(1.0, max_side / max(height, width, 1))
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_map(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of a 2-D map to (height, width), float32."""
    arr = np.nan_to_num(np.asarray(heatmap, dtype=np.float32))
    if arr.ndim == 3:  # tolerate (H, W, 1) maps
        arr = arr[..., 0]
    if arr.shape == (height, width):
        return arr
    img = Image.fromarray(np.ascontiguousarray(arr), mode="F")
    return np.asarray(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
