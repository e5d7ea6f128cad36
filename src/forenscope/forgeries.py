"""Forgeries with known masks, made by our own code: for tests, demos and sanity benchmarks.

Each maker takes an RGB uint8 image, edits one region the way a forger would, encodes the result
and returns the file bytes with the exact boolean mask of the edited pixels. The shipped photo
`examples/seeding.jpg` (CC0) is the usual base; `synthetic_photo` makes a base without any file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from scipy import ndimage

Kind = Literal["splice", "copy_move", "jpeg_region", "resampled_region"]
EXAMPLE_PHOTO = Path(__file__).resolve().parent / "data" / "seeding.jpg"


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels: top-left (x, y) and size."""

    x: int
    y: int
    width: int
    height: int

    def slices(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)


@dataclass(frozen=True)
class Forgery:
    kind: Kind
    data: bytes
    format: str
    mask: np.ndarray  # bool (H, W), True = manipulated
    description: str

    @property
    def rgb(self) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.data)).convert("RGB"))


def encode(rgb: np.ndarray, fmt: str = "JPEG", *, quality: int = 90) -> bytes:
    """Encode RGB uint8 as JPEG (4:2:0) or PNG."""
    buf = io.BytesIO()
    im = Image.fromarray(rgb)
    if fmt == "JPEG":
        im.save(buf, "JPEG", quality=quality, subsampling=2)
    else:
        im.save(buf, fmt)
    return buf.getvalue()


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(encode(rgb, "JPEG", quality=quality))).convert("RGB"))


def synthetic_photo(height: int = 480, width: int = 640, *, seed: int = 0) -> np.ndarray:
    """A photo-like RGB image: smooth shading, textured regions, edges and sensor-like noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 90 + 60 * np.sin(xx / width * 3.1 + 0.5) * np.cos(yy / height * 2.3)
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (height, width)), 3) * 120
    img = np.stack([base + texture * k for k in (1.0, 0.8, 0.6)], axis=-1)
    for _ in range(12):  # a few flat objects with sharp edges
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        r = rng.integers(height // 20, height // 6)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        img[disk] = img[disk] * 0.5 + rng.uniform(20, 230, 3) * 0.5
    img += rng.normal(0, 2.5, img.shape)  # sensor noise
    return np.asarray(np.clip(img, 0, 255), dtype=np.uint8)


def example_photo() -> np.ndarray:
    """The shipped CC0 photo (1024x768) as RGB uint8."""
    return np.asarray(Image.open(EXAMPLE_PHOTO).convert("RGB"), dtype=np.uint8)


def _box_mask(shape: tuple[int, ...], box: Box) -> np.ndarray:
    mask = np.zeros(shape[:2], dtype=bool)
    mask[box.slices()] = True
    return mask


def make_splice(
    base: np.ndarray,
    donor: np.ndarray,
    box: Box,
    *,
    donor_xy: tuple[int, int] = (0, 0),
    donor_noise: float = 6.0,
    quality: int = 92,
    seed: int = 0,
) -> Forgery:
    """Paste a patch of another image; the donor carries its own (stronger) sensor noise.

    A splice brings another camera's noise and processing with it; `donor_noise` models that
    difference as extra Gaussian noise on the pasted patch only.
    """
    rng = np.random.default_rng(seed)
    out = base.astype(np.float32).copy()
    dx, dy = donor_xy
    patch = donor[dy : dy + box.height, dx : dx + box.width].astype(np.float32)
    patch += rng.normal(0, donor_noise, patch.shape)
    out[box.slices()] = patch
    rgb = np.clip(out, 0, 255).astype(np.uint8)
    return Forgery(
        "splice",
        encode(rgb, quality=quality),
        "JPEG",
        _box_mask(base.shape, box),
        f"patch from another image pasted at {box}",
    )


def make_copy_move(
    base: np.ndarray, source: Box, target_xy: tuple[int, int], *, quality: int = 95
) -> Forgery:
    """Copy a region of the image onto another place of the same image (mask = the pasted copy)."""
    out = base.copy()
    tx, ty = target_xy
    target = Box(tx, ty, source.width, source.height)
    out[target.slices()] = base[source.slices()]
    return Forgery(
        "copy_move",
        encode(out, quality=quality),
        "JPEG",
        _box_mask(base.shape, target),
        f"region {source} copied to {target}",
    )


def make_jpeg_region(
    base: np.ndarray,
    box: Box,
    *,
    region_quality: int = 55,
    final_quality: int = 92,
    shift: tuple[int, int] = (0, 0),
) -> Forgery:
    """A region that went through an extra, lower-quality JPEG save before the final save.

    With `shift` != (0, 0) the region's earlier 8x8 grid is misaligned with the final grid, as
    when a patch from another JPEG is pasted at an arbitrary offset.
    """
    sx, sy = shift
    h, w = base.shape[:2]
    shifted = np.roll(base, (sy, sx), axis=(0, 1))
    degraded = np.roll(jpeg_roundtrip(shifted, region_quality), (-sy, -sx), axis=(0, 1))
    out = base.copy()
    out[box.slices()] = degraded[box.slices()]
    assert out.shape[:2] == (h, w)
    return Forgery(
        "jpeg_region",
        encode(out, quality=final_quality),
        "JPEG",
        _box_mask(base.shape, box),
        f"region {box} saved at JPEG quality {region_quality} before the final save at "
        f"{final_quality}",
    )


def make_resampled_region(
    base: np.ndarray,
    box: Box,
    *,
    factor: float = 1.6,
    fmt: str = "PNG",
    quality: int = 95,
) -> Forgery:
    """A region replaced by an upscaled (bilinear) crop of itself: periodic resampling traces."""
    ch = max(2, round(box.height / factor))
    cw = max(2, round(box.width / factor))
    cy = box.y + (box.height - ch) // 2
    cx = box.x + (box.width - cw) // 2
    crop = Image.fromarray(base[cy : cy + ch, cx : cx + cw])
    up = np.asarray(crop.resize((box.width, box.height), Image.Resampling.BILINEAR))
    out = base.copy()
    out[box.slices()] = up
    return Forgery(
        "resampled_region",
        encode(out, fmt, quality=quality),
        fmt,
        _box_mask(base.shape, box),
        f"region {box} replaced by a x{factor:g} bilinear enlargement",
    )


def mask_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(pred, truth).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(pred, truth).sum() / union)
