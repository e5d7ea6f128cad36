"""io.jpeg_codec: a JPEG save in memory that releases the GIL, with Pillow's own bytes."""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from forenscope.io import jpeg_codec


def _photo(mode: str) -> Image.Image:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:203, :157]
    rgb = np.stack([x, y, x + y], axis=-1) + rng.normal(0, 9, (203, 157, 3))
    im = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    return im.convert(mode)


def _pillow_bytes(im: Image.Image, **params: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", **params)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize(("quality", "subsampling"), [(50, 2), (75, 0), (97, 2)])
def test_the_bytes_are_pillows(mode: str, quality: int, subsampling: int) -> None:
    im = _photo(mode)
    got = jpeg_codec.encode(im, quality=quality, subsampling=subsampling)
    assert got == _pillow_bytes(im, quality=quality, subsampling=subsampling)
    assert Image.open(io.BytesIO(got)).size == im.size


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd_create is Linux-only")
def test_libjpeg_writes_to_a_descriptor(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow releases the GIL only when it encodes to a file descriptor (encode_to_file)
    encode_tile = getattr(ImageFile, "_encode_tile", None)
    if encode_tile is None:
        pytest.skip("this Pillow has no ImageFile._encode_tile to observe")
    descriptors: list[int | None] = []

    def spy(im: Any, fp: Any, tile: Any, bufsize: int, fh: int | None, *rest: Any) -> None:
        descriptors.append(fh)
        encode_tile(im, fp, tile, bufsize, fh, *rest)

    monkeypatch.setattr(ImageFile, "_encode_tile", spy)
    jpeg_codec.encode(_photo("RGB"), quality=80)
    assert descriptors and all(fh is not None for fh in descriptors)


def test_without_memfd_the_save_stays_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    im = _photo("RGB")
    monkeypatch.delattr(os, "memfd_create", raising=False)  # macOS, Windows
    assert jpeg_codec.encode(im, quality=90) == _pillow_bytes(im, quality=90)


def test_a_refused_memfd_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(name: str, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")  # an old kernel or a seccomp filter

    im = _photo("L")
    monkeypatch.setattr(os, "memfd_create", refuse, raising=False)
    assert jpeg_codec.encode(im, quality=60) == _pillow_bytes(im, quality=60)


def test_no_descriptor_is_left_open() -> None:
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("no /proc to count descriptors")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        jpeg_codec.encode(_photo("RGB"), quality=70)
    assert len(os.listdir("/proc/self/fd")) == before
