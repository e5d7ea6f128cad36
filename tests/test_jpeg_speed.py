"""The fast paths of jpeg_artifacts (issue 15) give bit-identical results to the plain
whole-image expressions they replace: strips, block-level labelling, the comparison median and
the percentile of robust z-scores."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from forenscope.experts import _jpeg_math as jm
from forenscope.experts import jpeg_artifacts as ja


@pytest.fixture(autouse=True)
def small_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strips of a few block rows, so that the small test images span many strips."""
    monkeypatch.setattr(jm, "STRIP_BYTES", 1 << 12)
    monkeypatch.setattr(ja, "RESAVE_STRIP_ROWS", 24)


def _gray(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A float32 luma with texture, flat patches and clipped pixels, once saved as JPEG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    g = 128 + 60 * np.sin(x / 7.0) * np.cos(y / 11.0) + rng.normal(0, 6, (h, w))
    g[: h // 4, : w // 3] = 255.0
    g[-h // 5 :, -w // 4 :] = 3.0
    buf = io.BytesIO()
    Image.fromarray(np.clip(g, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=70)
    once = np.asarray(Image.open(buf), dtype=np.float32)
    return once + rng.normal(0, 0.3, (h, w)).astype(np.float32)  # off-integer, as luma is


SHAPES = [(64, 64), (101, 203), (203, 101), (77, 150)]


def _block_sums_plain(values: np.ndarray, phase: tuple[int, int]) -> np.ndarray:
    g = np.asarray(values[phase[0] :, phase[1] :], dtype=np.float32)
    bh, bw = g.shape[0] // 8, g.shape[1] // 8
    b = g[: bh * 8, : bw * 8].reshape(bh, 8, bw, 8)
    return np.asarray(b.sum(axis=3).sum(axis=1), dtype=np.float32)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("phase", [(0, 0), (3, 5)])
def test_block_mean_and_var_match_the_block_sums(
    shape: tuple[int, int], phase: tuple[int, int]
) -> None:
    g = _gray(*shape) - 128.0
    mean = _block_sums_plain(g, phase) / 64.0
    sq = _block_sums_plain(np.square(g, dtype=np.float32), phase) / 64.0
    assert np.array_equal(jm.block_mean(g, phase), mean)
    assert np.array_equal(jm.block_var(g, phase), np.maximum(sq - mean**2, 0.0))
    assert np.array_equal(jm.block_mean(g.astype(np.float64), phase), mean)


@pytest.mark.parametrize("shape", SHAPES)
def test_grid_profile_matches_whole_image_expressions(shape: tuple[int, int]) -> None:
    gray = _gray(*shape)
    g = gray.astype(np.float64)
    dh, dv = np.abs(np.diff(g, axis=1)), np.abs(np.diff(g, axis=0))
    eh = np.clip(dh[:, 1:-1] - 0.5 * (dh[:, :-2] + dh[:, 2:]), 0, None).mean(axis=0)
    ev = np.clip(dv[1:-1, :] - 0.5 * (dv[:-2, :] + dv[2:, :]), 0, None).mean(axis=1)
    got_h, got_v = jm._boundary_steps(gray)
    assert np.array_equal(got_h, eh) and np.array_equal(got_v, ev)


@pytest.mark.parametrize("shape", SHAPES)
def test_local_grid_profiles_match_whole_image_expressions(shape: tuple[int, int]) -> None:
    g = _gray(*shape)
    h, w = g.shape
    dh, dv = np.abs(np.diff(g, axis=1)), np.abs(np.diff(g, axis=0))
    eh, ev = np.zeros_like(g), np.zeros_like(g)
    eh[:, 2:-1] = np.clip(dh[:, 1:-1] - 0.5 * (dh[:, :-2] + dh[:, 2:]), 0, 2.0)
    ev[2:-1, :] = np.clip(dv[1:-1, :] - 0.5 * (dv[:-2, :] + dv[2:, :]), 0, 2.0)
    bh, bw = h // 8, w // 8
    pc = eh[: bh * 8, : bw * 8].reshape(bh, 8, bw, 8).sum(axis=1)
    pr = ev[: bh * 8, : bw * 8].reshape(bh, 8, bw, 8).sum(axis=3).transpose(0, 2, 1)
    want = []
    for p in (pr, pc):
        p = ndimage.uniform_filter(p, size=(5, 5, 1), mode="nearest")
        want.append(p / np.maximum(p.mean(axis=-1, keepdims=True), 1e-3))
    got = jm.local_grid_profiles(g)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("phase", [(0, 0), (5, 2)])
@pytest.mark.parametrize("table", [None, [int(v) for v in jm.ijg_table(80)]])
def test_rounded_ac_matches_the_whole_image_dct(
    phase: tuple[int, int], table: list[int] | None
) -> None:
    g = _gray(101, 203)
    coef = jm.block_dct(g, phase)
    if table is not None:
        coef = coef / np.asarray(table, np.float64).reshape(8, 8)
    got = jm.rounded_ac(g, phase, table)
    for plane, (u, v) in zip(got, jm.ZIGZAG_AC, strict=True):
        assert np.array_equal(plane, np.round(coef[:, :, u, v]))
    llr, periods = jm.dq_block_llr(coef)
    llr2, periods2 = jm.dq_block_llr_rounded(got)
    assert periods == periods2 and np.array_equal(llr, llr2)


@pytest.mark.parametrize("phase", [(0, 0), (3, 6)])
def test_resave_in_strips_equals_whole_resave(phase: tuple[int, int]) -> None:
    gray = _gray(203, 101, seed=1)
    g8 = np.clip(np.round(gray), 0, 255).astype(np.uint8)
    qualities = [40, 65, 90]
    want = [jm.block_var(jm.recompress(g8, q, phase) - gray, phase) for q in qualities]
    got = ja._resave_block_var(gray, qualities, phase)
    assert np.array_equal(got, np.stack(want))


def test_clipped_blocks_match_block_mean_of_the_mask() -> None:
    g = _gray(101, 203)
    extreme = np.asarray((g < 0.5) | (g > 254.5), dtype=np.float32)
    for phase in [(0, 0), (1, 7)]:
        want = jm.block_mean(extreme, phase) > 0
        got = ja._clipped_blocks(g, phase)
        assert want.any() and np.array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_median3x3_is_scipys_median_filter(dtype: type) -> None:
    rng = np.random.default_rng(4)
    for h, w in [(1, 1), (1, 7), (5, 1), (3, 3), (20, 31)]:
        x: np.ndarray = rng.integers(0, 4, (h, w)).astype(dtype)  # many ties
        y: np.ndarray = (rng.normal(size=(h, w)) * 50).astype(dtype)
        for v in (x, y):
            want = ndimage.median_filter(v, size=3, mode="nearest")
            got = jm.median3x3(v)
            assert got.dtype == want.dtype and np.array_equal(got, want)


def test_hot_bbox_blocks_equals_hot_bbox_of_the_painted_map() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        bh, bw = (int(v) for v in rng.integers(1, 10, 2))
        dy, dx = (int(v) for v in rng.integers(0, 8, 2))
        h = max(1, dy + 8 * bh + int(rng.integers(-9, 12)))
        w = max(1, dx + 8 * bw + int(rng.integers(-9, 12)))
        m = rng.random((bh, bw)) ** rng.uniform(0.3, 3)
        want = jm.hot_bbox(jm.upsample_blocks(m, (h, w), (dy, dx)))
        assert jm.hot_bbox_blocks(m, (h, w), (dy, dx)) == want
    # A value that is below 0.5 in float64 but rounds to 0.5 in the painted float32 map.
    m = np.array([[0.0, 0.49999999], [0.0, 0.0]])
    assert jm.hot_bbox_blocks(m, (16, 16)) == jm.hot_bbox(jm.upsample_blocks(m, (16, 16)))


def test_robust_z_percentile_is_the_percentile_of_robust_z() -> None:
    rng = np.random.default_rng(6)
    for n in [1, 2, 7, 8, 9, 100, 1001, 5000]:
        for x in (rng.normal(size=n), rng.integers(0, 3, n).astype(float), rng.lognormal(0, 3, n)):
            for v in (x.astype(np.float32), x, x.astype(np.float32).reshape(1, n)):
                for q in (99, 97, 50):
                    want = float(np.percentile(jm.robust_z(v), q))
                    assert jm.robust_z_percentile(v, q) == want


@pytest.mark.parametrize("shape", [(203, 101), (64, 77), (250, 130)])
@pytest.mark.parametrize("phase", [(0, 0), (3, 6), (7, 1)])
def test_squared_error_of_strip_resave_equals_whole_resave(
    shape: tuple[int, int], phase: tuple[int, int]
) -> None:
    gray = _gray(*shape, seed=2)
    g8 = np.clip(np.round(gray), 0, 255).astype(np.uint8)
    for quality in (45, 75):
        want = jm.block_mean((jm.recompress(g8, quality, phase) - gray) ** 2)
        assert np.array_equal(ja._resave_squared_error(gray, quality, phase), want)
    wide = gray.astype(np.float64)  # a float64 image keeps float64 differences
    want = jm.block_mean((jm.recompress(g8, 55, phase) - wide) ** 2)
    assert np.array_equal(ja._resave_squared_error(wide, 55, phase), want)


def _llr_per_block(coef: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """dq_block_llr as first written: every expression evaluated per block."""
    llr = np.zeros(coef.shape[:2], np.float64)
    periods = []
    for u, v in jm.ZIGZAG_AC:
        x = np.round(coef[:, :, u, v]).astype(np.int64)
        p, _ = jm.histogram_period(x)
        if p < 2:
            continue
        periods.append(p)
        lo = int(x.min())
        h = np.bincount((x - lo).ravel()).astype(np.float64)
        centre = p * np.round(x / p)
        start = (centre - p // 2 - lo).astype(np.int64)
        csum = np.concatenate([[0.0], np.cumsum(h)])
        window = csum[np.clip(start + p, 0, h.size)] - csum[np.clip(start, 0, h.size)]
        p_ok = (h[x - lo] + 0.5) / (window + 0.5 * p)
        contrib = np.log(1.0 / p) - np.log(np.minimum(p_ok, 1.0))
        llr += np.where(np.abs(centre) > 0, contrib, 0.0)
    return llr, periods


@pytest.mark.parametrize("table", [None, [int(v) for v in jm.ijg_table(85)]])
def test_llr_looked_up_per_bin_equals_llr_per_block(table: list[int] | None) -> None:
    g = _gray(160, 240, seed=3)
    coef = jm.block_dct(g)
    if table is not None:
        coef = coef / np.asarray(table, np.float64).reshape(8, 8)
    want, periods = _llr_per_block(coef)
    got, got_periods = jm.dq_block_llr_rounded(jm.rounded_ac(g, table=table))
    assert periods and got_periods == periods
    assert np.array_equal(got, want)


def test_sorted_statistics_equal_numpys() -> None:
    rng = np.random.default_rng(7)
    for n in [1, 2, 3, 10, 101]:
        for x in (rng.normal(size=n), rng.integers(0, 4, n), rng.random(n).astype(np.float32)):
            assert jm.median(x) == float(np.median(x))
            if x.dtype.kind == "f":
                want = float(np.percentile(x, 97) - np.median(x))
                assert jm.percentile_minus_median(x, 97) == want
    assert np.isnan(jm.median(np.array([1.0, np.nan, 2.0])))
