"""Safe image loading: formats, orientation, metadata, limits and error messages."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile, JpegImagePlugin, PngImagePlugin, features

from forenscope.errors import ConfigError, ImageDecodeError, ImageTooLargeError, InputError
from forenscope.io import ImageInput, Limits, load_image
from io_fixtures import (
    BLUE,
    GREEN,
    RED,
    encode,
    exif,
    marked_rgb,
    move_png_chunk_after_idat,
    noise_rgb,
    rich_exif,
    save,
    smooth_rgb,
    write_animated_gif,
    write_cmyk_jpeg,
    write_multipage_tiff,
    write_palette_png_transparent,
    write_png_claiming,
    write_png_with_text,
    write_random_bytes,
    write_rgba_png,
    write_text_as_jpg,
    write_tiff16_grey,
    write_truncated_jpeg,
    write_zero_byte,
)


def assert_close(pixel: np.ndarray, colour: tuple[int, int, int], tol: int = 12) -> None:
    assert np.abs(pixel.astype(int) - np.array(colour)).max() <= tol, (pixel, colour)


# --- errors -------------------------------------------------------------------------------------


def test_zero_byte_file(tmp_path: Path) -> None:
    path = write_zero_byte(tmp_path)
    with pytest.raises(ImageDecodeError, match="empty file") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg_is_an_error_not_grey_pixels(tmp_path: Path) -> None:
    path = write_truncated_jpeg(tmp_path)
    with pytest.raises(ImageDecodeError, match="truncated") as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_jpeg_refused_even_if_another_library_set_load_truncated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageDecodeError, match="truncated"):
        load_image(write_truncated_jpeg(tmp_path))


def test_truncated_png(tmp_path: Path) -> None:
    data = encode(noise_rgb(), "PNG")
    with pytest.raises(ImageDecodeError, match="truncated|PNG"):
        load_image(data[: len(data) // 2])


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = write_text_as_jpg(tmp_path)
    with pytest.raises(ImageDecodeError, match="not an image: looks like plain text") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_random_bytes(tmp_path: Path) -> None:
    path = write_random_bytes(tmp_path)
    with pytest.raises(ImageDecodeError, match="not an image: looks like unrecognised binary"):
        load_image(path)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40), "ZIP"),
        (b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
        (b'{"image": "not really"}', "JSON"),
    ],
)
def test_non_images_say_what_they_look_like(tmp_path: Path, payload: bytes, expected: str) -> None:
    path = tmp_path / "upload.jpg"
    path.write_bytes(payload)
    with pytest.raises(ImageDecodeError, match=f"not an image: looks like .*{expected}"):
        load_image(path)


def test_unsupported_image_format_is_named(tmp_path: Path) -> None:
    path = save(tmp_path / "icon.ico", noise_rgb(16, 16), "ICO")
    with pytest.raises(ImageDecodeError, match="unsupported image format: ICO"):
        load_image(path)


def test_svg_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "logo.png"
    path.write_text('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>')
    with pytest.raises(ImageDecodeError, match="unsupported image format: SVG"):
        load_image(path)


def test_corrupt_header_of_known_format(tmp_path: Path) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(64)
    with pytest.raises(ImageDecodeError, match="PNG signature but the header is corrupt"):
        load_image(data)


def test_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file") as info:
        load_image(tmp_path / "missing.jpg")
    assert not isinstance(info.value, ImageDecodeError)
    assert "missing.jpg" in str(info.value)
    with pytest.raises(InputError, match="is a directory"):
        load_image(tmp_path)
    with pytest.raises(InputError, match="got int"):
        load_image(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="URL"):
        load_image("https://example.com/a.jpg")


# --- limits -------------------------------------------------------------------------------------


def test_pixel_bomb_refused_fast_without_allocating(tmp_path: Path) -> None:
    path = write_png_claiming(tmp_path, 30000, 30000)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(ImageTooLargeError, match="pixels") as info:
            load_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0
    assert peak < 20_000_000  # a decoded 30000x30000 RGB image would need 2.7 GB
    assert str(path) in str(info.value)


def test_our_pixel_limit_applies_below_pillows(tmp_path: Path) -> None:
    path = write_png_claiming(tmp_path, 12000, 10000)  # 120 MP: under Pillow's error threshold
    with pytest.raises(ImageTooLargeError, match="12000x10000 = 120,000,000 pixels"):
        load_image(path)
    small = save(tmp_path / "small.png", noise_rgb(20, 30), "PNG")
    with pytest.raises(ImageTooLargeError, match="over the limit of 500 pixels"):
        load_image(small, limits=Limits(max_pixels=500))


def test_limits_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(tmp_path / "small.png", noise_rgb(20, 30), "PNG")
    monkeypatch.setenv("FORENSCOPE_MAX_PIXELS", "100")
    with pytest.raises(ImageTooLargeError, match="FORENSCOPE_MAX_PIXELS"):
        load_image(path)
    monkeypatch.setenv("FORENSCOPE_MAX_PIXELS", "1000")
    monkeypatch.setenv("FORENSCOPE_MAX_BYTES", "100")
    with pytest.raises(ImageTooLargeError, match="bytes, over the limit of 100 bytes"):
        load_image(path)
    monkeypatch.setenv("FORENSCOPE_MAX_BYTES", "lots")
    with pytest.raises(ConfigError, match="FORENSCOPE_MAX_BYTES"):
        Limits.from_env()
    with pytest.raises(ConfigError):
        Limits(max_pixels=0)


def test_byte_limit_applies_to_bytes_input() -> None:
    data = encode(noise_rgb(), "PNG")
    with pytest.raises(ImageTooLargeError, match="in-memory image"):
        load_image(data, limits=Limits(max_bytes=len(data) - 1))
    assert load_image(data, limits=Limits(max_bytes=len(data))).width == 64


def test_each_tiff_page_is_checked(tmp_path: Path) -> None:
    path = write_multipage_tiff(tmp_path, (2000, 1000))
    with pytest.raises(ImageTooLargeError, match=r"\(frame 1\)"):
        load_image(path, limits=Limits(max_pixels=1_000_000))
    img = load_image(path)
    assert img.frames == 2
    assert_close(img.rgb[0, 0], RED, 0)


def test_metadata_blobs_are_bounded(tmp_path: Path) -> None:
    path = write_png_with_text(tmp_path, "x" * 5000, {"1": {}})
    img = load_image(path, limits=Limits(max_metadata_bytes=1000))
    assert "parameters" not in img.text_chunks
    assert "prompt" in img.text_chunks
    assert any("'parameters' dropped" in note for note in img.notes)


# --- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "params", "tol"),
    [
        ("PNG", {}, 0),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
        ("TIFF", {"compression": "tiff_deflate"}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("PPM", {}, 0),
        ("JPEG", {"quality": 95}, 8),
    ],
)
def test_lossless_and_jpeg_round_trip(
    tmp_path: Path, fmt: str, params: dict[str, object], tol: int
) -> None:
    a = smooth_rgb()
    img = load_image(save(tmp_path / f"x.{fmt.lower()}", a, fmt, **params))
    assert img.format == fmt
    assert img.rgb.shape == (48, 64, 3) and img.rgb.dtype == np.uint8
    assert np.abs(img.rgb.astype(int) - a).max() <= tol
    assert img.bit_depth == 8 and img.frames == 1 and not img.has_alpha


def test_original_bytes_preserved(tmp_path: Path) -> None:
    path = save(tmp_path / "o.jpg", marked_rgb(), "JPEG", exif=exif(orientation=6))
    raw = path.read_bytes()
    img = load_image(str(path))
    assert img.data == raw
    assert img.sha256 == hashlib.sha256(raw).hexdigest()
    assert img.path == str(path)
    assert img.rgb.shape == (40, 20, 3)  # pixels rotated, bytes untouched


def test_tiff_16bit_is_scaled_properly(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32768, 65535], [1000, 2000, 40000, 65280]], np.uint16)
    img = load_image(write_tiff16_grey(tmp_path, values))
    assert img.bit_depth == 16 and img.mode.startswith("I;16")
    expected = np.array([[0, 1, 128, 255], [4, 8, 156, 254]], np.uint8)
    np.testing.assert_array_equal(img.rgb[..., 0], expected)
    np.testing.assert_array_equal(img.rgb[..., 0], img.rgb[..., 2])


def test_png_16bit_rgb(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2", reason="OpenCV writes 16-bit RGB PNG; Pillow cannot")
    a16 = np.array([[[0, 4660, 65535], [32768, 257, 51400]]], np.uint16)  # RGB order
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), a16[..., ::-1])
    img = load_image(path)
    assert img.bit_depth == 16 and img.mode == "RGB"
    assert np.abs(img.rgb.astype(int) - np.rint(a16 / 257)).max() <= 1


def test_float_tiff(tmp_path: Path) -> None:
    a = np.array([[0.0, 0.5, 1.0]], np.float32)
    img = load_image(save(tmp_path / "f.tif", Image.fromarray(a, "F"), "TIFF"))
    assert img.mode == "F" and img.bit_depth == 32
    np.testing.assert_array_equal(img.rgb[0, :, 1], [0, 128, 255])


def test_cmyk_jpeg_colour(tmp_path: Path) -> None:
    img = load_image(write_cmyk_jpeg(tmp_path))
    assert img.mode == "CMYK"
    assert_close(img.rgb[10, 10], RED, 20)


def test_cmyk_jpeg_without_adobe_marker_is_not_inverted(tmp_path: Path) -> None:
    img = load_image(write_cmyk_jpeg(tmp_path, adobe=False))
    assert_close(img.rgb[10, 10], RED, 20)
    assert any("without an Adobe marker" in note for note in img.notes)


def test_animated_gif_first_frame(tmp_path: Path) -> None:
    img = load_image(write_animated_gif(tmp_path, [RED, GREEN, BLUE]))
    assert img.format == "GIF" and img.frames == 3
    assert img.text_chunks["comment"] == "gif comment"
    assert img.rgb.shape == (16, 24, 3)
    assert_close(img.rgb[8, 8], RED, 0)


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    img = load_image(write_palette_png_transparent(tmp_path))
    assert img.mode == "P" and img.has_alpha
    assert_close(img.rgb[5, 2], (255, 255, 255), 0)  # transparent index -> white
    assert_close(img.rgb[5, 30], BLUE, 0)


def test_rgba_png_composited_on_white(tmp_path: Path) -> None:
    img = load_image(write_rgba_png(tmp_path))
    assert img.mode == "RGBA" and img.has_alpha
    assert_close(img.rgb[0, 0], (255, 255, 255), 0)
    assert_close(img.rgb[0, 15], GREEN, 0)
    assert_close(img.rgb[0, 25], (127, 127, 127), 1)


def test_greyscale_png(tmp_path: Path) -> None:
    grey = np.arange(0, 240, 4, dtype=np.uint8).reshape(6, 10)
    img = load_image(save(tmp_path / "g.png", Image.fromarray(grey, "L"), "PNG"))
    assert img.mode == "L"
    for channel in range(3):
        np.testing.assert_array_equal(img.rgb[..., channel], grey)


def test_mpo_counts_as_jpeg(tmp_path: Path) -> None:
    first, second = Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)
    path = tmp_path / "stereo.mpo"
    first.save(path, "MPO", save_all=True, append_images=[second])
    img = load_image(path)
    assert img.format == "JPEG" and img.is_jpeg and img.frames == 2
    assert img.quantization and any("MPO" in note for note in img.notes)
    assert_close(img.rgb[8, 8], RED, 10)


# --- orientation --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_exif_orientation_6_rotates(tmp_path: Path, fmt: str) -> None:
    params: dict[str, object] = {"exif": exif(orientation=6)}
    if fmt == "WEBP":
        params["lossless"] = True
    img = load_image(save(tmp_path / f"o.{fmt.lower()}", marked_rgb(20, 40), fmt, **params))
    assert img.orientation == 6
    assert img.rgb.shape == (40, 20, 3)  # 40 wide, 20 high -> 20 wide, 40 high
    assert_close(img.rgb[1, -2], RED, 30)  # top-left block ends up top-right
    assert_close(img.rgb[1, 1], BLUE, 30)


def test_orientation_absent_or_invalid(tmp_path: Path) -> None:
    assert load_image(encode(marked_rgb(), "PNG")).orientation is None
    img = load_image(encode(marked_rgb(), "JPEG", exif=exif(orientation=9)))
    assert img.orientation is None and img.rgb.shape == (20, 40, 3)
    assert any("Orientation 9 is invalid" in note for note in img.notes)


# --- metadata -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_exif_round_trip(tmp_path: Path, fmt: str) -> None:
    img = load_image(save(tmp_path / f"e.{fmt.lower()}", noise_rgb(), fmt, exif=rich_exif()))
    assert img.exif["Software"] == "Adobe Photoshop 24.0"
    assert img.exif["Make"] == "Canon" and img.exif["Model"] == "EOS 5D"
    json.dumps(img.exif)  # JSON-friendly throughout
    if fmt == "TIFF":
        return  # Pillow's TIFF writer drops the Exif and GPS sub-directories
    assert img.exif["DateTimeOriginal"] == "2024:01:02 03:04:05"
    assert img.exif["GPSLatitudeRef"] == "N"
    assert img.exif["GPSLatitude"] == [48.0, 51.0, 30.0]
    assert img.exif["UserComment"] == "hello comment"
    assert "MakerNote" not in img.exif and "ExifOffset" not in img.exif


@pytest.mark.parametrize("byte_order", ["utf-16-be", "utf-16-le"])
def test_unicode_user_comment(byte_order: str) -> None:
    """AUTOMATIC1111 stores 'parameters' in a UNICODE UserComment of JPEG and WebP files."""
    text = "a cat, Steps: 20, Seed: 7 \u732b"
    e = Image.Exif()
    e.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + text.encode(byte_order)
    img = load_image(encode(noise_rgb(), "JPEG", exif=e))
    assert img.exif["UserComment"] == text


def test_png_text_after_image_data(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "late chunk")
    data = move_png_chunk_after_idat(encode(noise_rgb(8, 8), "PNG", pnginfo=info), b"tEXt")
    assert data.index(b"tEXt") > data.index(b"IDAT")
    assert load_image(data).text_chunks == {"parameters": "late chunk"}


def test_png_generator_text_chunks(tmp_path: Path) -> None:
    params = "a cat in a hat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42"
    img = load_image(write_png_with_text(tmp_path, params, {"3": {"class_type": "KSampler"}}))
    assert img.text_chunks["parameters"] == params
    assert '"KSampler"' in img.text_chunks["prompt"]
    assert img.text_chunks["Comment"] == "compressed note"


XMP = (
    '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF/></x:xmpmeta><?xpacket end="w"?>'
)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_xmp_packet(tmp_path: Path, fmt: str) -> None:
    params: dict[str, object] = {"xmp": XMP.encode()}
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP)
        params = {"pnginfo": info}
    elif fmt == "TIFF":
        params = {"tiffinfo": {700: XMP.encode()}}
    img = load_image(save(tmp_path / f"x.{fmt.lower()}", noise_rgb(), fmt, **params))
    assert img.xmp == XMP
    assert "XML:com.adobe.xmp" not in img.text_chunks


def test_jpeg_comment_and_icc_profile(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = save(tmp_path / "c.jpg", noise_rgb(), "JPEG", comment=b"made by hand", icc_profile=icc)
    img = load_image(path)
    assert img.text_chunks["comment"] == "made by hand"
    assert img.icc_profile == icc


def test_jpeg_quantization_tables(tmp_path: Path) -> None:
    luma = [3] * 64
    chroma = list(range(1, 65))
    img = load_image(save(tmp_path / "q.jpg", noise_rgb(), "JPEG", qtables=[luma, chroma]))
    assert img.quantization is not None
    assert img.quantization == {0: luma, 1: chroma}  # natural order, as Pillow's qtables take
    assert load_image(encode(noise_rgb(), "PNG")).quantization is None


@pytest.mark.parametrize(("sampling", "label"), [(0, "4:4:4"), (1, "4:2:2"), (2, "4:2:0")])
def test_jpeg_subsampling(tmp_path: Path, sampling: int, label: str) -> None:
    path = save(tmp_path / "s.jpg", noise_rgb(), "JPEG", subsampling=sampling)
    assert load_image(path).jpeg_subsampling == label
    with Image.open(path) as im:
        assert JpegImagePlugin.get_sampling(im) == sampling
    grey = save(tmp_path / "g.jpg", Image.new("L", (16, 16)), "JPEG")
    assert load_image(grey).jpeg_subsampling is None


# --- HEIF / AVIF --------------------------------------------------------------------------------


def test_avif_round_trip(tmp_path: Path) -> None:
    if not features.check("avif"):
        pytest.skip("this Pillow build has no AVIF codec")
    path = save(tmp_path / "a.avif", marked_rgb(20, 40), "AVIF", quality=95,
                exif=exif(orientation=6, Software="gen"))  # fmt: skip
    img = load_image(path)
    assert img.format == "AVIF" and img.orientation == 6
    assert img.exif["Software"] == "gen"
    assert img.rgb.shape == (40, 20, 3)
    assert_close(img.rgb[1, -2], RED, 30)


def test_heic_round_trip(tmp_path: Path) -> None:
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif not installed")
    if not pillow_heif.libheif_info().get("HEIF"):
        pytest.skip("this pillow-heif build has no HEVC encoder")
    heif = pillow_heif.from_pillow(Image.fromarray(marked_rgb(20, 40)))
    path = tmp_path / "h.heic"
    heif.save(path, quality=95, exif=exif(orientation=6, Make="Apple").tobytes())
    img = load_image(path)
    assert img.format == "HEIF" and img.exif["Make"] == "Apple"
    assert img.orientation == 6 and img.rgb.shape == (40, 20, 3)
    assert_close(img.rgb[1, -2], RED, 30)  # libheif rotated it; we must not rotate again


def test_heif_opener_registered_lazily(tmp_path: Path) -> None:
    pytest.importorskip("pillow_heif", reason="pillow-heif not installed")
    png = save(tmp_path / "p.png", noise_rgb(8, 8), "PNG")
    heic = tmp_path / "h.heic"
    code = (
        "import sys, pillow_heif\n"
        "from PIL import Image\n"
        "from forenscope.io import load_image\n"
        "load_image(sys.argv[1]); Image.init()\n"
        "assert 'HEIF' not in Image.OPEN, 'registered before any HEIF was seen'\n"
        "pillow_heif.from_pillow(Image.new('RGB', (16, 16))).save(sys.argv[2])\n"
        "assert load_image(sys.argv[2]).format == 'HEIF'\n"
    )
    subprocess.run([sys.executable, "-c", code, str(png), str(heic)], check=True, timeout=60)


def test_heif_without_decoder_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    monkeypatch.delitem(Image.OPEN, "HEIF", raising=False)
    with pytest.raises(ImageDecodeError, match=r"forenscope\[heif\]"):
        load_image(data)


# --- shared data --------------------------------------------------------------------------------


def _sample_per_format(rows: list[dict[str, str]], per_format: int) -> list[dict[str, str]]:
    """Up to `per_format` rows per format, round-robin over sources, smallest images first."""
    by_format: dict[str, dict[str, list[dict[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_format[row["format"]][row["source"]].append(row)
    chosen = []
    for sources in by_format.values():
        queues = [sorted(q, key=lambda r: (int(r["width"]) * int(r["height"]), r["path"]))
                  for _, q in sorted(sources.items())]  # fmt: skip
        picked: list[dict[str, str]] = []
        while len(picked) < per_format and any(queues):
            for queue in queues:
                if queue and len(picked) < per_format:
                    picked.append(queue.pop(0))
        chosen += picked
    return chosen


@pytest.mark.data
def test_shared_data_every_format(shared_data: Path) -> None:
    with (shared_data / "manifest.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    formats = {row["format"] for row in rows}
    sample = _sample_per_format(rows, 20)
    assert {row["format"] for row in sample} == formats and "TIFF" in formats
    for row in sample:
        img: ImageInput = load_image(shared_data / row["path"])
        assert img.format == row["format"], row["path"]
        assert img.sha256 == row["sha256"], row["path"]
        size = (int(row["height"]), int(row["width"]))
        assert img.rgb.shape[:2] in (size, size[::-1]), row["path"]
        assert img.rgb.dtype == np.uint8 and img.rgb.shape[2] == 3
        assert (img.quantization is not None) == (row["format"] == "JPEG"), row["path"]
