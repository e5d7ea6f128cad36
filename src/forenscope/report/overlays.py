"""Heatmaps and masks as pictures: colour-mapped RGBA overlays, PNG bytes and data URLs."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from scipy import ndimage

from ..fusion.localize import resize_map

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
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def heatmap_png(heatmap: np.ndarray) -> bytes:
    """The map as an 8-bit grayscale PNG (0 = 0.0, 255 = 1.0), at the map's own size."""
    values = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
    return png_bytes(np.round(values * 255).astype(np.uint8))


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
