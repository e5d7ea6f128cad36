"""What bytes look like, from their first bytes only: the image format a signature claims
(including formats we do not decode) and a short description of non-image files, so an error
message can say "looks like a PDF document" instead of "cannot identify image file".
"""

from __future__ import annotations

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
