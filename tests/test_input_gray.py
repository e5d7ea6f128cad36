"""ImageInput.gray: the buffered luma equals the plain BT.601 expression bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from forenscope.io import input as image_input
from forenscope.io.input import ImageInput


# One band for the whole image (the default at this size), bands of 5 rows (the last one of
# 2), and a band narrower than one row (then one row a band).
@pytest.mark.parametrize("band_bytes", [image_input._BAND_BYTES, 4 * 131 * 5, 64])
def test_gray_is_bit_identical_to_the_plain_expression(
    band_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_input, "_BAND_BYTES", band_bytes)
    rgb = np.random.default_rng(7).integers(0, 256, (97, 131, 3), dtype=np.uint8)
    rgb[0, :3] = [[0, 0, 0], [255, 255, 255], [255, 0, 128]]
    image = ImageInput(rgb=rgb, data=b"", format="PNG", mode="RGB")
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    plain = 0.299 * r + 0.587 * g + 0.114 * b
    assert image.gray.dtype == np.float32
    assert image.gray.shape == plain.shape
    assert np.array_equal(image.gray, plain)


def test_drop_planes_lets_gray_go_and_it_is_made_again() -> None:
    rgb = np.random.default_rng(8).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    image = ImageInput(rgb=rgb, data=b"", format="PNG", mode="RGB")
    first = image.gray
    image.drop_planes()
    assert "gray" not in image.__dict__
    assert image.gray is not first and np.array_equal(image.gray, first)


def test_the_analysis_does_not_keep_the_grey_plane() -> None:
    from forenscope.forgeries import encode, synthetic_photo
    from forenscope.io import load_image
    from forenscope.pipeline import analyze_image

    image = load_image(encode(synthetic_photo(), quality=90))
    report = analyze_image(image, experts=["copy_move", "noise"])  # copy_move reads gray
    assert "gray" not in image.__dict__
    assert {r.expert for r in report.experts} == {"copy_move", "noise"}
