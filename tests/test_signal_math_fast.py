"""The fast helpers the signal experts use at large sizes (issue 15) give numpy's and scipy's
results bit for bit: the experts' outputs, and the verdict model fitted on them, must not move."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from forenscope.experts._signal_math import channel_mean3, channel_min_max, wrap_max_filter


@pytest.mark.parametrize("shape", [(64, 64), (65, 97), (100, 33), (9, 9), (5, 300)])
@pytest.mark.parametrize("size", [3, 9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wrap_max_filter_is_scipys(shape: tuple[int, int], size: int, dtype: type) -> None:
    rng = np.random.default_rng(sum(shape) + size)
    a: np.ndarray = (np.round(rng.standard_normal(shape) * 4) / 4).astype(dtype)  # many ties
    a[rng.random(shape) < 0.1] = 0.0
    want = ndimage.maximum_filter(a, size, mode="wrap")
    got = wrap_max_filter(a, size)
    assert got.dtype == want.dtype and np.array_equal(got, want)


def test_wrap_max_filter_refuses_an_even_size() -> None:
    with pytest.raises(ValueError, match="odd size"):
        wrap_max_filter(np.zeros((16, 16)), 4)


def test_channel_helpers_are_numpys_reductions() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (131, 77, 3), dtype=np.uint8)
    lo, hi = channel_min_max(rgb)
    assert np.array_equal(lo, rgb.min(axis=-1)) and np.array_equal(hi, rgb.max(axis=-1))
    for _ in range(5):
        f = (rng.random((131, 77, 3)) * rng.choice([1.0, 255.0, 1e4])).astype(np.float32)
        assert np.array_equal(channel_mean3(f), f.mean(axis=-1))
        assert channel_mean3(f).dtype == f.mean(axis=-1).dtype
