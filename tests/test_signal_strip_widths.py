"""Strips sized by pixels, not rows (issue 15 at 48 MP): whatever the strip height the width
gives, ELA, noise and spectrum's pixel work stays the whole-image numpy/scipy values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from forenscope.experts import ela, noise, spectrum
from forenscope.experts._signal_math import MAD_TO_SIGMA, blocks, luma_matmul
from forenscope.residual import IMMERKAER, immerkaer_abs

SHAPES = [(130, 200), (97, 131), (64, 67)]


def photo(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Smooth gradients with noise and a saturated corner (8-bit RGB)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]]
    base = np.stack([x * 0.7, y * 0.9, (x + y) * 0.4], axis=-1) + rng.normal(0, 6, (*shape, 3))
    base[: shape[0] // 4, : shape[1] // 4] = 255
    return np.asarray(np.clip(base, 0, 255), dtype=np.uint8)


def test_strip_rows_follow_the_width() -> None:
    assert [ela.strip_rows(w) for w in (8485, 6000, 4243, 100)] == [32, 40, 64, 2624]
    assert [spectrum.strip_rows(w) for w in (8485, 6000, 4243, 10**6)] == [15, 22, 31, 1]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("pixels", [1, 2000, 1 << 16])
def test_ela_blocks_do_not_depend_on_the_strip(
    shape: tuple[int, int], pixels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rgb = photo(shape, seed=shape[0])
    want = ela.ela_blocks(rgb)
    monkeypatch.setattr(ela, "STRIP_PIXELS", pixels)
    got = ela.ela_blocks(rgb)
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("pixels", [1, 500, 1 << 15])
def test_spectrum_residual_does_not_depend_on_the_strip(
    shape: tuple[int, int], pixels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gray = luma_matmul(photo(shape, seed=2))
    e = np.asarray(gray - ndimage.correlate(gray, spectrum._PREDICTOR, mode="reflect"))
    monkeypatch.setattr(spectrum, "STRIP_PIXELS", pixels)
    assert np.array_equal(spectrum.predictor_residual(gray), e)
    assert spectrum.detail_share(e) == float(np.mean(np.abs(e) > 1.0))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("strip", "luma_rows"), [(1, 8), (2, 3), (3, 256)])
def test_noise_luma_planes_are_the_whole_plane(
    shape: tuple[int, int], strip: int, luma_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rgb = photo(shape, seed=shape[1])
    g = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    r = np.abs(ndimage.correlate(g, IMMERKAER, mode="reflect"))
    fine = np.asarray(np.median(blocks(r, 16), axis=2) * MAD_TO_SIGMA, dtype=np.float64)
    h4, w4 = g.shape[0] // 4 * 4, g.shape[1] // 4 * 4
    low = g[:h4, :w4].reshape(h4 // 4, 4, w4 // 4, 4).mean(axis=(1, 3))
    monkeypatch.setattr(noise, "STRIP_BLOCKS", strip)
    monkeypatch.setattr(noise, "LUMA_ROWS", luma_rows)
    got = noise.luma_planes(rgb)
    for a, b in zip(got, (fine, blocks(g, 16).mean(axis=2), low), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    # The coarse level as the whole luma plane gave it before.
    want_coarse = noise.coarse_sigma(np.asarray(noise._mean4x4(
        g[:h4, :w4].reshape(h4 // 4, 4, w4 // 4, 4))), fine.shape)  # fmt: skip
    assert np.array_equal(noise.coarse_sigma(got[2], fine.shape), want_coarse)


@pytest.mark.parametrize("width", [3, 40, 5000, 20000])
def test_immerkaer_default_chunk_is_scipys(width: int) -> None:
    ch = np.random.default_rng(width).integers(0, 256, (11, width)).astype(np.float32)
    want = np.abs(ndimage.correlate(ch, IMMERKAER, mode="reflect"))
    assert np.array_equal(immerkaer_abs(ch), want)
    assert np.array_equal(immerkaer_abs(ch, 3, 5), want[3:8])
