"""Working resolutions (issue 15): tamper maps at most MAP_SIDE on the longer side, the same map
as before for smaller images, and boxes still in image pixels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import fft

from forenscope.experts import _jpeg_math as jm
from forenscope.experts import _signal_math as sm
from forenscope.experts import get_expert
from forenscope.experts._working import MAP_SIDE, map_box_to_image, map_shape, paint_blocks
from forenscope.experts.copy_move import FFT_CROP_ABOVE, fft_friendly
from forenscope.forgeries import Box, make_copy_move, synthetic_photo
from forenscope.io import load_image
from forenscope.types import BBox


@pytest.mark.parametrize("shape", [(300, 517), (77, 90), (MAP_SIDE, 700)])
def test_small_images_keep_their_exact_full_size_painting(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(1)
    b8 = rng.random((shape[0] // 8, shape[1] // 8)).astype(np.float32)
    for phase in ((0, 0), (3, 5)):
        want = jm.upsample_blocks(b8, shape, phase)
        assert np.array_equal(paint_blocks(b8, shape, cell=8, offset=phase), want)
    size, step = 64, 16  # overlapping blocks, as the spectrum expert paints them
    off = (size - step) // 2
    b = rng.random(((shape[0] - size) // step + 1, (shape[1] - size) // step + 1))
    want = sm.upsample_blocks(b.astype(np.float32), size, shape, step=step)
    assert np.array_equal(paint_blocks(b, shape, cell=step, offset=(off, off)), want)


def test_large_images_get_the_area_mean_of_the_full_painting() -> None:
    shape = (3 * MAP_SIDE // 2, 2 * MAP_SIDE)  # map is exactly half size
    rng = np.random.default_rng(2)
    b = rng.random((shape[0] // 8, shape[1] // 8)).astype(np.float32)
    full = jm.upsample_blocks(b, shape, (2, 3))
    small = paint_blocks(b, shape, cell=8, offset=(2, 3))
    assert small.shape == map_shape(shape) == (shape[0] // 2, shape[1] // 2)
    want = full.reshape(shape[0] // 2, 2, shape[1] // 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(small, want, atol=1e-5)


def test_boxes_found_on_the_map_come_back_in_image_pixels() -> None:
    box = BBox(x=10, y=20, width=30, height=40)
    assert map_box_to_image(box, (768, 1024), (768, 1024)) == box
    assert map_box_to_image(box, (768, 1024), (3072, 4096)) == BBox(
        x=40, y=80, width=120, height=160
    )


def test_fft_crop_only_above_the_threshold_and_to_fast_sides() -> None:
    small = np.zeros((997, 1009), np.float32)  # both prime, but under the threshold
    assert small.size <= FFT_CROP_ABOVE and fft_friendly(small) is small
    big = np.zeros((1201, 1697), np.float32)  # 1201 and 1697 are prime
    crop = fft_friendly(big)
    assert crop.shape[0] <= 1201 and crop.shape[1] <= 1697
    assert crop.shape[0] >= 1190 and crop.shape[1] >= 1680  # a strip of about 1% only
    for n in crop.shape:
        assert fft.next_fast_len(n) == n


def test_copy_move_on_a_large_prime_sized_image_maps_at_working_size() -> None:
    base = synthetic_photo(1201, 1697, seed=3)
    forgery = make_copy_move(base, Box(200, 150, 220, 180), (1100, 800))
    result = get_expert("copy_move").analyze(load_image(forgery.data))
    assert result.heatmap is not None and result.heatmap.shape == map_shape((1201, 1697))
    assert result.score is not None and result.score >= 0.5
    boxes = [e.bbox for e in result.evidence if e.bbox is not None]
    assert boxes, [e.summary for e in result.evidence]
    # Either side of the pair (source or pasted copy), in image pixels.
    found = boxes[0]
    near = [abs(found.x - x) <= 16 and abs(found.y - y) <= 16 for x, y in ((200, 150), (1100, 800))]
    assert any(near), found


def test_learned_localizer_boxes_are_in_image_pixels() -> None:
    pytest.importorskip("scipy")
    base = synthetic_photo(1100, 1500, seed=4)
    forgery = make_copy_move(base, Box(100, 100, 300, 300), (1000, 600))
    image = load_image(forgery.data)
    result = get_expert("learned_localizer").analyze(image)
    assert result.heatmap is not None and result.heatmap.shape == map_shape((1100, 1500))
    for e in result.evidence:
        if e.bbox is not None:
            assert e.bbox.x + e.bbox.width <= 1500 + 16 and e.bbox.y + e.bbox.height <= 1100 + 16
