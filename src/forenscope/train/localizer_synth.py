"""Seeded, realistic forgeries of straight-from-camera JPEGs for training the tamper localizer.

The base is a crop of a camera JPEG decoded at its native resolution, so untouched pixels keep
the camera's demosaicing noise and JPEG grid (crops start on the 8 px grid most of the time),
exactly like the background of a real forgery. One manipulation is drawn:

- splice: an object-shaped region of *another* camera photo with its own processing chain,
  half the time with its noise level and colours matched to the base (a careful forger);
- copy_move: a region of the same photo, rotated (+-30 deg) and scaled (0.7-1.3);
- jpeg_region: a region replaced by its own re-save at another quality, on the aligned grid
  or a shifted one (aligned / non-aligned double JPEG);
- resample: a region warped in place (scale 0.8-1.25, small rotation): its camera grid is gone;
- removal: an object-shaped hole filled by OpenCV inpainting (a stand-in for generative fill),
  half the time with grain added to hide its smoothness;
- gen_fill: content of an AI-generated image (fake/ in the manifest) pasted with a soft mask,
  sometimes over most of the frame (as "replace background" tools do);
- retouch: blur, sharpen, noise or contrast on a region;
- none: an untouched control.

Then a final save, as a user or a platform would: JPEG q 70-98, PNG, or resize 0.5-1.0 + JPEG
q 70-90 ("laundered"; the mask is resized with the image). Training-only (OpenCV).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from ..residual import IMMERKAER

KINDS = ("splice", "copy_move", "jpeg_region", "resample", "removal", "gen_fill", "retouch", "none")
KIND_P = (0.19, 0.12, 0.12, 0.09, 0.12, 0.14, 0.06, 0.16)
CROP = (256, 768)


@dataclass(frozen=True)
class SyntheticForgery:
    rgb: np.ndarray  # uint8 (H, W, 3) as decoded after the final save
    mask: np.ndarray  # float32 (H, W) in [0, 1]: share of each pixel that was replaced
    kind: str
    chain: str  # what was done, for debugging and the per-kind table


def jpeg(rgb: np.ndarray, quality: int, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """JPEG round trip; a non-zero `shift` puts the 8x8 grid at another phase."""
    sy, sx = shift
    src = np.roll(rgb, (sy, sx), axis=(0, 1)) if shift != (0, 0) else rgb
    buf = io.BytesIO()
    Image.fromarray(src).save(buf, "JPEG", quality=int(quality), subsampling=2)
    out = np.asarray(Image.open(buf).convert("RGB"))
    return np.roll(out, (-sy, -sx), axis=(0, 1)) if shift != (0, 0) else out


def resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=interp))


def crop(photo: np.ndarray, rng: np.random.Generator, lo: int, hi: int) -> np.ndarray:
    """A crop with sides in [lo, hi]; its corner sits on the 8 px grid 70% of the time."""
    h, w = photo.shape[:2]
    ch = int(rng.integers(min(lo, h), min(hi, h) + 1))
    cw = int(rng.integers(min(lo, w), min(hi, w) + 1))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    if rng.random() < 0.7:
        y, x = y - y % 8, x - x % 8
    return np.ascontiguousarray(photo[y : y + ch, x : x + cw])


def noise_sigma(rgb: np.ndarray) -> float:
    """Noise sigma of the luminance from Immerkaer's residual (unit gain on white noise)."""
    y = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    r = ndimage.correlate(y, IMMERKAER, mode="reflect")
    return float(np.median(np.abs(r)) / 0.6745)  # robust to edges, exact for Gaussian noise


def object_mask(shape: tuple[int, int], rng: np.random.Generator, area: float) -> np.ndarray:
    """An object-like region covering about `area` of the frame: blob, polygon or ellipse."""
    import cv2

    h, w = shape
    style = rng.choice(["blob", "polygon", "ellipse"], p=[0.45, 0.35, 0.2])
    if style == "blob":
        field = ndimage.gaussian_filter(rng.normal(size=(h, w)).astype(np.float32), min(h, w) / 10)
        cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
        yy, xx = np.mgrid[0:h, 0:w]
        field -= 0.2 * np.hypot((yy - cy) / h, (xx - cx) / w) * field.std()
        lab, n = ndimage.label(field >= np.quantile(field, 1 - area))
        if n:
            sizes = ndimage.sum(np.ones_like(lab), lab, range(1, n + 1))
            return np.asarray(lab == 1 + int(np.argmax(sizes)), dtype=bool)
    mask = np.zeros((h, w), np.uint8)
    r = np.sqrt(area * h * w / np.pi)
    cy, cx = (
        rng.uniform(min(r, h / 2), max(h - r, h / 2)),
        rng.uniform(min(r, w / 2), max(w - r, w / 2)),
    )
    if style == "polygon":
        k = int(rng.integers(5, 12))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = r * rng.uniform(0.6, 1.4, k)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)
        cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    else:
        axes = (int(r * rng.uniform(0.7, 1.4)), int(r * rng.uniform(0.7, 1.4)))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask.astype(bool)


def soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    """The alpha a forger pastes with: the mask, its edge blurred over `sigma` px."""
    alpha = mask.astype(np.float32)
    return ndimage.gaussian_filter(alpha, sigma) if sigma > 0 else alpha


def blend(base: np.ndarray, patch: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    out = base.astype(np.float32) * (1 - a) + patch.astype(np.float32) * a
    return np.asarray(np.clip(out + 0.5, 0, 255), dtype=np.uint8)


def match_to(patch: np.ndarray, base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A careful forger's touch-up: colour statistics and noise level brought to the base's."""
    x = patch.astype(np.float32)
    mu_p, sd_p = x.mean(axis=(0, 1)), x.std(axis=(0, 1)) + 1.0
    mu_b, sd_b = base.reshape(-1, 3).mean(0), base.reshape(-1, 3).std(0) + 1.0
    k = float(rng.uniform(0.5, 1.0))  # partial colour match
    x = (x - mu_p) * (1 - k + k * sd_b / sd_p) + (1 - k) * mu_p + k * mu_b
    have, want = noise_sigma(patch), noise_sigma(base)
    if want > have + 0.2:
        x += rng.normal(0.0, np.sqrt(want**2 - have**2), x.shape).astype(np.float32)
    elif have > want + 0.5:
        x = ndimage.gaussian_filter(x, (min(1.5, 0.3 * (have - want)),) * 2 + (0,))
    return np.asarray(np.clip(x + 0.5, 0, 255), dtype=np.uint8)


def other_chain(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Another camera or editor's history: resize, JPEG on any grid, blur, gamma, colour."""
    steps = []
    f = float(rng.uniform(0.5, 1.5))
    if abs(f - 1) > 0.05:
        img = resize(img, f)
        steps.append(f"resize x{f:.2f}")
    if rng.random() < 0.6:
        q = int(rng.integers(50, 96))
        img = jpeg(img, q, (int(rng.integers(0, 8)), int(rng.integers(0, 8))))
        steps.append(f"jpeg q{q}")
    x: np.ndarray = img.astype(np.float32)
    if rng.random() < 0.25:
        x = ndimage.gaussian_filter(x, (float(rng.uniform(0.4, 1.2)),) * 2 + (0,))
        steps.append("blur")
    if rng.random() < 0.4:
        x = 255 * (np.clip(x, 0, 255) / 255) ** float(rng.uniform(0.8, 1.25))
        steps.append("gamma")
    return np.clip(x + 0.5, 0, 255).astype(np.uint8), ", ".join(steps)


def fit_patch(src: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A (h, w) window of `src`, upscaled first when `src` is too small to cover it."""
    h, w = shape
    if src.shape[0] < h or src.shape[1] < w:
        src = resize(src, max(h / src.shape[0], w / src.shape[1]) * 1.01)
    y = int(rng.integers(0, src.shape[0] - h + 1))
    x = int(rng.integers(0, src.shape[1] - w + 1))
    return np.ascontiguousarray(src[y : y + h, x : x + w])


def splice(
    base: np.ndarray, donor: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    patch, chain = other_chain(crop(donor, rng, 256, 1024), rng)
    patch = fit_patch(patch, base.shape[:2], rng)
    if rng.random() < 0.5:
        patch, chain = match_to(patch, base, rng), chain + ", matched"
    alpha = soft(mask, float(rng.uniform(0.5, 2.5)) if rng.random() < 0.6 else 0.0)
    return blend(base, patch, alpha), alpha, f"splice ({chain})"


def copy_move(
    base: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    import cv2

    h, w = base.shape[:2]
    ang = float(rng.uniform(-30, 30)) if rng.random() < 0.6 else 0.0
    sc = float(rng.uniform(0.7, 1.3)) if rng.random() < 0.6 else 1.0
    m = cv2.getRotationMatrix2D((w / 2, h / 2), ang, sc)
    m[:, 2] += [
        rng.uniform(0.15, 0.5) * w * rng.choice([-1, 1]),
        rng.uniform(0.15, 0.5) * h * rng.choice([-1, 1]),
    ]
    moved = cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    alpha = soft(mask, float(rng.uniform(0.5, 2.0)) if rng.random() < 0.5 else 0.0)
    return blend(base, moved, alpha), alpha, f"copy-move (rot {ang:.0f}, scale {sc:.2f})"


def jpeg_region(
    base: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    q = int(rng.integers(40, 91))
    aligned = rng.random() < 0.5
    shift = (0, 0) if aligned else (int(rng.integers(1, 8)), int(rng.integers(0, 8)))
    alpha = soft(mask, 1.0 if rng.random() < 0.3 else 0.0)
    out = blend(base, jpeg(base, q, shift), alpha)
    return out, alpha, f"region q{q} {'aligned' if aligned else 'shifted'}"


def resample(
    base: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    import cv2

    ys, xs = np.nonzero(mask)
    cy, cx = float(ys.mean()), float(xs.mean())
    sc = float(rng.choice([-1, 1]) * rng.uniform(0.05, 0.25)) + 1.0
    m = cv2.getRotationMatrix2D((cx, cy), float(rng.uniform(-5, 5)), sc)
    h, w = base.shape[:2]
    warped = cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    alpha = soft(mask, float(rng.uniform(0.5, 2.0)))
    return blend(base, warped, alpha), alpha, f"resampled x{sc:.2f}"


def removal(
    base: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    import cv2

    flag = cv2.INPAINT_TELEA if rng.random() < 0.5 else cv2.INPAINT_NS
    hole = ndimage.binary_dilation(mask, iterations=2).astype(np.uint8)
    out = np.asarray(cv2.inpaint(base, hole, int(rng.integers(3, 9)), flag))
    alpha = hole.astype(np.float32)
    how = "inpaint"
    if rng.random() < 0.5:  # grain over the fill, as retouchers do to hide its smoothness
        grain = rng.normal(0.0, max(0.5, noise_sigma(base)), out.shape).astype(np.float32)
        out = np.clip(out + grain * alpha[..., None] + 0.5, 0, 255).astype(np.uint8)
        how += " + grain"
    return out, alpha, how


def gen_fill(
    base: np.ndarray, generated: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    h, w = base.shape[:2]
    scale = float(rng.uniform(0.6, 1.6)) * max(h, w) / max(generated.shape[:2])
    patch = fit_patch(resize(generated, scale), (h, w), rng)
    if rng.random() < 0.5:
        patch = match_to(patch, base, rng)
    alpha = soft(mask, float(rng.uniform(1.0, 6.0)))
    return blend(base, patch, alpha), alpha, f"generated fill x{scale:.2f}"


def retouch(
    base: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    how = str(rng.choice(["blur", "sharpen", "noise", "contrast"]))
    x: np.ndarray = base.astype(np.float32)
    if how == "blur":
        x = ndimage.gaussian_filter(x, (float(rng.uniform(1.0, 2.5)),) * 2 + (0,))
    elif how == "sharpen":
        x = x + float(rng.uniform(0.5, 1.5)) * (x - ndimage.gaussian_filter(x, (1.5, 1.5, 0)))
    elif how == "noise":
        x = x + rng.normal(0, rng.uniform(3, 8), x.shape)
    else:
        x = (x - 128) * rng.uniform(0.75, 1.3) + 128 + rng.uniform(-20, 20)
    alpha = soft(mask, float(rng.uniform(1.0, 4.0)))
    out = blend(base, np.clip(x + 0.5, 0, 255).astype(np.uint8), alpha)
    return out, alpha, f"retouch {how}"


def final_save(
    rgb: np.ndarray, alpha: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, str]:
    """JPEG (50%), PNG (25%) or laundering: resize 0.5-1.0 then JPEG 70-90 (25%)."""
    u = rng.random()
    if u < 0.5:
        q = int(rng.integers(70, 99))
        return jpeg(rgb, q), alpha, f"saved q{q}"
    if u < 0.75:
        return rgb, alpha, "saved png"
    f = float(rng.uniform(0.5, 1.0))
    small = resize(rgb, f)
    a = np.asarray(
        Image.fromarray(alpha.astype(np.float32), mode="F").resize(
            (small.shape[1], small.shape[0]), Image.Resampling.BILINEAR
        )
    )
    q = int(rng.integers(70, 91))
    return jpeg(small, q), np.clip(a, 0.0, 1.0), f"laundered x{f:.2f} q{q}"


def make_sample(
    photo: np.ndarray,
    donor: np.ndarray,
    generated: np.ndarray,
    rng: np.random.Generator,
    kind: str | None = None,
) -> SyntheticForgery:
    """One forgery (or untouched control) of a crop of the camera JPEG `photo`."""
    base = crop(photo, rng, *CROP)
    chain = []
    if rng.random() < 0.15:  # the forger downsized the photo first: no camera grid left
        f = float(rng.uniform(0.5, 0.9))
        base, chain = resize(base, f), [f"pre-resize x{f:.2f}"]
    kind = kind or str(rng.choice(KINDS, p=KIND_P))
    large = kind == "gen_fill" and rng.random() < 0.2
    area = float(rng.uniform(0.4, 0.8) if large else rng.uniform(0.02, 0.3))
    if kind == "removal":
        area = min(area, 0.12)
    mask = object_mask(base.shape[:2], rng, area)
    if kind == "none" or not mask.any():
        out, alpha, what = base, np.zeros(base.shape[:2], np.float32), "untouched"
        kind = "none"
    elif kind == "splice":
        out, alpha, what = splice(base, donor, mask, rng)
    elif kind == "copy_move":
        out, alpha, what = copy_move(base, mask, rng)
    elif kind == "jpeg_region":
        out, alpha, what = jpeg_region(base, mask, rng)
    elif kind == "resample":
        out, alpha, what = resample(base, mask, rng)
    elif kind == "removal":
        out, alpha, what = removal(base, mask, rng)
    elif kind == "gen_fill":
        out, alpha, what = gen_fill(base, generated, mask, rng)
    else:
        out, alpha, what = retouch(base, mask, rng)
    out, alpha, saved = final_save(out, alpha, rng)
    return SyntheticForgery(out, alpha.astype(np.float32), kind, "; ".join([*chain, what, saved]))
