"""forenscope.inspect: the analyst's layers and panels, on images whose answer is known."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image, ImageCms

from forenscope.forgeries import Box, example_photo, make_jpeg_region
from forenscope.inspect import (
    ela_view,
    embedded_thumbnail,
    full_view,
    gradient_view,
    jpeg_panel,
    metadata_panel,
    noise_view,
)
from forenscope.inspect.jpeg import ghost_minimum, grid_crop
from forenscope.inspect.metadata import bounded_tree
from forenscope.inspect.views import bounded_rgb
from forenscope.io import load_image
from provenance_fixtures import exif_with_thumbnail, jpeg_bytes, natural_rgb, png_bytes, sign_c2pa


def photo() -> np.ndarray:
    return example_photo()[::2, ::2].copy()


def jpeg(rgb: np.ndarray, quality: int, **params: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, **params)
    return buf.getvalue()


def test_ela_view_marks_a_region_saved_at_another_quality() -> None:
    box = Box(300, 90, 140, 120)
    forged = load_image(make_jpeg_region(photo(), box).data)
    clean = load_image(jpeg(photo(), 92))
    view = ela_view(forged, 90)
    assert view.rgb.shape == forged.rgb.shape and view.rgb.dtype == np.uint8
    assert view.scale == 1.0 and "quality 90" in view.note

    def share(v: np.ndarray) -> float:  # the box's error level relative to the whole picture
        return float(v[box.slices()].mean() / v.mean())

    # The region lost its fine detail in its earlier q55 save, so it changes less on re-saving.
    assert share(view.rgb) < 0.85 * share(ela_view(clean, 90).rgb)
    with pytest.raises(ValueError, match="quality"):
        ela_view(forged, 5)


def test_noise_view_shows_a_smoothed_patch_as_dark() -> None:
    rgb = natural_rgb(256, 256, 1)
    rgb[64:128, 64:128] = rgb[64:128, 64:128].mean(axis=(0, 1)).astype(np.uint8)
    view = noise_view(load_image(png_bytes(rgb)))
    assert view.rgb[70:120, 70:120].mean() < 0.2 * view.rgb[150:250, 150:250].mean()


def test_gradient_view_encodes_direction_in_red_and_green() -> None:
    ramp = np.tile(np.linspace(0, 255, 200, dtype=np.float32), (100, 1)).astype(np.uint8)
    view = gradient_view(load_image(png_bytes(np.stack([ramp] * 3, axis=2))))
    core = view.rgb[10:-10, 10:-10].astype(int)
    assert core[..., 0].mean() > 140  # brightening to the right: red above the neutral 128
    assert abs(core[..., 1].mean() - 128) < 3  # no vertical slope
    assert core[..., 2].mean() > 100


def test_views_of_a_huge_image_are_bounded() -> None:
    image = load_image(png_bytes(natural_rgb(400, 600, 2)))
    small, scale = bounded_rgb(image, max_pixels=60_000)
    assert small.shape[0] * small.shape[1] <= 60_000 and 0.3 < scale <= 0.5
    assert full_view(image).scale == 1.0


def test_jpeg_panel_reads_tables_quality_and_the_ghost_dip() -> None:
    rgb = natural_rgb(256, 256, 4)
    panel = jpeg_panel(load_image(jpeg(rgb, 70)))
    assert panel.is_jpeg and len(panel.tables) == 2
    assert panel.estimated_quality == 70 and panel.tables[0].standard
    assert len(panel.tables[0].values) == 64 and panel.tables[1].channel == "chroma"
    assert [p.quality for p in panel.ghost][:2] == [30, 35]
    assert panel.ghost_minimum == 70, [(p.quality, p.difference) for p in panel.ghost]
    png = jpeg_panel(load_image(png_bytes(rgb)))
    assert not png.is_jpeg and png.tables == [] and "not JPEG" in png.notes[0]


def test_ghost_crop_keeps_the_grid_and_the_bound() -> None:
    gray = np.zeros((3001, 4003), np.float32)
    crop = grid_crop(gray, 1_000_000)
    assert crop.size <= 1_000_000 and crop.shape[0] % 8 == 0 and crop.shape[1] % 8 == 0
    assert ghost_minimum([]) is None


def test_metadata_panel_lists_exif_xmp_png_text_and_icc() -> None:
    rgb = natural_rgb(64, 96, 5)
    xmp = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>Made by hand</rdf:RDF></x:xmpmeta>'
    panel = metadata_panel(load_image(jpeg_bytes(rgb, tags={0x0131: "GIMP 2.10"}, xmp=xmp)))
    assert panel.exif.get("Software") == "GIMP 2.10"
    assert panel.xmp is not None and "Made by hand" in panel.xmp
    assert not panel.c2pa.present and panel.thumbnail is None
    chunks = metadata_panel(load_image(png_bytes(rgb, text={"parameters": "a cat, Steps: 20"})))
    assert chunks.png_text == {"parameters": "a cat, Steps: 20"}
    buf = io.BytesIO()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgb).save(buf, "PNG", icc_profile=srgb)
    icc = metadata_panel(load_image(buf.getvalue())).icc
    assert icc is not None and "sRGB" in icc.get("profile_description", ""), icc


def test_metadata_panel_reads_iptc() -> None:
    # An IPTC-IIM block in a Photoshop APP13 segment: 8BIM resource 0x0404, dataset 2:120.
    caption = b"Flood in the city centre"
    iim = b"\x1c\x02\x78" + len(caption).to_bytes(2, "big") + caption
    resource = b"8BIM\x04\x04\x00\x00" + len(iim).to_bytes(4, "big") + iim
    payload = b"Photoshop 3.0\x00" + resource
    app13 = b"\xff\xed" + (len(payload) + 2).to_bytes(2, "big") + payload
    data = jpeg(natural_rgb(64, 64, 6), 90)
    data = data[:2] + app13 + data[2:]
    panel = metadata_panel(load_image(data))
    assert panel.iptc.get("Caption/Abstract") == ["Flood in the city centre"], panel.iptc


def test_thumbnail_is_flagged_when_it_shows_another_picture() -> None:
    rgb = natural_rgb(120, 160, 7)  # 4:3 like the thumbnail, but another picture
    image = load_image(jpeg_bytes(rgb, exif_raw=exif_with_thumbnail((160, 120))))
    thumb = embedded_thumbnail(image)
    assert thumb is not None and thumb.size == (160, 120)
    check = metadata_panel(image).thumbnail
    assert check is not None and check.differs and not check.aspect_differs, check
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)  # now the thumbnail is the picture
    image_same = load_image(jpeg_bytes(rgb, exif_raw=_with_thumbnail(buf.getvalue())))
    check_same = metadata_panel(image_same).thumbnail
    assert check_same is not None and not check_same.differs, check_same


def _with_thumbnail(thumb: bytes) -> bytes:
    import struct

    ifd0 = struct.pack("<H", 0) + struct.pack("<I", 14)
    entries = [(0x0201, 4, 1, 14 + 2 + 2 * 12 + 4), (0x0202, 4, 1, len(thumb))]
    ifd1 = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    return b"Exif\0\0II*\0" + struct.pack("<I", 8) + ifd0 + ifd1 + struct.pack("<I", 0) + thumb


def test_c2pa_manifest_tree_and_validation() -> None:
    pytest.importorskip("c2pa")
    source = jpeg(natural_rgb(128, 128, 8), 90)
    dst = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    actions = [{"action": "c2pa.created", "digitalSourceType": dst}]
    signed = sign_c2pa(source, "image/jpeg", actions)
    panel = metadata_panel(load_image(signed)).c2pa
    assert panel.present and panel.error is None
    assert "manifests" in panel.tree and panel.validation_state
    assert panel.summary["actions"][0]["source_type"] == "trainedAlgorithmicMedia"
    # Bytes changed after signing: the data hash no longer matches.
    tampered = bytearray(signed)
    tampered[-200] ^= 0xFF
    broken = metadata_panel(load_image(bytes(tampered))).c2pa
    assert any("mismatch" in f for f in broken.failures) or broken.error, broken


def test_bounded_tree_cuts_depth_items_and_text() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(30):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    cut = bounded_tree({"deep": deep, "many": list(range(500)), "long": "a" * 50_000})
    assert "..." in str(cut["deep"])
    assert len(cut["many"]) == 201 and "more items" in cut["many"][-1]
    assert len(cut["long"]) < 2100


def test_twelve_megapixel_views_stay_within_seconds() -> None:
    rgb = np.asarray(Image.fromarray(natural_rgb(375, 500, 9)).resize((4000, 3000)))
    image = load_image(jpeg(rgb, 85))
    start = time.perf_counter()
    ela_view(image, 90)
    jpeg_panel(image)
    elapsed = time.perf_counter() - start
    assert elapsed < 15, f"ELA + JPEG panel of 12 MP took {elapsed:.1f} s"
