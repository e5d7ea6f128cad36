"""Decoding without extra image-sized copies (issue 15, memory): the same pixels as Pillow's
whole-image conversion, for every orientation and the converted modes."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from PIL import Image, ImageOps

from forenscope.io import load_image
from forenscope.io.pixels import image_array
from io_fixtures import encode, exif


def _photo(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("rows", [1, 7, 64, 1000])
def test_image_array_is_numpys_copy(rows: int) -> None:
    im = Image.fromarray(_photo(97, 53))
    out = image_array(im, rows=rows)
    assert out.dtype == np.uint8 and out.flags.c_contiguous and out.flags.writeable
    assert np.array_equal(out, np.array(im))
    values = np.random.default_rng(rows).random((31, 45)).astype(np.float32)
    plane = image_array(Image.fromarray(values, mode="F"), np.float32, rows)
    assert plane.dtype == np.float32 and plane.shape == (31, 45)
    assert np.array_equal(plane, values)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_oriented_jpeg_is_pillows_transpose(orientation: int) -> None:
    data = encode(_photo(30, 50), "JPEG", exif=exif(orientation=orientation), quality=95)
    with Image.open(io.BytesIO(data)) as im:
        expected = np.array(ImageOps.exif_transpose(im).convert("RGB"))
    img = load_image(data)
    assert img.orientation == orientation
    assert np.array_equal(img.rgb, expected)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_converted_modes_are_unchanged(mode: str) -> None:
    base = Image.fromarray(_photo(24, 36))
    src = base.convert(mode) if mode != "I;16" else base.convert("L").convert("I;16")
    fmt = {"CMYK": "TIFF", "I;16": "PNG"}.get(mode, "PNG")
    img = load_image(encode(src, fmt))
    assert img.rgb.shape == (24, 36, 3) and img.rgb.dtype == np.uint8
    if mode in ("L", "P"):
        assert np.array_equal(img.rgb, np.array(src.convert("RGB")))


def test_decoding_holds_no_extra_copy_of_the_pixels() -> None:
    """np.array(Image) held the pixels three times as bytes and arrays (tobytes' chunks, their
    join, the array); the strips hold the array and a strip."""
    yy, xx = np.indices((600, 800))
    smooth = np.stack([yy % 256, xx % 256, (yy + xx) % 256], axis=-1).astype(np.uint8)
    data = encode(smooth, "PNG")  # small next to its pixels
    load_image(data)  # Pillow's plugins are imported once, outside the measurement
    tracemalloc.start()
    try:
        img = load_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < img.rgb.nbytes * 1.5 + len(data) * 2
