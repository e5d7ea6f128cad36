"""Helpers shared by the JPEG and ELA expert tests: base images and JPEG-region forgeries."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from forenscope.forgeries import Box, example_photo, synthetic_photo


# Named fixtures, so the test modules can import them without shadowing their arguments.
@pytest.fixture(scope="module", name="photo")
def photo_fixture() -> np.ndarray:
    return example_photo()


@pytest.fixture(scope="module", name="synth")
def synth_fixture() -> np.ndarray:
    return synthetic_photo()


def rel_box(base: np.ndarray, rel: tuple[float, float, float, float]) -> Box:
    """A box given as fractions (x, y, width, height) of the image size."""
    h, w = base.shape[:2]
    return Box(int(rel[0] * w), int(rel[1] * h), int(rel[2] * w), int(rel[3] * h))


def jpeg_bytes(rgb: np.ndarray, quality: int, subsampling: int = 2) -> bytes:
    """JPEG with a chosen chroma subsampling (0 = 4:4:4, 2 = 4:2:0)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


def jpeg_region(
    base: np.ndarray,
    box: Box,
    region_quality: int,
    *,
    final_quality: int = 92,
    shift: tuple[int, int] = (0, 0),
    subsampling: int = 2,
) -> bytes:
    """`forgeries.make_jpeg_region` with both saves at a chosen chroma subsampling."""
    sx, sy = shift
    rolled = np.roll(base, (sy, sx), axis=(0, 1))
    with Image.open(io.BytesIO(jpeg_bytes(rolled, region_quality, subsampling))) as im:
        once = np.asarray(im.convert("RGB"))
    out = base.copy()
    out[box.slices()] = np.roll(once, (-sy, -sx), axis=(0, 1))[box.slices()]
    return jpeg_bytes(out, final_quality, subsampling)
