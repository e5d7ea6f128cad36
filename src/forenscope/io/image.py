"""Safe image decoding: limits before decoding, clear errors, metadata kept for the experts.

Order matters for safety: the byte size is checked before reading, the pixel count is checked
from the header (Pillow's `Image.open` is lazy) before any pixel is decoded, and only then is the
first frame decoded. Pillow's globals (MAX_IMAGE_PIXELS, LOAD_TRUNCATED_IMAGES) are never changed.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageChops, ImageFile, UnidentifiedImageError

from ..errors import ForenscopeError, ImageDecodeError, ImageTooLargeError, InputError
from .input import ImageInput
from .limits import Limits
from .metadata import read_metadata

# Formats we accept. Pillow would otherwise try every plugin it has, and weak-signature ones (TGA,
# MPEG headers...) can "recognise" random bytes. MPO is a JPEG with extra pictures appended.
ACCEPTED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP", "GIF", "AVIF", "HEIF",
                    "JPEG2000", "PPM")  # fmt: skip
_CHEAP_SEEK = frozenset({"TIFF", "MPO", "HEIF"})  # seek() reads a header, not pixels
_SELF_ORIENTING = frozenset({"TIFF", "HEIF"})  # their decoders already rotate the pixels
_ORIENT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def load_image(
    source: str | os.PathLike[str] | bytes, *, limits: Limits | None = None
) -> ImageInput:
    """Decode `source` (a path or the file's bytes) into an `ImageInput`.

    Raises InputError (missing path, directory, wrong type), ImageTooLargeError (over `limits`,
    default `Limits.from_env()`, before decoding) or ImageDecodeError (empty, truncated, not an
    image, unsupported format). Every message names the file.
    """
    limits = limits or Limits.from_env()
    data, path = _read_source(source, limits)
    name = path or _bytes_name(len(data))
    if not data:
        raise ImageDecodeError(f"{name}: empty file (0 bytes), not an image")
    with _open(data, name) as im:
        limits.check_pixels(im.size, name)
        return _decode(im, data, path, name, limits)


def _decode(
    im: ImageFile.ImageFile, data: bytes, path: str | None, name: str, limits: Limits
) -> ImageInput:
    notes: list[str] = []
    frames = _check_frames(im, limits, name)
    fmt = "JPEG" if im.format == "MPO" else str(im.format)
    if im.format == "MPO":
        notes.append(f"MPO (multi-picture JPEG) with {frames} pictures; the first is analysed")
    bit_depth, mode = source_bit_depth(im), im.mode
    # Pillow's TIFF loader applies (and deletes) the Orientation tag itself: read it first.
    tiff_tag = getattr(im, "tag_v2", {}).get(ExifTags.Base.Orientation)
    tiff_tag = tiff_tag if isinstance(tiff_tag, int) else None
    with _guard(name, f"decoding the {fmt} pixels"):
        im.load()
        _refuse_truncated_jpeg(im, data, name)
        rgb_im, has_alpha = to_rgb(im, bit_depth, notes)
        meta = read_metadata(im, limits)
    orientation = _orientation(im, meta.orientation_tag if tiff_tag is None else tiff_tag, notes)
    if orientation in _ORIENT and im.format not in _SELF_ORIENTING:
        rgb_im = rgb_im.transpose(_ORIENT[orientation])
    elif orientation is not None:
        meta.exif["Orientation"] = orientation  # the decoder applied it and reset the tag
    return ImageInput(
        rgb=np.array(rgb_im, dtype=np.uint8), data=data, format=fmt, mode=mode, path=path,
        bit_depth=bit_depth, frames=frames, has_alpha=has_alpha, orientation=orientation,
        exif=meta.exif, xmp=meta.xmp, text_chunks=meta.text_chunks, icc_profile=meta.icc_profile,
        quantization=meta.quantization, jpeg_subsampling=meta.jpeg_subsampling,
        notes=notes + meta.notes,
    )  # fmt: skip


def _read_source(source: object, limits: Limits) -> tuple[bytes, str | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        limits.check_bytes(len(data), _bytes_name(len(data)))
        return data, None
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(
            f"load_image expects a file path (str or os.PathLike) or bytes, "
            f"got {type(source).__name__}"
        )
    name = os.fsdecode(source)
    if name.startswith(("http://", "https://")):
        raise InputError(f"{name}: looks like a URL; load_image reads local files only")
    if not name:
        raise InputError("load_image was given an empty path")
    return _read_path(Path(name), limits)


def _read_path(path: Path, limits: Limits) -> tuple[bytes, str]:
    name = str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot access the file: {exc.strerror or exc}") from None
    if path.is_dir():
        raise InputError(f"{name}: is a directory, not an image file")
    if not path.is_file():
        raise InputError(f"{name}: not a regular file (device, FIFO or socket)")
    limits.check_bytes(st.st_size, name)
    try:
        with path.open("rb") as fh:
            # read(n) allocates n bytes up front: ask for exactly the size that was checked.
            data, grown = fh.read(st.st_size), fh.read(1)
    except OSError as exc:
        raise InputError(f"{name}: cannot read the file: {exc.strerror or exc}") from None
    if grown:
        raise InputError(f"{name}: the file grew while it was being read; try again")
    return data, name


def _bytes_name(size: int) -> str:
    return f"<in-memory image, {size:,} bytes>"


@contextmanager
def _open(data: bytes, name: str) -> Iterator[ImageFile.ImageFile]:
    """Identify the format and parse the header only; no pixel is decoded here."""
    brand = heif_brand(data)
    if brand is not None:
        _enable_heif(brand, name)
    try:
        with _guard(name, "reading the image header"):
            im = Image.open(io.BytesIO(data), formats=_accepted_formats())
    except ImageDecodeError as exc:
        if not isinstance(exc.__cause__, UnidentifiedImageError):
            raise
        raise ImageDecodeError(_unidentified_message(data, name)) from None
    try:
        yield im
    finally:
        im.close()


def _unidentified_message(data: bytes, name: str) -> str:
    image_format = known_image_format(data)
    if image_format is None:
        return f"{name}: not an image: looks like {describe_bytes(data)}"
    if image_format in ACCEPTED_FORMATS:
        return f"{name}: {image_format} signature but the header is corrupt or unsupported"
    return f"{name}: unsupported image format: {image_format}"


def _accepted_formats() -> list[str]:
    Image.init()  # imports every plugin once, so Image.OPEN is complete
    return [f for f in ACCEPTED_FORMATS if f in Image.OPEN]


def _enable_heif(brand: str, name: str) -> None:
    """Register pillow-heif only for HEIF bytes; Pillow decodes AVIF itself when built with it."""
    from PIL import features

    if brand == "AVIF" and features.check("avif"):
        return
    try:
        import pillow_heif
    except ImportError:
        raise ImageDecodeError(
            f"{name}: {brand} image, but no decoder is installed: "
            f"pip install 'forenscope[heif]' (pillow-heif)"
        ) from None
    if brand == "AVIF" and not pillow_heif.libheif_info().get("AVIF"):
        raise ImageDecodeError(f"{name}: AVIF image, but neither Pillow nor pillow-heif reads AVIF")
    if "HEIF" not in Image.OPEN:
        pillow_heif.register_heif_opener()


def _check_frames(im: ImageFile.ImageFile, limits: Limits, name: str) -> int:
    """Count frames; where a seek is header-only (TIFF pages, MPO, HEIF), check every frame's
    size too. GIF/APNG/WebP frames are drawn on the canvas checked already, and only frame 0 is
    ever decoded."""
    with _guard(name, "counting frames"):
        frames = int(getattr(im, "n_frames", 1) or 1)
        if frames > 1 and im.format in _CHEAP_SEEK:
            for index in range(1, min(frames, limits.max_frames)):
                im.seek(index)
                limits.check_pixels(im.size, name, frame=index)
            im.seek(0)
    return frames


@contextmanager
def _guard(name: str, stage: str) -> Iterator[None]:
    """Turn whatever Pillow (or a plugin) raises on hostile bytes into our errors, with a message
    that names the file; the original exception stays chained for debugging."""
    try:
        with warnings.catch_warnings():
            # Our own pixel limit decides; Pillow's warning threshold would only add noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except ForenscopeError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"{name}: refused before decoding by Pillow's hard decompression-bomb limit "
            f"(2 x PIL.Image.MAX_IMAGE_PIXELS, which Forenscope never changes): {exc}"
        ) from exc
    except MemoryError as exc:
        raise ImageTooLargeError(f"{name}: out of memory while {stage}") from exc
    except Exception as exc:
        raise ImageDecodeError(f"{name}: {stage} failed: {_explain(exc)}") from exc


def _explain(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"the file is truncated (it ends before the image data does) [{text}]"
    return text


def _refuse_truncated_jpeg(im: Image.Image, data: bytes, name: str) -> None:
    """Pillow raises on a truncated JPEG unless some other code set the global
    LOAD_TRUNCATED_IMAGES, in which case it pads with grey; catch that case too: the last scan
    (SOS) must be followed by an end-of-image marker."""
    if not ImageFile.LOAD_TRUNCATED_IMAGES or im.format not in ("JPEG", "MPO"):
        return
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        raise ImageDecodeError(f"{name}: the file is truncated (JPEG data ends without EOI)")


def _orientation(im: Image.Image, tag: int | None, notes: list[str]) -> int | None:
    if im.format == "HEIF":  # pillow-heif resets EXIF to 1 and keeps what libheif applied
        original = im.info.get("original_orientation")
        return original if isinstance(original, int) and 1 <= original <= 8 else None
    if tag is None:
        return None
    if not 1 <= tag <= 8:
        notes.append(f"EXIF Orientation {tag} is invalid and was ignored")
        return None
    return tag


# --- pixels -----------------------------------------------------------------------------------

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def source_bit_depth(im: ImageFile.ImageFile) -> int:
    """Bits per sample of the stored image (read before `load()`, which clears `tile`)."""
    if im.mode == "1":
        return 1
    heif_depth = im.info.get("bit_depth")  # pillow-heif reports it; >8 is reduced to 8 on decode
    if isinstance(heif_depth, int) and im.format == "HEIF":
        return heif_depth
    bits = getattr(im, "tag_v2", {}).get(258)  # TIFF BitsPerSample
    if bits:
        return int(max(bits)) if isinstance(bits, tuple) else int(bits)
    for tile in im.tile:
        args = tile.args
        rawmode = args if isinstance(args, str) else args[0] if isinstance(args, tuple) else None
        if isinstance(rawmode, str) and ";16" in rawmode:
            return 16  # e.g. PNG "RGB;16B": Pillow keeps the high byte of each sample
    if im.mode.startswith("I;16"):
        return 16
    return 32 if im.mode in ("I", "F") else 8


def to_rgb(im: Image.Image, bit_depth: int, notes: list[str]) -> tuple[Image.Image, bool]:
    """8-bit RGB as a viewer would show it (alpha on white), and whether the source had alpha."""
    if im.mode.startswith("I") or im.mode == "F":
        grey = _scale_to_uint8(np.asarray(im), bit_depth, notes)
        return Image.fromarray(grey).convert("RGB"), False
    if im.mode == "CMYK":
        return _cmyk_to_rgb(im, notes), False
    if im.mode not in _ALPHA_MODES and "transparency" not in im.info:
        return im.convert("RGB"), False
    rgba = im.convert("RGBA")
    low_alpha = rgba.getchannel("A").getextrema()[0]
    if isinstance(low_alpha, (int, float)) and low_alpha < 255:
        notes.append("transparent pixels were composited on white")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB"), True


def _scale_to_uint8(a: np.ndarray, bit_depth: int, notes: list[str]) -> np.ndarray:
    if a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0 and hi <= 1:
            notes.append("float samples in [0, 1] were scaled to 0-255")
            return np.asarray(np.rint(a * 255), dtype=np.uint8)
        if lo >= 0 and hi <= 255:
            return np.asarray(np.rint(a), dtype=np.uint8)
        return _stretch(a, lo, hi, notes)
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi > 65535:
        return _stretch(a, lo, hi, notes)
    if bit_depth == 16 or hi > 255:
        # Round to nearest: 65535 -> 255, 257 -> 1; the full 16-bit range maps to the 8-bit one.
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return a.astype(np.uint8)


def _stretch(a: np.ndarray, lo: float, hi: float, notes: list[str]) -> np.ndarray:
    notes.append(f"samples in [{lo:g}, {hi:g}] were stretched linearly to 0-255")
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.asarray(np.rint((a.astype(np.float32) - lo) * scale), dtype=np.uint8)


def _cmyk_to_rgb(im: Image.Image, notes: list[str]) -> Image.Image:
    icc = im.info.get("icc_profile")
    if im.format in ("JPEG", "MPO") and "adobe" not in im.info:
        # Pillow assumes Adobe's inverted CMYK; without the APP14 Adobe marker it is not inverted.
        im = ImageChops.invert(im)
        notes.append("CMYK JPEG without an Adobe marker: ink values read as non-inverted")
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(im, src, srgb, outputMode="RGB")
            if out is not None:
                notes.append("CMYK converted to sRGB with the embedded ICC profile")
                return out
        except (OSError, ValueError, ImageCms.PyCMSError) as exc:
            notes.append(f"embedded CMYK ICC profile unusable ({exc}); colours approximate")
    notes.append("CMYK converted without a colour profile (approximate colours)")
    return im.convert("RGB")


# --- what the bytes look like -------------------------------------------------------------------

_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1",
                b"msf1")  # fmt: skip
_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"II+\x00", "TIFF"),
    (b"MM\x00+", "TIFF"), (b"BM", "BMP"), (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG2000"),
    (b"\xff\x4f\xff\x51", "JPEG2000"), (b"8BPS", "PSD (Photoshop document)"),
    (b"\x00\x00\x01\x00", "ICO (Windows icon)"), (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"), (b"qoif", "QOI"), (b"DDS ", "DDS texture"),
    (b"\x76\x2f\x31\x01", "OpenEXR"), (b"#?RADIANCE", "Radiance HDR"),
    (b"FUJIFILMCCD-RAW", "RAF raw"),
)  # fmt: skip
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive (or .docx/.xlsx/.jar)"),
    (b"PK\x05\x06", "an empty ZIP archive"), (b"\x1f\x8b", "gzip-compressed data"),
    (b"BZh", "bzip2-compressed data"), (b"\xfd7zXZ\x00", "xz-compressed data"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an ELF executable"), (b"MZ", "a Windows executable"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"), (b"OggS", "Ogg audio/video"),
    (b"ID3", "MP3 audio"), (b"fLaC", "FLAC audio"), (b"SQLite format 3", "an SQLite database"),
)  # fmt: skip


def heif_brand(data: bytes) -> str | None:
    """'AVIF' or 'HEIF' when the ISO-BMFF ftyp box names such a brand, else None."""
    if data[4:8] != b"ftyp":
        return None
    box_end = min(int.from_bytes(data[:4], "big"), 256)
    brands = [data[8:12]] + [data[i : i + 4] for i in range(16, box_end - 3, 4)]
    if any(b in (b"avif", b"avis") for b in brands[:1]) or b"avif" in brands[1:]:
        return "AVIF"
    return "HEIF" if any(b in _HEIF_BRANDS for b in brands) else None


def known_image_format(data: bytes) -> str | None:
    """The image format the signature claims (including ones we do not decode), else None."""
    brand = heif_brand(data)
    if brand:
        return brand
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in _IMAGE_SIGNATURES:
        if data.startswith(magic):
            return fmt
    if data[4:12] == b"ftypcrx ":
        return "CR3 raw"
    head = _as_text(data[:4096])
    if head is not None and "<svg" in head.lower():
        return "SVG (vector graphics)"
    return None


def describe_bytes(data: bytes) -> str:
    """A short guess at what non-image bytes are, for the error message."""
    for magic, what in _OTHER_SIGNATURES:
        if data.startswith(magic):
            return what
    if data[4:8] == b"ftyp":
        return "an MP4/QuickTime video or audio file"
    if data[:4] == b"RIFF":
        return {b"WAVE": "WAV audio", b"AVI ": "an AVI video"}.get(data[8:12], "a RIFF file")
    text = _as_text(data[:4096])
    if text is None:
        return f"unrecognised binary data (starts with {data[:8].hex(' ')})"
    head = text.lstrip().lower()
    if head.startswith(("<!doctype html", "<html", "<head", "<body")):
        return "an HTML page (text)"
    if head.startswith("<?xml") or head.startswith("<"):
        return "an XML document (text)"
    if head.startswith(("{", "[")):
        return "JSON (text)"
    if head.startswith("data:image/"):
        return "a data: URL (text; decode its base64 payload first)"
    return "plain text"


def _as_text(head: bytes) -> str | None:
    """The bytes as text when they look like UTF-8 text (a cut final character is tolerated)."""
    if not head or b"\x00" in head:
        return None
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    bad = sum(1 for c in text if c == "\ufffd" or (ord(c) < 32 and c not in "\t\r\n\f"))
    return text if bad <= max(2, len(text) // 100) else None
