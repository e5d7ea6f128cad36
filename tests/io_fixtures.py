"""Synthesise the images that tests/test_io.py loads. Each writer returns the file it wrote."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def marked_rgb(height: int = 20, width: int = 40) -> np.ndarray:
    """Blue image with a red 5x5 block in the top-left corner: shows rotations and flips."""
    a = np.zeros((height, width, 3), np.uint8)
    a[:] = BLUE
    a[:5, :5] = RED
    return a


def noise_rgb(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def smooth_rgb(height: int = 48, width: int = 64) -> np.ndarray:
    """Gradients in all three channels: exact for lossless formats, near-exact for JPEG."""
    y, x = np.mgrid[0:height, 0:width]
    a = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 2 % 256], axis=-1)
    return a.astype(np.uint8)


def save(path: Path, image: Image.Image | np.ndarray, fmt: str, **params: object) -> Path:
    im = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    im.save(path, fmt, **params)
    return path


def encode(image: Image.Image | np.ndarray, fmt: str, **params: object) -> bytes:
    im = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def exif(orientation: int | None = None, **extra: object) -> Image.Exif:
    """A fresh Exif (Pillow's AVIF writer pops Orientation from the object it is given)."""
    e = Image.Exif()
    if orientation is not None:
        e[0x0112] = orientation
    names = {"Make": 0x010F, "Model": 0x0110, "Software": 0x0131}
    for key, value in extra.items():
        e[names[key]] = value
    return e


def rich_exif() -> Image.Exif:
    """Base, Exif sub-IFD and GPS tags, a MakerNote blob and a UserComment."""
    e = exif(Make="Canon", Model="EOS 5D", Software="Adobe Photoshop 24.0")
    sub = e.get_ifd(0x8769)
    sub[0x9003] = "2024:01:02 03:04:05"  # DateTimeOriginal
    sub[0x927C] = bytes(range(256)) * 8  # MakerNote: must be dropped
    sub[0x9286] = b"ASCII\x00\x00\x00hello comment"  # UserComment
    gps = e.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 30.0)  # GPSLatitude
    return e


def write_zero_byte(tmp: Path) -> Path:
    path = tmp / "empty.jpg"
    path.write_bytes(b"")
    return path


def write_truncated_jpeg(tmp: Path) -> Path:
    data = encode(noise_rgb(), "JPEG", quality=90)
    path = tmp / "truncated.jpg"
    path.write_bytes(data[: len(data) // 2])
    return path


def write_text_as_jpg(tmp: Path) -> Path:
    path = tmp / "notes.jpg"
    path.write_text("These are my holiday notes, not a photo.\n" * 5, encoding="utf-8")
    return path


def write_random_bytes(tmp: Path) -> Path:
    path = tmp / "random.png"
    # 0x00 first: no image signature (not even BMP's 'BM') can match.
    path.write_bytes(b"\x00" + np.random.default_rng(1).bytes(4095))
    return path


def write_png_claiming(tmp: Path, width: int, height: int) -> Path:
    """A valid 8x8 PNG whose IHDR is patched to claim width x height (CRC fixed up)."""
    data = bytearray(encode(np.zeros((8, 8, 3), np.uint8), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path = tmp / f"claims_{width}x{height}.png"
    path.write_bytes(bytes(data))
    return path


def write_tiff16_grey(tmp: Path, values: np.ndarray) -> Path:
    return save(tmp / "grey16.tif", Image.fromarray(values.astype(np.uint16)), "TIFF")


def write_cmyk_jpeg(tmp: Path, adobe: bool = True) -> Path:
    """Solid red in CMYK. Pillow writes Adobe (inverted) CMYK; without the Adobe marker, ink
    values are stored plainly, so invert before saving and cut the APP14 segment out."""
    ink = (0, 255, 255, 0)
    stored = ink if adobe else tuple(255 - v for v in ink)
    data = encode(Image.new("CMYK", (32, 24), stored), "JPEG", quality=95)
    if not adobe:
        data = strip_jpeg_segment(data, 0xEE)
    path = tmp / ("cmyk.jpg" if adobe else "cmyk_plain.jpg")
    path.write_bytes(data)
    return path


def strip_jpeg_segment(data: bytes, marker: int) -> bytes:
    """Remove every APPn/other segment with this marker that comes before the first scan."""
    out, pos = bytearray(data[:2]), 2
    while pos < len(data) and data[pos + 1] != 0xDA:
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if data[pos + 1] != marker:
            out += data[pos : pos + 2 + length]
        pos += 2 + length
    return bytes(out + data[pos:])


def write_animated_gif(tmp: Path, colours: list[tuple[int, int, int]]) -> Path:
    frames = [Image.new("RGB", (24, 16), c) for c in colours]
    path = tmp / "anim.gif"
    frames[0].save(
        path,
        "GIF",
        save_all=True,
        append_images=frames[1:],
        duration=50,
        loop=0,
        comment=b"gif comment",
    )
    return path


def write_palette_png_transparent(tmp: Path) -> Path:
    """Left half palette index 0 (declared fully transparent), right half index 1 (blue)."""
    idx = np.zeros((16, 32), np.uint8)
    idx[:, 16:] = 1
    im = Image.fromarray(idx, "P")
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    return save(tmp / "palette.png", im, "PNG", transparency=0)


def write_rgba_png(tmp: Path) -> Path:
    """Three vertical bands: transparent red, opaque green, half-transparent black."""
    a = np.zeros((12, 30, 4), np.uint8)
    a[:, :10] = (255, 0, 0, 0)
    a[:, 10:20] = (0, 255, 0, 255)
    a[:, 20:] = (0, 0, 0, 128)
    return save(tmp / "rgba.png", Image.fromarray(a, "RGBA"), "PNG")


def write_png_with_text(tmp: Path, parameters: str, prompt: dict[str, object]) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", parameters)  # tEXt, as AUTOMATIC1111 writes it
    info.add_itxt("prompt", json.dumps(prompt))  # iTXt, as ComfyUI writes it
    info.add_text("Comment", "compressed note", zip=True)  # zTXt
    return save(tmp / "sd.png", noise_rgb(16, 16), "PNG", pnginfo=info)


def write_multipage_tiff(tmp: Path, second_size: tuple[int, int]) -> Path:
    first = Image.new("RGB", (16, 16), RED)
    second = Image.new("L", second_size, 7)
    path = tmp / "pages.tif"
    first.save(path, "TIFF", save_all=True, append_images=[second], compression="tiff_deflate")
    return path


def move_png_chunk_after_idat(data: bytes, chunk_type: bytes) -> bytes:
    """Re-order PNG chunks so `chunk_type` comes after the image data (just before IEND):
    some writers put text there, and it is only read once the pixels are."""
    chunks, pos = [], 8
    while pos < len(data):
        length = struct.unpack(">I", data[pos : pos + 4])[0]
        chunks.append(data[pos : pos + 12 + length])
        pos += 12 + length
    moved = [c for c in chunks if c[4:8] == chunk_type]
    rest = [c for c in chunks if c[4:8] != chunk_type]
    return data[:8] + b"".join(rest[:-1] + moved + rest[-1:])
