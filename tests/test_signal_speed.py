"""The faster pixel work of ELA, noise and spectrum (issue 15) gives the values of the plain
numpy/scipy code it replaced, bit for bit: the verdict model is fitted on these outputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from forenscope.experts import _jpeg_math as jm
from forenscope.experts import ela, noise, spectrum
from forenscope.experts._signal_math import (
    MAD_TO_SIGMA,
    block_median,
    blocks,
    channel_mean3,
    luma_matmul,
)
from forenscope.forgeries import EXAMPLE_PHOTO
from forenscope.io.input import ImageInput
from forenscope.residual import IMMERKAER, immerkaer_abs

SHAPES = [(130, 200), (97, 131), (64, 64), (200, 77)]


def photo(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A crop of the shipped photo with clipped areas and noise (8-bit RGB)."""
    rng = np.random.default_rng(seed)
    rgb = np.asarray(Image.open(EXAMPLE_PHOTO).convert("RGB"))[: shape[0], : shape[1]].copy()
    rgb[: shape[0] // 4, : shape[1] // 4] = 255  # saturated corner
    noisy = rgb.astype(np.int16) + rng.integers(-6, 7, rgb.shape)
    return np.asarray(np.clip(noisy, 0, 255), dtype=np.uint8)


def luma(rgb: np.ndarray) -> np.ndarray:
    return ImageInput(rgb=rgb, data=b"", format="PNG", mode="RGB").gray


def test_luma_matmul_and_block_median_are_numpys() -> None:
    rgb = photo((300, 211))
    assert np.array_equal(luma_matmul(rgb, rows=7), rgb.astype(np.float32) @ noise_luma())
    rng = np.random.default_rng(1)
    a = np.round(rng.random((50, 70)) * 8).astype(np.float32)  # many ties
    for size in (3, 4, 16):
        want = np.median(blocks(a, size), axis=2)
        got = block_median(a, size)
        assert got.dtype == want.dtype and np.array_equal(got, want)


@pytest.mark.parametrize("shape", [(1, 5), (2, 9), (7, 13), (40, 33), (61, 70)])
def test_immerkaer_abs_is_scipys(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    for scale in (1.0, 255.0, 1e-3):  # any float32 values, negative ones too
        ch = (rng.standard_normal(shape) * scale).astype(np.float32)
        want = np.abs(ndimage.correlate(ch, IMMERKAER, mode="reflect"))
        assert np.array_equal(immerkaer_abs(ch), want)
        for top, n in [(0, shape[0]), (shape[0] // 2, shape[0] - shape[0] // 2), (1, 0)]:
            if top + n <= shape[0]:
                got = immerkaer_abs(ch, top, n, chunk=3)
                assert got.dtype == np.float32 and np.array_equal(got, want[top : top + n])


def noise_luma() -> np.ndarray:
    return np.array([0.299, 0.587, 0.114], dtype=np.float32)


def texture_z_by_masks(error: np.ndarray, texture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ELA's texture-normalised z as first written: one boolean mask per texture bin."""
    le = np.log(error + ela.ERR_EPS)
    lt = np.log(texture + 0.5)
    edges = np.quantile(lt, np.linspace(0.0, 1.0, ela.TEXTURE_BINS + 1))
    idx = np.clip(np.searchsorted(edges, lt, side="right") - 1, 0, ela.TEXTURE_BINS - 1)
    z, typical = np.zeros_like(le), np.zeros_like(le)
    for b in range(ela.TEXTURE_BINS):
        sel = idx == b
        if not sel.any():
            continue
        med = float(np.median(le[sel]))
        mad = float(np.median(np.abs(le[sel] - med))) * 1.4826
        z[sel] = (le[sel] - med) / max(mad, ela.MAD_FLOOR)
        typical[sel] = np.exp(med) - ela.ERR_EPS
    return z, typical


@pytest.mark.parametrize("seed", range(4))
def test_ela_texture_z_is_the_per_bin_formula(seed: int) -> None:
    rng = np.random.default_rng(seed)
    error = (rng.gamma(2.0, 1.0, (40, 61)) * rng.choice([0.1, 1.0, 5.0])).astype(np.float32)
    texture = np.round(rng.gamma(1.5, 4.0, (40, 61))).astype(np.float32)  # ties across bins
    want, got = texture_z_by_masks(error, texture), ela.texture_normalised_z(error, texture)
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("shape", SHAPES)
def test_ela_blocks_are_the_whole_image_planes(shape: tuple[int, int]) -> None:
    rgb = photo(shape, seed=shape[0])
    resaved = jm.recompress(rgb, ela.RESAVE_QUALITY)
    assert np.array_equal(jm.recompress(rgb, ela.RESAVE_QUALITY, uint8=True), resaved)
    error = channel_mean3(np.abs(resaved - rgb.astype(np.float32)))
    texture = np.abs(ndimage.laplace(rgb.astype(np.float32) @ noise_luma()))
    lo, hi = rgb.min(axis=-1), rgb.max(axis=-1)
    extreme = ((lo <= 2) | (hi >= 253)).astype(np.float32)
    z, typical = texture_z_by_masks(jm.block_mean(error), jm.block_mean(texture))
    z[jm.block_mean(extreme) > 0.25] = 0.0
    want = (jm.block_mean(error), typical, jm.smooth_blocks(z))
    got = ela.ela_blocks(rgb)
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("shape", SHAPES)
def test_noise_features_are_the_whole_image_planes(shape: tuple[int, int]) -> None:
    rgb = photo(shape, seed=shape[1])
    g = rgb.astype(np.float32) @ noise_luma()
    r = np.abs(ndimage.correlate(g, IMMERKAER, mode="reflect"))
    fine = np.asarray(np.median(blocks(r, 16), axis=2) * MAD_TO_SIGMA, dtype=np.float64)
    lo, hi = rgb.min(axis=-1), rgb.max(axis=-1)
    clipped = blocks(((hi >= 250) | (lo <= 3)).astype(np.float32), 16).mean(axis=2)
    got = noise.block_features(rgb)
    h4, w4 = g.shape[0] // 4 * 4, g.shape[1] // 4 * 4
    low = g[:h4, :w4].reshape(h4 // 4, 4, w4 // 4, 4)
    assert np.array_equal(noise._mean4x4(low), low.mean(axis=(1, 3)))
    assert np.array_equal(got["fine"], fine) and got["fine"].dtype == fine.dtype
    assert np.array_equal(got["clipped"], clipped) and got["clipped"].dtype == clipped.dtype
    assert got["clipped"].max() > 0  # the saturated corner is counted
    assert np.array_equal(got["mean"], blocks(g, 16).mean(axis=2) / 255.0)


@pytest.mark.parametrize("shape", SHAPES)
def test_spectrum_pixel_work_is_scipys(shape: tuple[int, int]) -> None:
    gray = luma(photo(shape, seed=3))
    e = np.asarray(gray - ndimage.correlate(gray, spectrum._PREDICTOR, mode="reflect"))
    assert np.array_equal(spectrum.predictor_residual(gray), e)
    # The profiles, from the whole probability map as before.
    p = np.exp(-e * e)
    h, w = p.shape
    b, s = spectrum.BLOCK, spectrum.STEP
    ny, nx = (h - b) // s + 1, (w - b) // s + 1
    strips = p[: (ny + 1) * s].reshape(-1, s, w).sum(axis=1)
    cols = strips[:ny] + strips[1 : ny + 1]
    px = np.stack([cols[:, j * s : j * s + b] for j in range(nx)], axis=1) / b
    bands = p[:, : (nx + 1) * s].reshape(h, -1, s).sum(axis=2)
    rows = bands[:, :nx] + bands[:, 1 : nx + 1]
    py = np.stack([rows[i * s : i * s + b] for i in range(ny)], axis=0).transpose(0, 2, 1) / b
    got_x, got_y = spectrum.block_profiles(e)
    assert np.array_equal(got_x, px) and np.array_equal(got_y, py)
    # The block texture: the box filter's values at the block centres.
    mean = ndimage.uniform_filter(np.abs(e), b, mode="nearest")
    cy = np.minimum(np.arange(ny) * s + b // 2, h - 1)
    cx = np.minimum(np.arange(nx) * s + b // 2, w - 1)
    want = np.asarray(mean[np.ix_(cy, cx)], dtype=np.float64)
    assert np.array_equal(spectrum.block_texture(e, (ny, nx)), want)


def test_spectrum_mean_power_is_the_full_fft() -> None:
    rng = np.random.default_rng(4)
    t = rng.standard_normal((40, 64, 64)).astype(np.float32)
    t -= t.mean(axis=(1, 2), keepdims=True)
    want = (np.abs(np.fft.fft2(t)) ** 2).mean(axis=0)
    got = spectrum._mean_power(t)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)


@pytest.mark.parametrize("shape", [(64, 96), (100, 132), (256, 260)])
def test_watermark_votes_are_the_reference_formula(shape: tuple[int, int]) -> None:
    cv2 = pytest.importorskip("cv2")
    pywt = pytest.importorskip("pywt")
    from forenscope.experts import watermark as wm

    rng = np.random.default_rng(shape[0])
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    for order in wm.ORDERS:
        bgr = np.ascontiguousarray(rgb[..., ::-1] if order == "BGR" else rgb)
        u = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)[: shape[0] // 4 * 4, : shape[1] // 4 * 4, 1]
        ca1, _ = pywt.dwt2(u, "haar")
        assert np.array_equal(wm.haar_approximation(u), ca1)
        nr, nc = ca1.shape[0] // wm.BLOCK, ca1.shape[1] // wm.BLOCK
        b = ca1[: nr * wm.BLOCK, : nc * wm.BLOCK].reshape(nr, wm.BLOCK, nc, wm.BLOCK)
        flat = np.abs(b.transpose(0, 2, 1, 3).reshape(nr * nc, wm.BLOCK * wm.BLOCK)[:, 1:])
        peak = flat[np.arange(flat.shape[0]), np.argmax(flat, axis=1)]
        want = (peak % wm.SCALE) > 0.5 * wm.SCALE
        assert np.array_equal(wm.block_votes(bgr), want)
        assert np.array_equal(wm._votes(rgb, "RGB" if order == "BGR" else "BGR"), want)
