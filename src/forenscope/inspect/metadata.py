"""The full metadata panel: EXIF, XMP, IPTC, the C2PA manifest tree, PNG text, ICC and the
embedded EXIF thumbnail checked against the picture.

Everything comes from the file's own bytes and is attacker-controlled: values are bounded in
length, count and nesting, and the UI shows them as text only.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageFile, IptcImagePlugin
from pydantic import BaseModel, Field

from ..io.input import ImageInput
from ..io.metadata import exif_thumbnail_bytes

MAX_TEXT = 20_000  # characters of one value (XMP packets are shown whole up to this)
MAX_ITEMS = 200  # keys of one mapping / items of one list in the C2PA tree
MAX_DEPTH = 12
MAX_THUMBNAIL_BYTES = 200_000
THUMBNAIL_DIFFERENT = 24.0  # mean |grey difference| at thumbnail size above which it differs
# IPTC-IIM record 2 datasets a fact-checker reads (IPTC Photo Metadata, IIM 4.2).
IPTC_NAMES = {
    5: "Object Name", 15: "Category", 25: "Keywords", 40: "Special Instructions",
    55: "Date Created", 60: "Time Created", 80: "By-line", 85: "By-line Title", 90: "City",
    92: "Sub-location", 95: "Province/State", 101: "Country", 103: "Transmission Reference",
    105: "Headline", 110: "Credit", 115: "Source", 116: "Copyright Notice",
    120: "Caption/Abstract", 122: "Caption Writer",
}  # fmt: skip
_ORIENT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
           4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
           6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}  # fmt: skip


class ThumbnailCheck(BaseModel):
    width: int
    height: int
    mean_difference: float = Field(description="mean |grey difference| to the picture, 0-255")
    aspect_differs: bool
    differs: bool = Field(description="the thumbnail does not show the same picture")
    summary: str


class C2paPanel(BaseModel):
    present: bool
    validation_state: str = ""
    failures: list[str] = Field(default_factory=list)
    summary: dict[str, Any] = Field(default_factory=dict)
    tree: dict[str, Any] = Field(default_factory=dict, description="the manifest store, bounded")
    error: str | None = None


class MetadataPanel(BaseModel):
    format: str
    width: int
    height: int
    exif: dict[str, Any] = Field(default_factory=dict)
    xmp: str | None = None
    iptc: dict[str, list[str]] = Field(default_factory=dict)
    c2pa: C2paPanel
    png_text: dict[str, str] = Field(default_factory=dict)
    icc: dict[str, str] | None = None
    thumbnail: ThumbnailCheck | None = None
    notes: list[str] = Field(default_factory=list)


def clip_text(value: object, limit: int = MAX_TEXT) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + f" ... ({len(text) - limit} more)"


def bounded_tree(value: Any, depth: int = 0) -> Any:
    """A JSON value cut to `MAX_DEPTH` levels, `MAX_ITEMS` entries and `MAX_TEXT` characters."""
    if depth >= MAX_DEPTH:
        return "..."
    if isinstance(value, dict):
        items = list(value.items())
        out = {clip_text(k, 200): bounded_tree(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["..."] = f"{len(items) - MAX_ITEMS} more entries"
        return out
    if isinstance(value, list):
        out_list = [bounded_tree(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            out_list.append(f"... {len(value) - MAX_ITEMS} more items")
        return out_list
    if value is None or isinstance(value, bool | int | float):
        return value
    return clip_text(value, 2000)


def _open(data: bytes) -> ImageFile.ImageFile | None:
    try:
        return Image.open(io.BytesIO(data))  # lazy: headers only, pixels are never decoded here
    except Exception:
        return None


def iptc_fields(im: ImageFile.ImageFile | None) -> dict[str, list[str]]:
    if im is None:
        return {}
    try:
        raw = IptcImagePlugin.getiptcinfo(im) or {}
    except Exception:
        return {}
    out: dict[str, list[str]] = {}
    for (record, dataset), value in list(raw.items())[:MAX_ITEMS]:
        name = IPTC_NAMES.get(dataset) if record == 2 else None
        key = name or f"{record}:{dataset}"
        values = value if isinstance(value, list) else [value]
        texts = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values]
        out[key] = [clip_text(t, 2000) for t in texts[:MAX_ITEMS]]
    return out


def icc_fields(icc: bytes | None) -> dict[str, str] | None:
    if not icc:
        return None
    fields = {"size": f"{len(icc)} bytes"}
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile
    except Exception as exc:
        fields["error"] = f"unreadable profile: {exc}"
        return fields
    for name in ("profile_description", "manufacturer", "model", "copyright", "xcolor_space"):
        value = getattr(profile, name, None)
        if value:
            fields[name.replace("xcolor_space", "colour_space")] = clip_text(value, 300).strip()
    fields["version"] = str(getattr(profile, "version", ""))
    return fields


def c2pa_panel(image: ImageInput) -> C2paPanel:
    from ..experts.c2pa_manifest import read_manifest_store, summarize

    try:
        store = read_manifest_store(image.data, image.format)
    except Exception as exc:  # a broken manifest is itself worth showing
        return C2paPanel(present=True, error=clip_text(f"{type(exc).__name__}: {exc}", 500))
    if store is None:
        return C2paPanel(present=False)
    summary = summarize(store)
    return C2paPanel(
        present=True, validation_state=str(summary.get("validation_state", "")),
        failures=[str(f) for f in summary.get("failures", [])], summary=bounded_tree(summary),
        tree=bounded_tree(store),
    )  # fmt: skip


def embedded_thumbnail(image: ImageInput) -> Image.Image | None:
    """The EXIF (IFD1) JPEG thumbnail, turned like the picture; None when there is none."""
    im = _open(image.data)
    if im is None:
        return None
    try:
        blob = exif_thumbnail_bytes(im, MAX_THUMBNAIL_BYTES)
        if blob is None:
            return None
        with Image.open(io.BytesIO(blob)) as opened:
            if opened.width * opened.height > 1_000_000:  # a thumbnail, not a second picture
                return None
            thumb = opened.convert("RGB")
    except Exception:
        return None
    turn = _ORIENT.get(image.orientation or 1)
    return thumb.transpose(turn) if turn is not None else thumb


def compare_thumbnail(image: ImageInput, thumb: Image.Image) -> ThumbnailCheck:
    tw, th = thumb.size
    aspect = abs(tw / max(th, 1) - image.width / max(image.height, 1)) / (
        image.width / max(image.height, 1)
    )
    aspect_differs = aspect > 0.05
    # Thumbnails may be letterboxed: compare the picture squeezed into the thumbnail's frame.
    small = Image.fromarray(image.rgb).convert("L").resize((tw, th), Image.Resampling.BOX)
    diff = float(
        np.abs(np.asarray(small, np.float32) - np.asarray(thumb.convert("L"), np.float32)).mean()
    )
    differs = diff > THUMBNAIL_DIFFERENT or aspect_differs
    if differs:
        summary = (
            f"the embedded thumbnail ({tw}x{th}) differs from the picture (mean grey difference "
            f"{diff:.1f}/255{', other aspect ratio' if aspect_differs else ''}): the picture may "
            "have been edited or cropped by software that left the camera's thumbnail"
        )
    else:
        summary = (
            f"the embedded thumbnail ({tw}x{th}) shows the same picture (difference {diff:.1f}/255)"
        )
    return ThumbnailCheck(
        width=tw, height=th, mean_difference=round(diff, 2), aspect_differs=aspect_differs,
        differs=differs, summary=summary,
    )  # fmt: skip


def metadata_panel(image: ImageInput) -> MetadataPanel:
    thumb = embedded_thumbnail(image)
    chunks = list(image.text_chunks.items())
    return MetadataPanel(
        format=image.format, width=image.width, height=image.height,
        exif=bounded_tree(image.exif), xmp=clip_text(image.xmp) if image.xmp else None,
        iptc=iptc_fields(_open(image.data)), c2pa=c2pa_panel(image),
        png_text={clip_text(k, 200): clip_text(v) for k, v in chunks[:MAX_ITEMS]},
        icc=icc_fields(image.icc_profile),
        thumbnail=compare_thumbnail(image, thumb) if thumb is not None else None,
        notes=list(image.notes),
    )  # fmt: skip
