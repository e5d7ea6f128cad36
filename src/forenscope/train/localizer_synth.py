"""Seeded synthetic forgeries of real photos, with irregular masks and varied processing chains.

Training-only (uses OpenCV). One call to `make_sample` draws: a crop of a real photo (optionally
JPEG-compressed first, as a camera would), an irregular mask, one manipulation (splice from
another photo with its own processing chain, copy-move with scale/rotation, a region re-saved at
another JPEG quality, a local edit such as inpainting or blur, or nothing at all) and a final save
as JPEG of random quality or lossless. Everything comes from one `numpy.random.Generator`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

KINDS = ("splice", "copy_move", "jpeg_region", "local_edit", "none")
KIND_P = (0.38, 0.2, 0.17, 0.1, 0.15)


@dataclass(frozen=True)
class Sample:
    rgb: np.ndarray  # uint8 (H, W, 3) as decoded after the final save
    mask: np.ndarray  # bool (H, W), True = manipulated
    kind: str
    chain: str  # what was done, for debugging


def jpeg(rgb: np.ndarray, quality: int, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """JPEG round trip; a non-zero `shift` puts the 8x8 grid at another phase."""
    sy, sx = shift
    src = np.roll(rgb, (sy, sx), axis=(0, 1)) if shift != (0, 0) else rgb
    buf = io.BytesIO()
    Image.fromarray(src).save(buf, "JPEG", quality=int(quality), subsampling=2)
    out = np.asarray(Image.open(buf).convert("RGB"))
    return np.roll(out, (-sy, -sx), axis=(0, 1)) if shift != (0, 0) else out


def random_crop(
    photo: np.ndarray, rng: np.random.Generator, lo: int = 192, hi: int = 640
) -> np.ndarray:
    """A random crop whose sides are in [lo, hi] (bounded by the photo)."""
    h, w = photo.shape[:2]
    ch = int(rng.integers(min(lo, h), min(hi, h) + 1))
    cw = int(rng.integers(min(lo, w), min(hi, w) + 1))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return np.ascontiguousarray(photo[y : y + ch, x : x + cw])


def random_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """An irregular region of 2-35% of the image: a smooth blob, a polygon or an ellipse/box."""
    import cv2

    h, w = shape
    area = float(rng.uniform(0.02, 0.35))
    style = rng.choice(["blob", "polygon", "ellipse"], p=[0.45, 0.35, 0.2])
    mask = np.zeros((h, w), np.uint8)
    if style == "blob":
        field = ndimage.gaussian_filter(rng.normal(size=(h, w)).astype(np.float32), min(h, w) / 10)
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
        yy, xx = np.mgrid[0:h, 0:w]
        field -= 0.02 * np.hypot((yy - cy) / h, (xx - cx) / w) * 10 * field.std()
        thr = np.quantile(field, 1 - area)
        lab, n = ndimage.label(field >= thr)
        if n:
            sizes = ndimage.sum(np.ones_like(lab), lab, range(1, n + 1))
            return np.asarray(lab == 1 + int(np.argmax(sizes)), dtype=bool)
    r = np.sqrt(area * h * w / np.pi)
    cy, cx = rng.uniform(r, max(r + 1, h - r)), rng.uniform(r, max(r + 1, w - r))
    if style == "polygon":
        k = int(rng.integers(5, 12))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = r * rng.uniform(0.6, 1.4, k)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    elif rng.random() < 0.5:
        ax = (int(r * rng.uniform(0.7, 1.4)), int(r * rng.uniform(0.7, 1.4)))
        cv2.ellipse(mask, (int(cx), int(cy)), ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        bh, bw = int(r * rng.uniform(1.2, 2.2)), int(r * rng.uniform(1.2, 2.2))
        y0, x0 = int(max(0, cy - bh / 2)), int(max(0, cx - bw / 2))
        mask[y0 : y0 + bh, x0 : x0 + bw] = 1
    return mask.astype(bool)


def _blend(
    base: np.ndarray, patch: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    alpha = mask.astype(np.float32)
    if rng.random() < 0.5:  # a feathered edge, as a careful forger would use
        alpha = ndimage.gaussian_filter(alpha, float(rng.uniform(0.5, 2.0)))
    a = alpha[..., None]
    out = base.astype(np.float32) * (1 - a) + patch.astype(np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def process_chain(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Another camera/editor's processing: resize, JPEG, blur, gamma, noise, colour balance."""
    import cv2

    steps = []
    f = float(rng.uniform(0.5, 1.5))
    if abs(f - 1) > 0.05:
        img = cv2.resize(
            img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
        )
        steps.append(f"resize x{f:.2f}")
    if rng.random() < 0.6:
        q = int(rng.integers(50, 96))
        img = jpeg(img, q, (int(rng.integers(0, 8)), int(rng.integers(0, 8))))
        steps.append(f"jpeg q{q}")
    x: np.ndarray = img.astype(np.float32)
    if rng.random() < 0.3:
        s = float(rng.uniform(0.4, 1.2))
        x = ndimage.gaussian_filter(x, (s, s, 0))
        steps.append(f"blur {s:.1f}")
    if rng.random() < 0.5:
        g = float(rng.uniform(0.8, 1.25))
        x = 255 * (x / 255) ** g
        steps.append(f"gamma {g:.2f}")
    if rng.random() < 0.5:
        x = x * rng.uniform(0.9, 1.1, 3).astype(np.float32)
        steps.append("colour gains")
    if rng.random() < 0.5:
        s = float(rng.uniform(1.0, 6.0))
        x = x + rng.normal(0, s, x.shape).astype(np.float32)
        steps.append(f"noise {s:.1f}")
    return np.clip(x + 0.5, 0, 255).astype(np.uint8), ", ".join(steps)


def splice(
    base: np.ndarray, donor: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    import cv2

    patch, chain = process_chain(donor, rng)
    h, w = base.shape[:2]
    if patch.shape[0] < h or patch.shape[1] < w:  # tile up by resizing: a splice fills the mask
        s = max(h / patch.shape[0], w / patch.shape[1]) * 1.01
        patch = cv2.resize(patch, None, fx=s, fy=s, interpolation=cv2.INTER_LINEAR)
        chain += f", upscale x{s:.2f}"
    y = int(rng.integers(0, patch.shape[0] - h + 1))
    x = int(rng.integers(0, patch.shape[1] - w + 1))
    return _blend(base, patch[y : y + h, x : x + w], mask, rng), f"splice ({chain})"


def copy_move(
    base: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    import cv2

    h, w = base.shape[:2]
    ang = float(rng.uniform(-30, 30)) if rng.random() < 0.5 else 0.0
    sc = float(rng.uniform(0.8, 1.25)) if rng.random() < 0.5 else 1.0
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, sc)
    m[:, 2] += [
        rng.uniform(0.15, 0.5) * w * rng.choice([-1, 1]),
        rng.uniform(0.15, 0.5) * h * rng.choice([-1, 1]),
    ]
    moved = cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return _blend(base, moved, mask, rng), f"copy-move (rot {ang:.0f}, scale {sc:.2f})"


def jpeg_region(
    base: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    q = int(rng.integers(40, 91))
    shift = (0, 0) if rng.random() < 0.5 else (int(rng.integers(0, 8)), int(rng.integers(0, 8)))
    return _blend(base, jpeg(base, q, shift), mask, rng), f"region re-saved q{q} shift {shift}"


def local_edit(
    base: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    import cv2

    how = str(rng.choice(["inpaint", "blur", "noise", "contrast"]))
    if how == "inpaint":
        out = cv2.inpaint(base, mask.astype(np.uint8), 5, cv2.INPAINT_TELEA)
        return out, "inpainted (Telea)"
    x: np.ndarray = base.astype(np.float32)
    if how == "blur":
        x = ndimage.gaussian_filter(x, (1.5, 1.5, 0))
    elif how == "noise":
        x = x + rng.normal(0, rng.uniform(3, 8), x.shape)
    else:
        x = (x - 128) * rng.uniform(0.75, 1.3) + 128 + rng.uniform(-20, 20)
    return _blend(base, np.clip(x + 0.5, 0, 255).astype(np.uint8), mask, rng), f"local {how}"


def make_sample(photo: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> Sample:
    """One forgery (or an untouched control) of a crop of `photo`; `donor` feeds splices."""
    base = random_crop(photo, rng)
    chain = []
    if rng.random() < 0.6:  # most photos were JPEGs from the camera before anyone edited them
        q = int(rng.integers(70, 99))
        base = jpeg(base, q)
        chain.append(f"camera jpeg q{q}")
    kind = str(rng.choice(KINDS, p=KIND_P))
    mask = random_mask(base.shape[:2], rng)
    if kind == "local_edit" and mask.mean() > 0.12:
        mask = ndimage.binary_erosion(mask, iterations=max(1, int(min(mask.shape) * 0.05)))
    if kind == "splice":
        out, what = splice(base, donor, mask, rng)
    elif kind == "copy_move":
        out, what = copy_move(base, mask, rng)
    elif kind == "jpeg_region":
        out, what = jpeg_region(base, mask, rng)
    elif kind == "local_edit":
        out, what = local_edit(base, mask, rng)
    else:
        out, what, mask = base, "untouched", np.zeros(base.shape[:2], bool)
    chain.append(what)
    if rng.random() < 0.55:
        q = int(rng.integers(70, 101))
        out = jpeg(out, q)
        chain.append(f"saved jpeg q{q}")
    else:
        chain.append("saved lossless")
    return Sample(out, mask, kind, "; ".join(chain))
