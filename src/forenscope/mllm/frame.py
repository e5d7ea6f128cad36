"""Where in the frame: the 3x3 grid words stage-2 answers use, and a mask's cell and box.

Shared by the k-shot stage-2 examples (an answer built from a mask) and by eval's explanation
metrics (an answer scored against a mask), so both speak the same grid.
"""

from __future__ import annotations

import numpy as np

ROWS = ("upper", "middle", "lower")
COLS = ("left", "centre", "right")


def mask_cell(mask: np.ndarray) -> tuple[int, int] | None:
    """(row, col) of the 3x3 cell with the most mask pixels; None for an empty mask."""
    if not mask.any():
        return None
    h, w = mask.shape
    counts = [[int(mask[r * h // 3 : (r + 1) * h // 3, c * w // 3 : (c + 1) * w // 3].sum())
               for c in range(3)] for r in range(3)]  # fmt: skip
    r, c = np.unravel_index(int(np.argmax(counts)), (3, 3))
    return int(r), int(c)


def mask_box(mask: np.ndarray) -> list[float] | None:
    """[x0, y0, x1, y1] of the mask's pixels as shares of width and height; None if empty."""
    ys, xs = np.nonzero(mask)
    if not ys.size:
        return None
    h, w = mask.shape
    return [xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h]


def cell_words(cell: tuple[int, int]) -> str:
    """'upper left', 'middle centre', ... for a (row, col) cell."""
    row, col = cell
    return "centre" if (row, col) == (1, 1) else f"{ROWS[row]} {COLS[col]}"
