"""copy_move's fast paths (issue 15) give the bits of the plain computations they replace."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from forenscope.experts import copy_move as cm
from forenscope.experts._signal_math import blocks


def _values(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Magnitudes over six decades, so a different summation order shows in the last bits.
    return (rng.standard_normal(shape) ** 2 * 10 ** rng.uniform(-3, 3, shape)).astype(np.float32)


@pytest.mark.parametrize(
    ("shape", "y", "x"), [((64, 64), 0, 0), ((203, 317), 3, 5), ((90, 41), 7, 1)]
)
def test_cell_mean_is_the_block_mean_bit_for_bit(shape: tuple[int, int], y: int, x: int) -> None:
    a = _values(shape, 1)[y:, x:]
    assert np.array_equal(cm._cell_mean(a), blocks(a, cm.CELL).mean(axis=-1))


def test_strip_cell_means_and_phase_tables_match_whole_array_means() -> None:
    a = _values((301, 259), 2)
    rows = 296
    strips = cm._strip_cell_means(lambda r: a[:rows][r] ** 2, rows, a.shape[1])
    assert np.array_equal(strips, cm._cell_mean(a[:rows] ** 2))
    gray = _values((301, 259), 3) * 10
    sig = cm.Signals.of(gray)
    for origin, shape in [((0, 0), (301, 259)), ((5, 11), (280, 240)), ((17, 3), (150, 200))]:
        (y, x), (h, w) = origin, shape
        assert np.array_equal(
            sig.cell_mean("hp2", origin, shape), cm._cell_mean(sig.hp2[y : y + h, x : x + w])
        )
        norm = sig.norm[y : y + h, x : x + w]
        assert np.array_equal(sig.cell_mean("norm2", origin, shape), cm._cell_mean(norm * norm))


def _plain_verify(sig: cm.Signals, shift: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """verify as first written, on copied blocks."""
    dy, dx = shift
    h, w = sig.gray.shape[0] - abs(dy), sig.gray.shape[1] - abs(dx)
    ya, xa, yb, xb = max(0, -dy), max(0, -dx), max(0, dy), max(0, dx)
    a, b = (slice(ya, ya + h), slice(xa, xa + w)), (slice(yb, yb + h), slice(xb, xb + w))

    def mean(v: np.ndarray) -> np.ndarray:
        return np.asarray(blocks(v, cm.CELL).mean(axis=-1))

    ea, eb = mean(sig.hp2[a]), mean(sig.hp2[b])
    grey = mean((sig.gray[a] - sig.gray[b]) ** 2) / (ea + eb + 0.5)
    na, nb = sig.norm[a], sig.norm[b]
    detail = mean((na - nb) ** 2) / (mean(na * na) + mean(nb * nb) + 1e-6)
    ratio = np.minimum(grey, detail * (cm.MAX_RATIO / cm.MAX_DETAIL_RATIO))
    match = (ratio < cm.MAX_RATIO) & (np.minimum(ea, eb) > cm.MIN_TEXTURE)
    return ndimage.binary_opening(match), ratio


def test_verify_matches_the_plain_computation() -> None:
    rng = np.random.default_rng(4)
    gray = ndimage.gaussian_filter(rng.uniform(0, 255, (260, 300)), 1.0).astype(np.float32)
    gray[150:210, 190:260] = gray[40:100, 30:100]  # a copy at (110, 160)
    sig = cm.Signals.of(gray)
    for shift in [(110, 160), (-110, -160), (37, -45), (-8, 90)]:
        match, ratio, _ = cm.verify(sig, shift)
        plain_match, plain_ratio = _plain_verify(sig, shift)
        assert np.array_equal(ratio, plain_ratio) and np.array_equal(match, plain_match)
    assert cm.verify(sig, (110, 160))[0].sum() > 40


@pytest.mark.parametrize("size", [5, 15])
@pytest.mark.parametrize("shape", [(64, 80), (301, 259), (16, 40), (12, 30)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_filter_is_scipys_bit_for_bit(
    size: int, shape: tuple[int, int], dtype: type[np.floating]
) -> None:
    a = (_values(shape, 6) * 50 - 20).astype(dtype)
    got = np.concatenate([rows for _, _, rows in cm.uniform_filter_strips(a, size)])
    assert got.dtype == a.dtype
    assert np.array_equal(got, ndimage.uniform_filter(a, size))
