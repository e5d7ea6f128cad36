"""Pixel views of an image for the viewer's layers: full resolution, ELA, noise, gradient.

Each view is computed on at most `MAX_VIEW_PIXELS` pixels (a larger image is downscaled first,
and the view says so), so its cost is bounded whatever the upload.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from ..experts._jpeg_math import recompress
from ..io.input import ImageInput

MAX_VIEW_PIXELS = 13_000_000  # a 12 MP camera frame stays at full resolution
MIN_ELA_QUALITY, MAX_ELA_QUALITY = 10, 100


@dataclass(frozen=True)
class View:
    """An 8-bit picture (H, W, 3) at `scale` of the image's own size, and how it was shown."""

    rgb: np.ndarray
    scale: float
    note: str


def bounded_rgb(image: ImageInput, max_pixels: int = MAX_VIEW_PIXELS) -> tuple[np.ndarray, float]:
    """The image's pixels, downscaled (Lanczos) so they hold at most `max_pixels`."""
    h, w = image.rgb.shape[:2]
    if h * w <= max_pixels:
        return image.rgb, 1.0
    scale = (max_pixels / (h * w)) ** 0.5
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    small = Image.fromarray(image.rgb).resize(size, Image.Resampling.LANCZOS)
    return np.asarray(small), size[0] / w


def _scale_note(scale: float) -> str:
    return "" if scale == 1.0 else f" (computed on a copy downscaled to {scale:.0%})"


def _stretch(values: np.ndarray, percentile: float = 99.5) -> tuple[np.ndarray, float]:
    """Values scaled so the `percentile` maps to 255; returns (uint8, the gain applied)."""
    top = float(np.percentile(values, percentile)) if values.size else 0.0
    gain = 255.0 / max(top, 1.0)
    return np.clip(values * gain, 0, 255).astype(np.uint8), gain


def full_view(image: ImageInput) -> View:
    rgb, scale = bounded_rgb(image)
    return View(rgb, scale, "the image as decoded, orientation applied" + _scale_note(scale))


def ela_view(image: ImageInput, quality: int) -> View:
    """Error level analysis: |image - image re-saved as JPEG at `quality`|, brightened.

    Areas that were saved fewer times (pasted, retouched) or at another quality stand out; flat
    areas are dark whatever their history, so read ELA beside the picture.
    """
    if not MIN_ELA_QUALITY <= quality <= MAX_ELA_QUALITY:
        raise ValueError(f"ELA quality must be in {MIN_ELA_QUALITY}..{MAX_ELA_QUALITY}")
    rgb, scale = bounded_rgb(image)
    error = np.abs(recompress(rgb, quality) - rgb.astype(np.float32))
    out, gain = _stretch(error)
    note = f"ELA at JPEG quality {quality}, error brightened x{gain:.1f}" + _scale_note(scale)
    return View(out, scale, note)


def _luma(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    return np.asarray(0.299 * r + 0.587 * g + 0.114 * b, dtype=np.float32)


def noise_view(image: ImageInput) -> View:
    """The noise residual: luma minus its 3x3 median, magnitude brightened.

    Camera noise covers a photo evenly; a pasted or smoothed area shows as a patch of another
    texture or as a dark hole.
    """
    rgb, scale = bounded_rgb(image)
    gray = _luma(rgb)
    residual = np.abs(gray - ndimage.median_filter(gray, size=3))
    out, gain = _stretch(residual)
    grey = np.repeat(out[..., None], 3, axis=2)
    note = f"noise residual (luma minus 3x3 median), brightened x{gain:.1f}" + _scale_note(scale)
    return View(grey, scale, note)


def gradient_view(image: ImageInput) -> View:
    """Luminance gradient: red = horizontal slope, green = vertical slope, blue = magnitude.

    Lighting that comes from one side gives one tint; a pasted object lit from elsewhere, or an
    edge that is too sharp or too soft for its surroundings, breaks the pattern.
    """
    rgb, scale = bounded_rgb(image)
    gray = _luma(rgb)
    gx = ndimage.sobel(gray, axis=1) / 8.0
    gy = ndimage.sobel(gray, axis=0) / 8.0
    magnitude, gain = _stretch(np.hypot(gx, gy))
    red = np.clip(128 + gx * gain / 2, 0, 255).astype(np.uint8)
    green = np.clip(128 + gy * gain / 2, 0, 255).astype(np.uint8)
    out = np.stack([red, green, magnitude], axis=2)
    note = "luminance gradient: red = left-right slope, green = up-down slope, blue = strength"
    return View(out, scale, note + _scale_note(scale))
