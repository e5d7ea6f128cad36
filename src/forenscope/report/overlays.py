"""Heatmaps and masks as pictures: colour-mapped RGBA overlays, PNG bytes and data URLs."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from scipy import ndimage

from ..fusion.localize import resize_map

if TYPE_CHECKING:
    from ..io.input import ImageInput

# Control points of an "inferno"-like perceptual map (black -> purple -> orange -> pale yellow),
# interpolated into a 256-entry lookup table so no plotting library is needed.
_INFERNO_POINTS = np.array(
    [
        (0, 0, 4),
        (22, 11, 57),
        (66, 10, 104),
        (106, 23, 110),
        (147, 38, 103),
        (188, 55, 84),
        (221, 81, 58),
        (243, 120, 25),
        (252, 165, 10),
        (246, 215, 70),
        (252, 255, 164),
    ],
    dtype=np.float64,
)
_STOPS = np.linspace(0.0, 1.0, len(_INFERNO_POINTS))
_GRID = np.linspace(0.0, 1.0, 256)
INFERNO_LUT = np.stack(
    [np.interp(_GRID, _STOPS, _INFERNO_POINTS[:, c]) for c in range(3)], axis=1
).astype(np.uint8)


def colormap(heatmap: np.ndarray) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 through the inferno-like LUT."""
    values = np.clip(np.nan_to_num(heatmap.astype(np.float32)), 0.0, 1.0)
    return INFERNO_LUT[np.round(values * 255).astype(np.uint8)]


def _overlay_levels(
    heatmap: np.ndarray, size: tuple[int, int] | None, floor: float, max_alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """(values in [0, 1] at `size`, alpha in [0, 1]) of an overlay."""
    values = np.asarray(heatmap, dtype=np.float32)
    if size is not None:
        values = resize_map(values, size[1], size[0])
    values = np.clip(np.nan_to_num(values), 0.0, 1.0)
    alpha = np.clip((values - floor) / (1.0 - floor), 0.0, 1.0) ** 0.7 * max_alpha
    return values, alpha


def heatmap_rgba(
    heatmap: np.ndarray,
    *,
    size: tuple[int, int] | None = None,
    max_alpha: float = 0.85,
    floor: float = 0.05,
) -> np.ndarray:
    """Colour-mapped RGBA overlay; low values are transparent so the image shows through.

    `size` is (width, height) of the output; the map is resized bilinearly to it.
    """
    values, alpha = _overlay_levels(heatmap, size, floor, max_alpha)
    rgba = np.empty((*values.shape, 4), dtype=np.uint8)
    rgba[..., :3] = colormap(values)
    rgba[..., 3] = np.round(alpha * 255).astype(np.uint8)
    return rgba


def overlay_png(
    heatmap: np.ndarray,
    *,
    size: tuple[int, int] | None = None,
    levels: int = 64,
    max_alpha: float = 0.85,
    floor: float = 0.05,
) -> bytes:
    """The overlay of `heatmap_rgba` as a small palette PNG with per-entry transparency.

    Quantising to `levels` steps keeps noisy maps from bloating the HTML report (an RGBA PNG of
    a noise map barely compresses).
    """
    values, _ = _overlay_levels(heatmap, size, floor, max_alpha)
    index = np.round(values * (levels - 1)).astype(np.uint8)
    steps = np.linspace(0.0, 1.0, levels)
    colours = INFERNO_LUT[np.round(steps * 255).astype(np.uint8)]
    alphas = np.clip((steps - floor) / (1.0 - floor), 0.0, 1.0) ** 0.7 * max_alpha
    img = Image.fromarray(index, mode="P")
    img.putpalette(colours.astype(np.uint8).ravel().tolist())
    buf = io.BytesIO()
    img.save(
        buf,
        format="PNG",
        optimize=True,
        transparency=bytes(np.round(alphas * 255).astype(np.uint8)),
    )
    return buf.getvalue()


def mask_outline_rgba(
    mask: np.ndarray,
    *,
    size: tuple[int, int] | None = None,
    color: tuple[int, int, int] = (0, 255, 255),
    width: int = 2,
) -> np.ndarray:
    """Transparent RGBA image with only the outline of the mask drawn in `color`."""
    binary = np.asarray(mask, dtype=bool)
    if size is not None and (binary.shape[1], binary.shape[0]) != size:
        img = Image.fromarray(binary.astype(np.uint8) * 255, mode="L")
        binary = np.asarray(img.resize(size, Image.Resampling.NEAREST)) > 127
    inner = ndimage.binary_erosion(binary, iterations=width, border_value=0)
    outline = binary & ~inner
    rgba = np.zeros((*binary.shape, 4), dtype=np.uint8)
    rgba[outline] = (*color, 255)
    return rgba


def png_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 (H, W), (H, W, 3) or (H, W, 4) array as PNG."""
    buf = io.BytesIO()
    # zlib's default level, not `optimize`: 5x faster on a 12 MP map for files ~4% larger.
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG")
    return buf.getvalue()


def heatmap_png(heatmap: np.ndarray) -> bytes:
    """The map as an 8-bit grayscale PNG (0 = 0.0, 255 = 1.0), at the map's own size."""
    return png_bytes(map_levels(heatmap))


STRIP_VALUES = 1 << 18  # values per strip: a strip's float temporaries stay in cache


def map_levels(heatmap: np.ndarray) -> np.ndarray:
    """`round(clip(nan_to_num(map as float32), 0, 1) * 255)` as uint8, a strip of rows at a
    time: the same levels without four image-sized float temporaries (183 MB each at 48 MP)."""
    arr = np.asarray(heatmap)
    out = np.empty(arr.shape, dtype=np.uint8)
    if arr.ndim == 0 or arr.size == 0:
        values = np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 1.0)
        return np.round(values * 255).astype(np.uint8)
    rows = max(1, STRIP_VALUES // max(1, arr[0].size))
    for top in range(0, arr.shape[0], rows):
        values = np.nan_to_num(np.asarray(arr[top : top + rows], dtype=np.float32))
        np.clip(values, 0.0, 1.0, out=values)
        values *= 255
        np.round(values, out=values)
        out[top : top + rows] = values
    return out


def any_at_least(heatmap: np.ndarray, level: float) -> bool:
    """`np.any(nan_to_num(map as float32) >= level)`, a strip of rows at a time."""
    arr = np.asarray(heatmap)
    if arr.ndim == 0 or arr.size == 0:
        return bool(np.any(np.nan_to_num(arr.astype(np.float32)) >= level))
    rows = max(1, STRIP_VALUES // max(1, arr[0].size))
    return any(
        bool(np.any(np.nan_to_num(np.asarray(arr[top : top + rows], dtype=np.float32)) >= level))
        for top in range(0, arr.shape[0], rows)
    )


def mask_png(mask: np.ndarray) -> bytes:
    """The mask as an 8-bit PNG, 255 inside and 0 outside."""
    return png_bytes(np.asarray(mask, dtype=bool).astype(np.uint8) * 255)


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_data_url(
    rgb: np.ndarray, *, max_side: int = 1600, quality: int = 85
) -> tuple[str, int, int]:
    """The picture as a JPEG data URL, downscaled to `max_side`; returns (url, width, height)."""
    img = Image.fromarray(np.ascontiguousarray(rgb.astype(np.uint8))).convert("RGB")
    scale = min(1.0, max_side / max(img.size))
    if scale < 1.0:
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return data_url(buf.getvalue(), "image/jpeg"), img.width, img.height


# Formats a browser shows exactly as Pillow decodes them (8-bit, one frame): the report embeds
# such a file's own bytes, so the analyst zooms into the very pixels that were analysed.
_BROWSER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_EMBEDDED_BYTES = 40 * 1024 * 1024
LOSSLESS_MAX_PIXELS = 4_000_000  # past this a lossless PNG copy grows too large for one page


def embedded_image(image: ImageInput) -> tuple[str, str]:
    """(data URL, caption) of the picture at full resolution for the report.

    The original bytes when a browser shows them as analysed (a JPEG, PNG or WebP, 8-bit, one
    frame, no EXIF rotation to apply, modes RGB/RGBA/L); otherwise the decoded pixels
    re-encoded, losslessly (PNG) up to 4 MP, else as a JPEG at quality 95 without chroma
    subsampling, and the caption says which.
    """
    mime = _BROWSER_FORMATS.get(image.format.upper())
    shows_as_analysed = (
        mime is not None
        and image.bit_depth == 8
        and image.frames == 1
        and image.orientation in (None, 1)
        and image.mode in ("RGB", "RGBA", "L", "LA", "P")
        and len(image.data) <= MAX_EMBEDDED_BYTES
    )
    if shows_as_analysed and mime is not None:
        return data_url(image.data, mime), "The original file, at full resolution."
    rgb = np.ascontiguousarray(image.rgb.astype(np.uint8))
    buf = io.BytesIO()
    if rgb.shape[0] * rgb.shape[1] <= LOSSLESS_MAX_PIXELS:
        Image.fromarray(rgb).save(buf, format="PNG")
        return data_url(buf.getvalue(), "image/png"), (
            f"A lossless copy of the decoded {image.format} pixels, at full resolution."
        )
    Image.fromarray(rgb).convert("RGB").save(buf, format="JPEG", quality=95, subsampling=0)
    return data_url(buf.getvalue(), "image/jpeg"), (
        f"A JPEG copy (quality 95) of the decoded {image.format} pixels, at full resolution: "
        "its own faint re-encoding traces are not the original's."
    )


def mask_outline_path(mask: np.ndarray, grid: int = 512) -> tuple[str, tuple[int, int]]:
    """SVG path data tracing the mask's borders, and the (width, height) of the grid it is in.

    The mask is sampled onto at most `grid` cells a side (nearest), and every edge between an
    inside and an outside cell becomes a segment; runs along a row or column are merged. Drawn
    with a non-scaling stroke the outline stays sharp at every zoom.
    """
    binary = np.asarray(mask, dtype=bool)
    h, w = binary.shape
    scale = min(1.0, grid / max(h, w, 1))
    gh, gw = max(1, round(h * scale)), max(1, round(w * scale))
    if (gh, gw) != (h, w):
        rows = np.minimum((np.arange(gh) + 0.5) / scale, h - 1).astype(int)
        cols = np.minimum((np.arange(gw) + 0.5) / scale, w - 1).astype(int)
        binary = binary[rows][:, cols]
    padded = np.pad(binary, 1)
    horizontal = padded[:-1, 1:-1] != padded[1:, 1:-1]  # (gh + 1, gw): edge above row i
    vertical = padded[1:-1, :-1] != padded[1:-1, 1:]  # (gh, gw + 1): edge left of column j
    parts = [f"M{x0} {y}H{x1}" for y, x0, x1 in _runs(horizontal)]
    parts += [f"M{x} {y0}V{y1}" for x, y0, y1 in _runs(vertical.T)]
    return "".join(parts), (gw, gh)


def _runs(edges: np.ndarray) -> list[tuple[int, int, int]]:
    """(line index, start, end) of each run of True along the rows of `edges`."""
    out: list[tuple[int, int, int]] = []
    for i, row in enumerate(edges):
        if not row.any():
            continue
        d = np.diff(np.concatenate(([0], row.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        out.extend((i, int(a), int(b)) for a, b in zip(starts, ends, strict=True))
    return out
