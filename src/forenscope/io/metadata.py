"""Container metadata (EXIF, XMP, text chunks, ICC, JPEG tables) as JSON-friendly values.

Everything here is read from a Pillow image that has already been loaded. Provenance and JPEG
experts rely on these fields, so values are kept as written (no re-encoding), except that binary
blobs are decoded to text where they are text and dropped where they are opaque (MakerNote).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Rational
from typing import Any

from PIL import ExifTags, Image

from .limits import Limits

# Opaque or duplicated blobs: MakerNote (vendor binary), XMP/ICC/IPTC/Photoshop (kept elsewhere or
# binary), PrintImageMatching, DNG private data.
_DROPPED_TAGS = frozenset({0x927C, 0x02BC, 0x8773, 0x83BB, 0x8649, 0xC4A5, 0xC634})
_USER_COMMENT = 0x9286
_XP_TAGS = frozenset({0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F})  # Windows UTF-16LE strings
_SUB_IFDS = {ExifTags.IFD.Exif: 0x8769, ExifTags.IFD.GPSInfo: 0x8825, ExifTags.IFD.Interop: 0xA005}
_MAX_SHORT_BLOB = 256  # bytes: longer undecodable blobs are dropped, shorter ones shown as hex
_MAX_LIST = 256  # items: longer arrays (strip offsets, tone curves) are structural, not evidence
_DROP = object()


@dataclass
class ContainerMetadata:
    exif: dict[str, Any] = field(default_factory=dict)
    orientation_tag: int | None = None
    xmp: str | None = None
    text_chunks: dict[str, str] = field(default_factory=dict)
    icc_profile: bytes | None = None
    quantization: dict[int, list[int]] | None = None
    jpeg_subsampling: str | None = None
    notes: list[str] = field(default_factory=list)


def read_metadata(im: Image.Image, limits: Limits) -> ContainerMetadata:
    """Collect every metadata field `ImageInput` carries from a loaded Pillow image."""
    meta = ContainerMetadata()
    cap = limits.max_metadata_bytes
    meta.exif, meta.orientation_tag = _read_exif(im, cap, meta.notes)
    meta.xmp = _read_xmp(im.info, cap, meta.notes)
    meta.text_chunks = _read_text(im, cap, meta.notes)
    meta.icc_profile = _read_icc(im.info, cap, meta.notes)
    meta.quantization = _read_quantization(im)
    meta.jpeg_subsampling = jpeg_subsampling(im)
    return meta


# --- EXIF -------------------------------------------------------------------------------------


def _read_exif(im: Image.Image, cap: int, notes: list[str]) -> tuple[dict[str, Any], int | None]:
    try:
        exif = im.getexif()
    except Exception as exc:  # malformed EXIF must not make the image unreadable
        notes.append(f"EXIF present but unreadable: {exc}")
        return {}, None
    out = _named_tags(dict(exif), ExifTags.TAGS, cap)
    for ifd in _SUB_IFDS:
        try:
            sub = exif.get_ifd(ifd)
        except Exception as exc:
            notes.append(f"EXIF {ifd.name} directory unreadable: {exc}")
            continue
        names = ExifTags.GPSTAGS if ifd == ExifTags.IFD.GPSInfo else ExifTags.TAGS
        for key, value in _named_tags(sub, names, cap).items():
            out.setdefault(key, value)
    for pointer in _SUB_IFDS.values():  # offsets, meaningless once the directories are expanded
        out.pop(ExifTags.TAGS[pointer], None)
    orientation = exif.get(ExifTags.Base.Orientation)
    return out, orientation if isinstance(orientation, int) else None


def _named_tags(tags: dict[int, Any], names: dict[int, str], cap: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag, raw in tags.items():
        if tag in _DROPPED_TAGS:
            continue
        value = _tag_value(tag, raw, cap)
        if value is not _DROP:
            out[names.get(tag, f"Tag0x{tag:04X}")] = value
    return out


def _tag_value(tag: int, raw: Any, cap: int) -> Any:
    if tag == _USER_COMMENT and isinstance(raw, bytes):
        return _user_comment(raw)
    if tag in _XP_TAGS:
        blob = bytes(raw) if isinstance(raw, (bytes, tuple, list)) else b""
        return blob.decode("utf-16-le", errors="replace").rstrip("\x00")
    return json_value(raw, cap)


def _user_comment(raw: bytes) -> str:
    """EXIF UserComment: an 8-byte character-code prefix, then the text."""
    code, body = raw[:8], raw[8:]
    if code.startswith(b"UNICODE"):
        # Byte order follows the EXIF header, which Pillow does not expose: mostly-Latin text
        # has its zero bytes first in UTF-16BE and second in UTF-16LE.
        big = body[0::2].count(0) >= body[1::2].count(0)
        text = body.decode("utf-16-be" if big else "utf-16-le", errors="replace")
    else:
        text = body.decode("utf-8", errors="replace")
    return text.rstrip("\x00 ").strip()


def json_value(raw: Any, cap: int) -> Any:
    """A JSON-friendly copy of one EXIF value, or `_DROP` for blobs too big or too opaque."""
    if isinstance(raw, bool) or raw is None:
        return raw
    if isinstance(raw, Rational) and not isinstance(raw, int):
        return _finite(float(raw)) if raw.denominator else None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        return _finite(raw)
    if isinstance(raw, str):
        text = raw.rstrip("\x00")
        return text if len(text) <= cap else _DROP
    if isinstance(raw, bytes):
        return _bytes_value(raw)
    if isinstance(raw, (tuple, list)):
        if len(raw) > _MAX_LIST:
            return _DROP
        items = [json_value(item, cap) for item in raw]
        return [item for item in items if item is not _DROP]
    return _DROP


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _bytes_value(raw: bytes) -> Any:
    text = raw.rstrip(b"\x00")
    if text and all(32 <= b < 127 or b in (9, 10, 13) for b in text):
        return text.decode("ascii")
    if len(raw) > _MAX_SHORT_BLOB:
        return _DROP
    return raw.hex()


# --- XMP, text, ICC -----------------------------------------------------------------------


def _read_xmp(info: dict[Any, Any], cap: int, notes: list[str]) -> str | None:
    raw = info.get("xmp") or info.get("XML:com.adobe.xmp")
    if not raw:
        return None
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) > cap:
            notes.append(f"XMP packet dropped: {len(raw):,} bytes exceeds {cap:,}")
            return None
        raw = _decode_text(bytes(raw))
    text = str(raw).strip("\x00 \r\n\t")
    if len(text) > cap:
        notes.append(f"XMP packet dropped: {len(text):,} characters exceeds {cap:,}")
        return None
    return text or None


def _decode_text(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace")
    return raw.decode("utf-8", errors="replace")


def _read_text(im: Image.Image, cap: int, notes: list[str]) -> dict[str, str]:
    """PNG tEXt/iTXt/zTXt (e.g. Stable Diffusion 'parameters', ComfyUI 'prompt'/'workflow'),
    plus JPEG/GIF comments."""
    chunks: dict[str, Any] = {}
    if im.format == "PNG":
        # `im.text` seeks to the last APNG frame (decoding every frame): use info for animations.
        animated = bool(getattr(im, "is_animated", False))
        source = im.info if animated else getattr(im, "text", {})
        chunks = {str(k): v for k, v in source.items() if isinstance(v, str)}
        chunks.pop("XML:com.adobe.xmp", None)  # already in `xmp`
    comment = im.info.get("comment")
    if comment:
        chunks["comment"] = comment
    out: dict[str, str] = {}
    for key, value in chunks.items():
        text = _decode_text(value) if isinstance(value, bytes) else str(value)
        if len(text) > cap:
            notes.append(f"text chunk {key!r} dropped: {len(text):,} characters exceeds {cap:,}")
            continue
        out[str(key)] = text
    return out


def _read_icc(info: dict[Any, Any], cap: int, notes: list[str]) -> bytes | None:
    icc = info.get("icc_profile")
    if not isinstance(icc, (bytes, bytearray)) or not icc:
        return None
    if len(icc) > cap:
        notes.append(f"ICC profile dropped: {len(icc):,} bytes exceeds {cap:,}")
        return None
    return bytes(icc)


# --- JPEG ---------------------------------------------------------------------------------


def _read_quantization(im: Image.Image) -> dict[int, list[int]] | None:
    tables = getattr(im, "quantization", None)
    if not tables:
        return None
    return {int(k): [int(v) for v in table] for k, table in tables.items()}


_SUBSAMPLING = {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (1, 2): "4:4:0",
                (4, 1): "4:1:1", (4, 2): "4:1:0"}  # fmt: skip


def exif_thumbnail_bytes(im: Image.Image, max_bytes: int) -> bytes | None:
    """The EXIF (IFD1) JPEG thumbnail's bytes, at most `max_bytes`; None when there is none."""
    ifd1 = im.getexif().get_ifd(ExifTags.IFD.IFD1)
    offset, length = ifd1.get(0x0201), ifd1.get(0x0202)
    raw = im.info.get("exif")
    if not (isinstance(offset, int) and isinstance(length, int) and isinstance(raw, bytes)):
        return None
    start = 6 + offset if raw.startswith(b"Exif\0\0") else offset
    return raw[start : start + min(length, max_bytes)]


def jpeg_subsampling(im: Image.Image) -> str | None:
    """Chroma subsampling from the SOF sampling factors ('4:2:0', ...); None for greyscale."""
    layers = getattr(im, "layer", None)
    if not layers or len(layers) < 3:
        return None
    factors = [(int(layer[1]), int(layer[2])) for layer in layers]
    (h0, v0), chroma = factors[0], factors[1:3]
    if chroma[0] != chroma[1] or min(chroma[0]) <= 0:
        return "mixed " + ",".join(f"{h}x{v}" for h, v in factors)
    ratio = (h0 // chroma[0][0], v0 // chroma[0][1])
    exact = h0 % chroma[0][0] == 0 and v0 % chroma[0][1] == 0
    if exact and ratio in _SUBSAMPLING:
        return _SUBSAMPLING[ratio]
    return "custom " + ",".join(f"{h}x{v}" for h, v in factors)
