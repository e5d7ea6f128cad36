"""Fusion speed-ups (issue 15) against the expressions they replace: the same masks, labels,
maps, regions and expert lists, bit for bit."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from scipy import ndimage

from forenscope.fusion import maps
from forenscope.fusion.verdict import fuse
from forenscope.map_geometry import resize_map, working_size
from forenscope.types import ExpertResult, Target

# The module, not the function that forenscope.fusion re-exports under the same name.
loc = importlib.import_module("forenscope.fusion.localize")
EIGHT = np.ones((3, 3), dtype=bool)


def old_clean_mask(mask: np.ndarray, *, min_area_share: float = 0.001) -> np.ndarray:
    """clean_mask as it was: four whole-mask filters, binary_fill_holes, drop small parts."""
    height, width = mask.shape
    radius = max(1, round(min(height, width) / 256))
    size = 2 * radius + 1
    grey = np.asarray(mask, dtype=np.uint8)
    opened = ndimage.maximum_filter(
        ndimage.minimum_filter(grey, size, mode="nearest"), size, mode="nearest"
    )
    closed = ndimage.minimum_filter(
        ndimage.maximum_filter(opened, size, mode="nearest"), size, mode="nearest"
    )
    cleaned = ndimage.binary_fill_holes(closed.astype(bool))
    labels, count = ndimage.label(cleaned, structure=EIGHT)
    if count == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= max(1.0, min_area_share * height * width)
    keep[0] = False
    return np.asarray(keep[labels], dtype=bool)


def blobby(shape: tuple[int, int], seed: int, blobs: int = 8, specks: float = 0.003) -> np.ndarray:
    """Rectangles (some with holes, some at the border) and specks."""
    rng = np.random.default_rng(seed)
    h, w = shape
    m = np.zeros(shape, dtype=bool)
    for _ in range(blobs):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        dy, dx = int(rng.integers(1, max(2, h // 3))), int(rng.integers(1, max(2, w // 3)))
        m[y : y + dy, x : x + dx] = True
        if rng.random() < 0.5:
            m[y + dy // 3 : y + dy // 2 + 1, x + dx // 3 : x + dx // 2 + 1] = False
    m |= rng.random(shape) < specks
    return m


SHAPES = [(1, 9), (5, 7), (32, 32), (97, 203), (300, 200), (683, 1024), (768, 1024), (900, 1000)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", range(4))
def test_clean_mask_and_labels_match_the_whole_mask_filters(
    shape: tuple[int, int], seed: int
) -> None:
    density = [0.0, 0.003, 0.05, 0.5][seed]
    for blobs in (0, 1, 3, 12):
        mask = blobby(shape, seed * 31 + blobs, blobs, density)
        expected = old_clean_mask(mask)
        assert np.array_equal(loc.clean_mask(mask), expected)
        labels, count = loc.clean_labels(mask)
        ref_labels, ref_count = ndimage.label(expected, structure=EIGHT)
        assert count == ref_count
        assert labels.dtype == ref_labels.dtype and np.array_equal(labels, ref_labels)


@pytest.mark.parametrize("shape", SHAPES)
def test_fill_holes_matches_binary_fill_holes(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(shape[0])
    for density in (0.0, 0.2, 0.5, 0.8, 1.0):
        mask = rng.random(shape) < density
        assert np.array_equal(loc.fill_holes(mask), ndimage.binary_fill_holes(mask))
    ring = np.zeros(shape, dtype=bool)
    ring[1:-1, 1:-1] = True
    ring[2:-2, 2:-2] = False  # a hole when the map is large enough to have one
    assert np.array_equal(loc.fill_holes(ring), ndimage.binary_fill_holes(ring))


def odd_maps(shape: tuple[int, int]) -> list[np.ndarray]:
    """Maps as experts may draw them: in [0, 1], with NaN/inf/out-of-range values, float64."""
    rng = np.random.default_rng(7)
    unit = rng.random(shape, dtype=np.float32) ** 3
    odd = unit.copy()
    odd[0, 0], odd[1, 1], odd[2, 2], odd[3, 3] = np.nan, np.inf, -np.inf, 2.5
    flat = np.zeros(shape, dtype=np.float32)
    flat[4, 4] = -0.0
    return [unit, odd, unit.astype(np.float64) * 1.5, flat, np.full(shape, 1.0, np.float32)]


@pytest.mark.parametrize("shape", [(60, 80), (683, 1024)])
def test_normalised_at_equals_both_orders_of_resize_and_normalise(shape: tuple[int, int]) -> None:
    for m in odd_maps(shape):
        shared = loc.normalised_at([tamper("ela", m)], *shape)["ela"]
        fusion_order = loc.normalise_map(resize_map(m, *shape))
        region_order = resize_map(loc.normalise_map(m), *shape)
        assert shared.dtype == np.float32
        assert shared.tobytes() == fusion_order.tobytes() == region_order.tobytes()
        assert (
            loc.unit_map(loc.at_size(m, *shape)).tobytes()
            == loc.unit_map(resize_map(m, *shape)).tobytes()
        )
    assert loc.normalised_at([tamper("ela", odd_maps((30, 40))[0])], *shape) == {}


def tamper(
    name: str, heatmap: np.ndarray, score: float = 0.8, targets: Target = "tampered"
) -> ExpertResult:
    return ExpertResult(
        expert=name, version="0", targets=targets, score=score, heatmap=heatmap, has_heatmap=True
    )


def old_agreeing(maps_: dict[str, np.ndarray], component: np.ndarray) -> list[str]:
    agreeing: list[tuple[float, str]] = []
    outside = ~component
    for name, emap in maps_.items():
        inside_mean = float(emap[component].mean())
        outside_mean = float(emap[outside].mean()) if outside.any() else 0.0
        if inside_mean >= loc.EXPERT_AGREE_LEVEL and inside_mean >= 1.5 * outside_mean:
            agreeing.append((inside_mean, name))
    return [name for _, name in sorted(agreeing, key=lambda t: (-t[0], t[1]))]


def test_agreeing_experts_on_the_box_match_the_whole_map() -> None:
    rng = np.random.default_rng(3)
    shape = (300, 400)
    labels, count = ndimage.label(blobby(shape, 5, 10, 0.0), structure=EIGHT)
    emaps = {f"e{i}": rng.random(shape, dtype=np.float32) ** (i / 3 + 0.2) for i in range(6)}
    for i, box in enumerate(ndimage.find_objects(labels)):
        component = labels == i + 1
        for name in emaps:  # make some experts agree
            if rng.random() < 0.4:
                emaps[name][component] = rng.uniform(0.3, 1.0)
        assert loc._agreeing_experts(emaps, labels, i + 1, box) == old_agreeing(emaps, component)
    whole = np.ones(shape, dtype=np.int32)
    full = (slice(0, shape[0]), slice(0, shape[1]))
    assert loc._agreeing_experts(emaps, whole, 1, full) == old_agreeing(emaps, whole == 1)


BIG = (1500, 2600)


def case(shape: tuple[int, int], seed: int) -> list[ExpertResult]:
    """Tamper maps at the working size (shared) and at another size (resized), an AI map."""
    work = working_size(*shape)
    rng = np.random.default_rng(seed)
    blobs = blobby(work, seed, 6, 0.002).astype(np.float32) * 0.9
    other = resize_map(blobs, work[0] // 2 + 1, work[1] // 3 + 2)
    noise = (rng.random(work, dtype=np.float32) * 0.3).astype(np.float32)
    return [
        tamper("ela", blobs + noise * 0.2, 0.9),
        tamper("noise", np.clip(other, 0, 1), 0.7),
        tamper("spectrum", noise, 0.6, targets="both"),
        tamper("clip_detector", blobs * 0.8, 0.4, targets="ai_generated"),
    ]


@pytest.mark.parametrize("shape", [(200, 300), (864, 1152), BIG])
@pytest.mark.parametrize("seed", range(3))
def test_shared_normalised_maps_change_nothing(shape: tuple[int, int], seed: int) -> None:
    results = case(shape, seed)
    h, w = shape
    shared = maps.shared_normalised(results, h, w)
    assert set(shared) == {"ela", "spectrum"}  # at the working size and tamper targets
    work = maps.fused_work_map(results, height=h, width=w, normalised=shared)
    plain = maps.fused_work_map(results, height=h, width=w)
    assert work is not None and plain is not None and work.tobytes() == plain.tobytes()
    mask, regions = loc.localize(work, results=results, shape=shape, normalised=shared)
    mask2, regions2 = loc.localize(work, results=results, shape=shape)
    assert np.array_equal(mask, mask2) and regions == regions2
    assert regions  # the case has regions to describe
    fused = fuse(results, height=h, width=w)
    assert fused.mask is not None and np.array_equal(fused.mask, mask)
    assert fused.regions == regions


@pytest.mark.parametrize("shape", [(200, 300), BIG, (1001, 3000)])
def test_mask_upsampling_matches_fancy_indexing(shape: tuple[int, int]) -> None:
    h, w = shape
    work_h, work_w = working_size(h, w)
    heat = blobby((work_h, work_w), 11, 12, 0.0).astype(np.float32)
    mask, regions = loc.localize(heat, results=[], shape=shape, max_regions=3)
    labels, count = ndimage.label(old_clean_mask(heat >= 0.5), structure=EIGHT)
    means = np.asarray(ndimage.mean(heat, labels=labels, index=np.arange(1, count + 1)))
    kept = np.zeros(count + 1, dtype=bool)
    kept[1 + np.argsort(-means, kind="stable")[:3]] = True
    rows, cols = loc._nearest_lines(h, work_h), loc._nearest_lines(w, work_w)
    expected = kept[labels] if (h, w) == (work_h, work_w) else kept[labels][rows][:, cols]
    assert len(regions) == min(3, count) and np.array_equal(mask, expected)


def test_percentile_fast_path_matches_numpy() -> None:
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 4, 5, 10, 11, 1000, 1001):
        for zeros in sorted({0, n // 2 - 1, n // 2, n // 2 + 1, n - 1, n}):
            if not 0 <= zeros <= n:
                continue
            values = rng.random(n, dtype=np.float32)
            values[rng.permutation(n)[:zeros]] = 0.0
            for sample in (values, values.reshape(1, n)):
                got = loc.percentile(sample, 50.0)
                want = float(np.percentile(sample, 50.0))
                assert got == want and np.signbit(got) == np.signbit(want)
            negative_zero = values.copy()
            negative_zero[negative_zero == 0.0] = -0.0  # the fast path steps aside
            want = float(np.percentile(negative_zero, 50.0))
            got = loc.percentile(negative_zero, 50.0)
            assert got == want and np.signbit(got) == np.signbit(want)
            assert loc.percentile(values, 99.0) == float(np.percentile(values, 99.0))
