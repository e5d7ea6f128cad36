"""Localization at the working size (issue 15): a large image's mask is cleaned and split into
regions at the working size and only the final mask is upsampled; small images are unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from forenscope.fusion import maps
from forenscope.fusion.localize import localize
from forenscope.fusion.verdict import fuse
from forenscope.map_geometry import resize_map, working_size
from test_localize import with_map

BIG = (1500, 2600)  # working size 591 x 1024


def blob(shape: tuple[int, int], box: tuple[int, int, int, int], value: float = 0.9) -> np.ndarray:
    """A map of `shape` at `value` inside box (y0, x0, y1, x1), 0 elsewhere."""
    m = np.zeros(shape, dtype=np.float32)
    m[box[0] : box[2], box[1] : box[3]] = value
    return m


def test_large_mask_is_at_image_size_and_regions_describe_it() -> None:
    truth = blob(BIG, (300, 500, 900, 1700))
    mask, regions = localize(truth, results=[with_map("ela", truth)])
    assert mask.shape == BIG and mask.dtype == bool
    assert len(regions) == 1
    box = regions[0].bbox
    ys, xs = np.nonzero(mask)
    # The box and the area are those of the upsampled mask, in image pixels.
    assert (box.y, box.x, box.y + box.height, box.x + box.width) == (
        ys.min(),
        xs.min(),
        ys.max() + 1,
        xs.max() + 1,
    )
    assert regions[0].area_share == pytest.approx(mask.mean(), rel=1e-9)
    # Within a working pixel or two of the drawn box.
    assert abs(box.y - 300) <= 3 and abs(box.x - 500) <= 3
    assert abs(box.y + box.height - 900) <= 3 and abs(box.x + box.width - 1700) <= 3
    inter = (mask & (truth > 0)).sum()
    assert inter / (mask | (truth > 0)).sum() > 0.98
    assert regions[0].experts == ["ela"]


def test_working_size_map_with_image_shape_gives_the_image_sized_mask() -> None:
    work_shape = working_size(*BIG)
    work = blob(work_shape, (100, 200, 300, 600))
    mask, regions = localize(work, results=[], shape=BIG)
    assert mask.shape == BIG
    assert len(regions) == 1
    assert regions[0].bbox_relative == pytest.approx(
        (200 / work_shape[1], 100 / work_shape[0], 400 / work_shape[1], 200 / work_shape[0]),
        abs=2e-3,
    )


def test_small_images_are_localized_at_full_size_as_before() -> None:
    shape = (600, 1000)  # within the working side: nothing is resized
    heat = blob(shape, (101, 203, 257, 411)) + blob(shape, (400, 700, 420, 990), 0.7)
    heat[120:130, 250:260] = 0.0  # a hole the cleaning fills
    mask, regions = localize(heat, results=[])
    again, regions_with_shape = localize(heat, results=[], shape=shape)
    assert np.array_equal(mask, again) and regions == regions_with_shape
    assert mask.shape == shape
    assert mask[101:257, 203:411].all() and mask.sum() == 156 * 208 + 20 * 290
    assert [(r.bbox.x, r.bbox.y, r.bbox.width, r.bbox.height) for r in regions] == [
        (203, 101, 208, 156),
        (700, 400, 290, 20),
    ]
    assert regions[0].area_share == 156 * 208 / (600 * 1000)


def test_fuse_localizes_the_working_map_and_returns_image_sized_outputs() -> None:
    work_shape = working_size(*BIG)
    results = [with_map("ela", blob(work_shape, (100, 200, 300, 600)))]
    fused = fuse(results, height=BIG[0], width=BIG[1])
    assert fused.heatmap is not None and fused.heatmap.shape == BIG
    assert fused.mask is not None and fused.mask.shape == BIG
    work = maps.fused_work_map(results, height=BIG[0], width=BIG[1])
    assert work is not None and work.shape == work_shape
    image_map = maps.fuse_heatmaps(results, height=BIG[0], width=BIG[1])
    assert image_map is not None and np.array_equal(fused.heatmap, image_map)
    assert fused.regions == localize(work, results=results, shape=BIG)[1]
    assert len(fused.regions) == 1


@pytest.mark.parametrize("value", [0.0, 0.3, 1.0])
def test_shape_test_fast_path_matches_the_clipped_resize(value: float) -> None:
    heat = blob(BIG, (300, 500, 900, 1700), 0.9) + np.float32(value) * 0.1
    unit = np.clip(heat, 0.0, 1.0)
    odd = heat.copy()
    odd[0, 0] = np.nan
    odd[1, 1] = 3.0
    for h in (unit, odd):
        expected = resize_map(
            np.clip(np.nan_to_num(h.astype(np.float32)), 0.0, 1.0), *working_size(*BIG, 512)
        )
        assert np.array_equal(maps._shrink_unit(h, *working_size(*BIG, 512)), expected)
