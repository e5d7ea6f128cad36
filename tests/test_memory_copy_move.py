"""copy_move's strip-by-strip planes (issue 15, memory) give the bits of the whole-image ones."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from scipy import fft, ndimage

from forenscope.experts import copy_move as cm
from forenscope.experts._signal_math import wrap_max_filter
from forenscope.forgeries import Box, make_copy_move, synthetic_photo
from forenscope.io import load_image


def _gray(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(rng.standard_normal(shape), axis=1) * 3 + 128
    return np.asarray(smooth + rng.standard_normal(shape) * 10, dtype=np.float32)


@pytest.mark.parametrize("strip_bytes", [1 << 20, 4096, 1])
@pytest.mark.parametrize("shape", [(64, 64), (203, 317), (333, 90)])
def test_signals_are_the_whole_image_formulas(
    monkeypatch: pytest.MonkeyPatch, strip_bytes: int, shape: tuple[int, int]
) -> None:
    monkeypatch.setattr(cm, "STRIP_BYTES", strip_bytes)  # one strip, a few, one row each
    gray = _gray(shape, 1)
    sig = cm.Signals.of(gray)
    hp = cm.highpass(gray)
    assert np.array_equal(sig.hp2, hp * hp)
    assert np.array_equal(sig.norm, cm.contrast_normalised(hp))
    assert sig.gray is gray


@pytest.mark.parametrize("size", [5, 15])
def test_uniform_filter_strips_cover_the_rows_in_order(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(cm, "STRIP_BYTES", 4 * 50 * 7)  # 7 rows of 50 float32
    a = _gray((40, 50), 2)
    strips = list(cm.uniform_filter_strips(a, size))
    assert [(top, stop) for top, stop, _ in strips] == [
        (t, min(t + 7, 40)) for t in range(0, 40, 7)
    ]
    want = ndimage.uniform_filter(a, size)
    assert np.array_equal(np.concatenate([s for _, _, s in strips]), want)


@pytest.mark.parametrize("strip_bytes", [16 << 20, 4 * 61 * 40, 1])
def test_local_maxima_and_their_refresh_match_the_max_filter(
    monkeypatch: pytest.MonkeyPatch, strip_bytes: int
) -> None:
    monkeypatch.setattr(cm, "MAX_STRIP_BYTES", strip_bytes)
    rng = np.random.default_rng(3)
    corr = rng.standard_normal((157, 61)).astype(np.float32)
    corr[::7, ::5] = 0.0  # plateaus and ties
    cm._zero_short(corr, cm.ALT_MIN_SHIFT)
    local = cm.local_maxima(corr, cm.PEAK_WINDOW)
    assert np.array_equal(local, (corr >= wrap_max_filter(corr, cm.PEAK_WINDOW)) & (corr > 0))
    cm._refresh_local(corr, local, cm._zero_short(corr, cm.MIN_SHIFT) - 1)
    assert np.array_equal(local, (corr >= wrap_max_filter(corr, cm.PEAK_WINDOW)) & (corr > 0))


def test_find_pairs_searches_are_top_peaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """find_pairs' two searches pick the candidates two top_peaks calls pick."""
    gray = _gray((256, 320), 4)
    gray[150:200, 200:260] = gray[30:80, 40:100]  # a copy
    sig = cm.Signals.of(gray)
    corr = cm.whitened_autocorr(cm.fft_friendly(sig.norm))
    h, w = corr.shape
    first = cm.top_peaks(corr.copy(), cm.ALT_MIN_SHIFT, cm.N_ALT_PEAKS)
    seen: list[list[tuple[int, int, float]]] = []
    pick = cm._pick

    def spy(*args: object) -> list[tuple[int, int, float]]:
        out = pick(*args)  # type: ignore[arg-type]
        seen.append(out)
        return out

    monkeypatch.setattr(cm, "_pick", spy)
    cm.find_pairs(sig)
    assert seen[0] == first
    basis = cm.lattice_basis([cm.signed(y, x, h, w) for y, x, _ in first])
    n = cm.N_PEAKS if basis is None else cm.N_PEAKS_LATTICE
    copy = corr.copy()
    cm.top_peaks(copy, cm.ALT_MIN_SHIFT, cm.N_ALT_PEAKS)

    def repeat(yx: tuple[int, int]) -> bool:
        return basis is not None and cm.on_lattice(cm.signed(yx[0], yx[1], h, w), basis)

    assert seen[1] == cm.top_peaks(copy, cm.MIN_SHIFT, n, repeat)


def _plain_autocorr(hp: np.ndarray) -> np.ndarray:
    """The whitened autocorrelation as first written (numpy elides its conj temporary)."""
    spec = fft.rfft2(hp, workers=1)
    magnitude = np.abs(spec)
    magnitude += 1e-3
    power = spec * np.conj(spec)
    del spec
    np.divide(power, magnitude, out=power)
    return np.asarray(fft.irfft2(power, s=hp.shape, workers=1))


@pytest.mark.parametrize("strip_bytes", [1 << 20, 16384, 5000])
@pytest.mark.parametrize("shape", [(64, 64), (100, 300), (640, 480), (301, 259), (768, 1024)])
def test_whitened_autocorr_strips_are_the_whole_spectrum(
    monkeypatch: pytest.MonkeyPatch, strip_bytes: int, shape: tuple[int, int]
) -> None:
    monkeypatch.setattr(cm, "STRIP_BYTES", strip_bytes)
    hp = cm.Signals.of(_gray(shape, 5)).norm
    assert np.array_equal(cm.whitened_autocorr(hp), _plain_autocorr(hp))


@pytest.mark.parametrize("strip_bytes", [1 << 20, 5000, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "shape", [(1, 8), (8, 1), (3, 5), (64, 64), (97, 101), (301, 259), (13, 1031), (1000, 1500)]
)
def test_irfft2_over_is_irfft2(
    monkeypatch: pytest.MonkeyPatch, strip_bytes: int, dtype: type, shape: tuple[int, int]
) -> None:
    monkeypatch.setattr(cm, "STRIP_BYTES", strip_bytes)
    x: np.ndarray = np.random.default_rng(6).standard_normal(shape).astype(dtype)
    spec = fft.rfft2(x, workers=1)
    want = fft.irfft2(spec, s=shape, workers=1)
    got = cm.irfft2_over(spec, shape)
    assert got.dtype == want.dtype and np.array_equal(got, want)


@pytest.mark.parametrize("strip_bytes", [1 << 20, 4096, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (129,), (3, 1000), (301, 259), (1000, 1000)])
def test_plane_std_is_numpy_std(
    monkeypatch: pytest.MonkeyPatch, strip_bytes: int, dtype: type, shape: tuple[int, ...]
) -> None:
    monkeypatch.setattr(cm, "STRIP_BYTES", strip_bytes)
    rng = np.random.default_rng(7)
    for offset in (0.0, 3.7, -1e3):
        a: np.ndarray = (rng.standard_normal(shape) * 5 + offset).astype(dtype)
        assert cm.plane_std(a) == float(a.std())
    strided = a[..., ::2]  # not contiguous: numpy's own std
    assert cm.plane_std(strided) == float(strided.std())


def test_plane_std_keeps_no_reference_to_its_array() -> None:
    """No reference cycle: `corr` goes as soon as find_pairs drops it, not at the next GC."""
    gc.disable()
    try:
        a = np.random.default_rng(8).standard_normal((300, 400)).astype(np.float32)
        ref = weakref.ref(a)
        cm.plane_std(a)
        del a
        assert ref() is None
    finally:
        gc.enable()


def test_dropped_hp2_is_made_again_bit_for_bit() -> None:
    gray = _gray((203, 317), 9)
    sig = cm.Signals.of(gray)
    hp2 = sig.hp2
    assert np.array_equal(cm.highpass_energy(gray), hp2)
    sig.drop_hp2()
    assert "hp2" not in sig.planes
    assert np.array_equal(sig.hp2, hp2)


def test_find_pairs_is_the_same_with_hp2_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    forgery = make_copy_move(synthetic_photo(), Box(60, 60, 150, 120), (381, 300))
    gray = load_image(forgery.data).gray
    kept = cm.find_pairs(cm.Signals.of(gray))
    monkeypatch.setattr(cm, "DROP_HP2_ABOVE", 0)
    dropped = cm.find_pairs(cm.Signals.of(gray))
    assert kept[0] and kept[0] == dropped[0] and kept[2] == dropped[2]
    assert np.array_equal(kept[1], dropped[1])
