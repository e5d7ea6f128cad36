"""Pixel conversions to 8-bit RGB: 16-bit and float samples, CMYK, palette and alpha.

The stored bit depth must be read before `load()` (which clears the tile list); everything is
converted the way a viewer would show it, and each lossy step is recorded in `notes`.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageChops, ImageFile

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
        # An RGB image is used as it is: convert() would copy it (185 MB at 48 MP).
        return (im if im.mode == "RGB" else im.convert("RGB")), False
    rgba = im.convert("RGBA")
    low_alpha = rgba.getchannel("A").getextrema()[0]
    if isinstance(low_alpha, (int, float)) and low_alpha < 255:
        notes.append("transparent pixels were composited on white")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB"), True


def image_array(im: Image.Image, dtype: type[np.generic] = np.uint8, rows: int = 64) -> np.ndarray:
    """The pixels of a Pillow image as a new (H, W, bands) array, (H, W) for one band, of
    `dtype`, copied `rows` rows at a time.

    `np.array(im)` goes through `tobytes()`, which holds the image twice more as bytes (its
    chunks, then their join) before numpy copies it: 3 x 137 MB for a 48 MP RGB photo on top of
    Pillow's own 185 MB, 2 x 183 MB for a float map upsampled to 48 MP. A strip at a time the
    same values land in the array with only a strip's copy.
    """
    width, height = im.size
    bands = len(im.getbands())
    out = np.empty((height, width) if bands == 1 else (height, width, bands), dtype=dtype)
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        out[top:bottom] = np.asarray(im.crop((0, top, width, bottom)), dtype=dtype)
    return out


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
