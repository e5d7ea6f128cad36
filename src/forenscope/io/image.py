"""Safe image decoding: limits before decoding, clear errors, metadata kept for the experts.

Order matters for safety: the byte size is checked before reading, the pixel count is checked
from the header (Pillow's `Image.open` is lazy) before any pixel is decoded, and only then is the
first frame decoded. Pillow's globals (MAX_IMAGE_PIXELS, LOAD_TRUNCATED_IMAGES) are never changed.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import stat
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from PIL import ExifTags, Image, ImageFile, UnidentifiedImageError

from ..errors import ForenscopeError, ImageDecodeError, ImageTooLargeError, InputError
from .input import ImageInput
from .limits import Limits
from .metadata import read_metadata
from .pixels import image_array, source_bit_depth, to_rgb
from .sniff import describe_bytes, heif_brand, known_image_format

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
    notes: list[str] = []
    with _open(_without_oversized_png_text(data, notes), name) as im:
        limits.check_pixels(im.size, name)
        return _decode(im, data, path, name, limits, notes)


def probe_image(data: bytes, limits: Limits, name: str = "upload") -> tuple[int, int]:
    """(width, height) from the header, after the byte, pixel and memory checks; no pixel is
    decoded. A server calls this when the upload arrives, before it queues any work."""
    limits.check_bytes(len(data), name)
    if not data:
        raise ImageDecodeError(f"{name}: empty file (0 bytes), not an image")
    with _open(_without_oversized_png_text(data, []), name) as im:
        limits.check_pixels(im.size, name)
        return int(im.size[0]), int(im.size[1])


def _decode(
    im: ImageFile.ImageFile, data: bytes, path: str | None, name: str, limits: Limits,
    notes: list[str],
) -> ImageInput:  # fmt: skip
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
    if rgb_im is not im:
        im.close()  # a converted copy is what is kept: free the decoded pixels now
    if orientation in _ORIENT and im.format not in _SELF_ORIENTING:
        upright = rgb_im.transpose(_ORIENT[orientation])
        rgb_im.close()  # one of the two image-sized copies, not both, during the array copy
        rgb_im = upright
    elif orientation is not None:
        meta.exif["Orientation"] = orientation  # the decoder applied it and reset the tag
    rgb = image_array(rgb_im)
    rgb_im.close()
    return ImageInput(
        rgb=rgb, data=data, format=fmt, mode=mode, path=path,
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
    with open_regular_file(path, limits.max_bytes) as (fh, size):
        try:
            # read(n) allocates n bytes up front: ask for exactly the size that was checked.
            data, grown = fh.read(size), fh.read(1)
        except OSError as exc:
            raise InputError(f"{name}: cannot read the file: {exc.strerror or exc}") from None
    if grown:
        raise InputError(f"{name}: the file grew while it was being read; try again")
    return data, name


@contextmanager
def open_regular_file(path: Path, max_bytes: int) -> Iterator[tuple[io.BufferedReader, int]]:
    """(binary file, size) of a regular file no larger than `max_bytes`, else InputError.

    The file is opened without blocking and checked on the open descriptor, so a FIFO, a
    device such as /dev/zero or a file swapped for one after a path check never reaches a
    reader (a FIFO's open or read would wait for a writer forever), and the size is checked
    before a single byte is read or hashed.
    """
    name = str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not an image file") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot open the file: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{name}: is a directory, not an image file")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{name}: not a regular file (device, FIFO or socket); not read")
        if st.st_size > max_bytes:
            raise ImageTooLargeError(
                f"{name}: file is {st.st_size:,} bytes, over the limit of {max_bytes:,} bytes "
                f"(raise it with FORENSCOPE_MAX_BYTES or Limits(max_bytes=...))"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh, st.st_size


def stream_sha256(fh: BinaryIO) -> str:
    """sha256 of what is left of an open binary file, read in 1 MB chunks."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def regular_file_sha256(path: Path, max_bytes: int) -> str:
    """sha256 of a user's file, checked first by `open_regular_file`: a FIFO, a device or a file
    over `max_bytes` is refused (InputError) before a byte is read."""
    with open_regular_file(path, max_bytes) as (fh, _size):
        return stream_sha256(fh)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT = (b"tEXt", b"zTXt", b"iTXt")


def _without_oversized_png_text(data: bytes, notes: list[str]) -> bytes:
    """The PNG without the text chunks Pillow would refuse the whole image for.

    Pillow raises on a compressed text chunk that inflates past `MAX_TEXT_CHUNK` (1 MB) or on
    text past `MAX_TEXT_MEMORY` in total, so one hostile chunk would turn any verdict into "could
    not be analysed". Those chunks are skipped (with a note) in the copy handed to the decoder;
    the caller keeps the original bytes. Pillow's globals are read, never changed.
    """
    if not data.startswith(_PNG_SIGNATURE):
        return data
    from PIL import PngImagePlugin

    per_chunk, total_cap = PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY
    drop: list[tuple[int, int]] = []
    total, pos = 0, len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data) or kind == b"IEND":
            break
        if kind in _PNG_TEXT:
            size = _png_text_size(kind, data[pos + 8 : pos + 8 + length], per_chunk)
            if size > per_chunk or total + size > total_cap:
                key = data[pos + 8 : pos + 8 + min(length, 79)].split(b"\0", 1)[0]
                what = "more than 1 MB" if size > per_chunk else "past the total text limit"
                notes.append(
                    f"PNG {kind.decode()} chunk {key.decode('latin-1')!r} skipped: its text "
                    f"inflates to {what} ({length:,} bytes stored)"
                )
                drop.append((pos, end))
            else:
                total += size
        pos = end
    if not drop:
        return data
    kept, last = [], 0
    for start, end in drop:
        kept.append(data[last:start])
        last = end
    kept.append(data[last:])
    return b"".join(kept)


def _png_text_size(kind: bytes, body: bytes, cap: int) -> int:
    """Decoded size of one text chunk's value, counting at most cap + 1 bytes of inflation."""
    _key, _, rest = body.partition(b"\0")
    if kind == b"tEXt":
        return len(rest)
    if kind == b"zTXt":
        compressed, payload = True, rest[1:]
    else:  # iTXt: flag, method, language\0, translated keyword\0, text
        compressed = rest[:1] == b"\x01"
        parts = rest[2:].split(b"\0", 2)
        payload = parts[2] if len(parts) == 3 else b""
    if not compressed:
        return len(payload)
    try:
        return len(zlib.decompressobj().decompress(payload, cap + 1))
    except zlib.error:
        return 0  # Pillow ignores a corrupt stream itself


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


# Pillow's plugin of each accepted format (HEIF comes from pillow-heif, see _enable_heif).
_PLUGINS = {
    "JPEG": "JpegImagePlugin", "MPO": "MpoImagePlugin", "PNG": "PngImagePlugin",
    "WEBP": "WebPImagePlugin", "TIFF": "TiffImagePlugin", "BMP": "BmpImagePlugin",
    "GIF": "GifImagePlugin", "AVIF": "AvifImagePlugin", "JPEG2000": "Jpeg2KImagePlugin",
    "PPM": "PpmImagePlugin",
}  # fmt: skip


def _accepted_formats() -> list[str]:
    """The accepted formats Pillow can open here, in ACCEPTED_FORMATS order. Only their plugins
    are imported: Image.init() imports all ~45 (60 ms of every cold start, issue 15), and
    Image.open(formats=...) calls it only for a format not yet registered."""
    for image_format in ACCEPTED_FORMATS:
        if image_format not in Image.OPEN and image_format in _PLUGINS:
            try:
                importlib.import_module(f"PIL.{_PLUGINS[image_format]}")
            except ImportError:  # as Image.init(): a plugin that cannot load is skipped
                pass
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
