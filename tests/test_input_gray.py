"""ImageInput.gray: the buffered luma equals the plain BT.601 expression bit for bit."""

from __future__ import annotations

import numpy as np

from forenscope.io.input import ImageInput


def test_gray_is_bit_identical_to_the_plain_expression() -> None:
    rgb = np.random.default_rng(7).integers(0, 256, (97, 131, 3), dtype=np.uint8)
    rgb[0, :3] = [[0, 0, 0], [255, 255, 255], [255, 0, 128]]
    image = ImageInput(rgb=rgb, data=b"", format="PNG", mode="RGB")
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    plain = 0.299 * r + 0.587 * g + 0.114 * b
    assert image.gray.dtype == np.float32
    assert np.array_equal(image.gray, plain)
