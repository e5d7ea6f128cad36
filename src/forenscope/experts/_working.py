"""Working resolutions: the size at which an expert's map (or analysis) is made.

Tamper maps are returned with their longer side at most `MAP_SIDE`, the side at which the fusion
combines them anyway (`map_geometry.WORK_SIDE`); the fused map is upsampled to the image once, in
the fusion. A 48 MP image then carries 1 MP maps instead of seven 48 MP float planes, and the
fusion no longer shrinks them. Images whose longer side is at most `MAP_SIDE` get exactly the
full-resolution map they had before (same values, same shape).
"""

from __future__ import annotations

import numpy as np

from ..map_geometry import WORK_SIDE, resize_map, working_size
from ..types import BBox

MAP_SIDE = WORK_SIDE
# copy_move searches images above this many pixels averaged over f x f pixels
# (`map_geometry.averaging`): every image of the benchmarks' data (20.4 MP at most) is searched
# at full size.
COPY_MOVE_MAX_PIXELS = 24_000_000


def rows_per_strip(width: int, pixels: int, multiple: int = 1) -> int:
    """Rows of a strip of about `pixels` pixels: the multiple of `multiple` nearest
    pixels / width, at least `multiple`."""
    return max(multiple, round(pixels / width / multiple) * multiple)


def map_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """The shape of the map an expert returns for an image of `shape`."""
    return working_size(int(shape[0]), int(shape[1]), MAP_SIDE)


def _axis_weights(n_out: int, n_px: int, n_blocks: int, offset: int, cell: int) -> np.ndarray:
    """(n_out, n_blocks) share of each output pixel covered by each block's painted pixels.

    Block j paints pixels [offset + j * cell, offset + (j + 1) * cell); the first block also
    paints the pixels before the grid and the last one those after it (edge padding).
    """
    starts = offset + cell * np.arange(n_blocks, dtype=np.float64)
    ends = starts + cell
    starts[0], ends[-1] = 0.0, float(n_px)
    starts, ends = np.clip(starts, 0.0, n_px), np.clip(ends, 0.0, n_px)
    edges = np.arange(n_out + 1, dtype=np.float64) * (n_px / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    covered = np.clip(hi, starts, ends) - np.clip(lo, starts, ends)
    return np.asarray(covered / (hi - lo), dtype=np.float32)


def _axis_index(n_px: int, n_blocks: int, offset: int, cell: int) -> np.ndarray:
    return np.clip((np.arange(n_px) - offset) // cell, 0, n_blocks - 1)


def paint_blocks(
    block_map: np.ndarray,
    shape: tuple[int, int],
    *,
    cell: int,
    offset: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """A per-block map painted onto an image of `shape`, at `map_shape(shape)`.

    Block (i, j) covers pixels offset + (i, j) * cell; pixels outside the grid take the nearest
    block. At full size this is nearest painting; smaller, each map pixel is the area-weighted
    mean of the full-size painting over its footprint (what an area resize of it would give).
    """
    blocks = np.asarray(block_map, dtype=np.float32)
    rows, cols = blocks.shape
    out_h, out_w = map_shape(shape)
    if (out_h, out_w) == tuple(shape):
        iy = _axis_index(shape[0], rows, offset[0], cell)
        ix = _axis_index(shape[1], cols, offset[1], cell)
        return np.ascontiguousarray(blocks[iy][:, ix], dtype=np.float32)
    wy = _axis_weights(out_h, shape[0], rows, offset[0], cell)
    wx = _axis_weights(out_w, shape[1], cols, offset[1], cell)
    return np.asarray(wy @ blocks @ wx.T, dtype=np.float32)


def shrink_map(heatmap: np.ndarray) -> np.ndarray:
    """A pixel map brought to `map_shape` of its own shape (antialiased bilinear)."""
    return resize_map(heatmap, *map_shape(heatmap.shape[:2]))


def map_box_to_image(box: BBox, map_size: tuple[int, int], image_size: tuple[int, int]) -> BBox:
    """A box found on a working-size map, in image pixels (unchanged when the sizes agree)."""
    sy, sx = image_size[0] / map_size[0], image_size[1] / map_size[1]
    x, y = round(box.x * sx), round(box.y * sy)
    x2, y2 = round((box.x + box.width) * sx), round((box.y + box.height) * sy)
    return BBox(x=x, y=y, width=max(1, x2 - x), height=max(1, y2 - y))
