"""Partly generated composites: a region of a generated image pasted into a real photo.

They give the CLIP patch map pixel-exact ground truth for "partly generated" images, which the
dataset barely has (2 rows). A composite is made in memory, never written to disk:
both images are brought to the same size (shorter side resize + centre crop), a rectangle or an
irregular blob covering 10-40% of the area is cut from the generated donor at the same place and
pasted into the real photo, optionally with a feathered (Gaussian-blurred) seam.

Patch labels follow the encoder's geometry: the mask is cropped/resized exactly as the image is
by `clip_crop`, then a patch of the 14x14 grid is positive when the mask covers >= 50% of it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image, ImageDraw

from ..learned.preprocess import CLIP_SIZE, align_image, clip_crop, to_tensor
from .data import TrainingImage

T = TypeVar("T")

AREA_RANGE = (0.10, 0.40)
GRID = 14
# 8-bit modes Pillow converts to RGB without guessing a scale (16-bit / float modes need one).
RGB_MODES = frozenset({"RGB", "RGBA", "RGBX", "L", "LA", "P", "PA", "CMYK", "YCbCr", "1"})


@dataclass(frozen=True)
class Composite:
    image: np.ndarray  # uint8 (H, W, 3)
    mask: np.ndarray  # bool (H, W): True where the donor's pixels were pasted
    generator: str  # donor's generator id ("camera" for a real-into-real control)
    real: str  # id of the real photo (e.g. its sha256)
    donor: str  # id of the donor image
    shape: str  # "rect" or "blob"
    feather: float  # seam blur sigma in pixels; 0 = hard edge

    @property
    def area(self) -> float:
        return float(self.mask.mean())


def to_rgb(img: Image.Image | np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) from a Pillow image in an 8-bit mode or a uint8 (H, W, 3) array."""
    if isinstance(img, Image.Image):
        if img.mode not in RGB_MODES:
            raise ValueError(f"image mode {img.mode!r} is not 8-bit; convert it to RGB first")
        return np.asarray(img.convert("RGB"))
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) array, got {arr.dtype} {arr.shape}")
    return arr


def fit_to_size(img: Image.Image | np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Cover-resize (bicubic) so both sides reach `size` = (H, W), then centre crop."""
    rgb = Image.fromarray(to_rgb(img))
    h, w = size
    scale = max(h / rgb.height, w / rgb.width)
    new_w, new_h = max(w, round(rgb.width * scale)), max(h, round(rgb.height * scale))
    if (new_w, new_h) != rgb.size:
        rgb = rgb.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - w) // 2, (new_h - h) // 2
    return np.asarray(rgb.crop((left, top, left + w, top + h)))


def rect_mask(
    shape: tuple[int, int], rng: np.random.Generator, area: tuple[float, float] = AREA_RANGE
) -> np.ndarray:
    """An axis-aligned rectangle covering a share of the image drawn from `area`."""
    h, w = shape
    for _ in range(100):
        target = rng.uniform(*area) * h * w
        aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))  # width / height
        rw = min(w, max(1, round(np.sqrt(target * aspect))))
        rh = min(h, max(1, round(target / rw)))
        if area[0] <= rw * rh / (h * w) <= area[1]:
            top, left = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
            mask = np.zeros(shape, bool)
            mask[top : top + rh, left : left + rw] = True
            return mask
    raise ValueError(f"cannot fit a rectangle of area {area} into {shape}")


def _star(
    centre: tuple[float, float], radii: np.ndarray, scale: float, shape: tuple[int, int]
) -> np.ndarray:
    angles = np.linspace(0.0, 2 * np.pi, len(radii), endpoint=False)
    cy, cx = centre
    pts = [
        (cx + scale * r * np.cos(a), cy + scale * r * np.sin(a))
        for r, a in zip(radii, angles, strict=True)
    ]
    canvas = Image.new("1", (shape[1], shape[0]), 0)
    ImageDraw.Draw(canvas).polygon(pts, fill=1)
    return np.asarray(canvas, dtype=bool)


def blob_mask(
    shape: tuple[int, int], rng: np.random.Generator, area: tuple[float, float] = AREA_RANGE
) -> np.ndarray:
    """An irregular star-shaped blob; its scale is bisected until it covers the drawn share.

    Scaling a star-shaped polygon about its centre gives nested sets, so the clipped area grows
    monotonically with the scale and bisection converges."""
    h, w = shape
    target = rng.uniform(*area)
    k = int(rng.integers(10, 18))
    noise = rng.normal(0.0, 1.0, k)
    smooth = (noise + np.roll(noise, 1) + np.roll(noise, -1)) / 3.0  # neighbouring vertices agree
    radii = np.clip(1.0 + 0.45 * smooth, 0.35, 1.8)
    centre = (rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w)
    lo, hi = 0.0, 2.0 * float(np.hypot(h, w))
    best = None
    for _ in range(40):
        mid = (lo + hi) / 2
        mask = _star(centre, radii, mid, shape)
        share = float(mask.mean())
        if area[0] <= share <= area[1]:
            best = mask
            if abs(share - target) < 0.005:
                break
        lo, hi = (mid, hi) if share < target else (lo, mid)
    if best is None:
        raise ValueError(f"cannot fit a blob of area {area} into {shape}")
    return best


def paste(
    real: np.ndarray, donor: np.ndarray, mask: np.ndarray, feather: float = 0.0
) -> np.ndarray:
    """Donor pixels where `mask`, real pixels elsewhere; `feather` > 0 blurs the seam (sigma px)."""
    real, donor = to_rgb(real), to_rgb(donor)
    if real.shape != donor.shape:
        raise ValueError(f"real {real.shape} and donor {donor.shape} differ; use fit_to_size")
    if mask.shape != real.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {real.shape[:2]}")
    alpha = mask.astype(np.float64)
    if feather > 0:
        from scipy.ndimage import gaussian_filter

        alpha = gaussian_filter(alpha, sigma=feather, mode="nearest")
    alpha = alpha[..., None]
    out = alpha * donor.astype(np.float64) + (1.0 - alpha) * real.astype(np.float64)
    return np.asarray(np.clip(np.rint(out), 0, 255), dtype=np.uint8)


def make_composite(
    real: Image.Image | np.ndarray,
    donor: Image.Image | np.ndarray,
    rng: np.random.Generator,
    *,
    size: tuple[int, int] = (256, 256),
    area: tuple[float, float] = AREA_RANGE,
    shape: str | None = None,
    feather_prob: float = 0.5,
    feather_sigma: tuple[float, float] = (1.5, 4.0),
    generator: str = "",
    real_id: str = "",
    donor_id: str = "",
) -> Composite:
    """Bring both images to `size`, cut a rect/blob (random if `shape` is None) from the donor
    and paste it into the real photo; the seam is feathered with probability `feather_prob`."""
    if not 0.0 < area[0] <= area[1] < 1.0:
        raise ValueError(f"area range {area} must satisfy 0 < lo <= hi < 1")
    base, src = fit_to_size(real, size), fit_to_size(donor, size)
    kind = shape or ("rect" if rng.random() < 0.5 else "blob")
    if kind not in ("rect", "blob"):
        raise ValueError(f"unknown mask shape {kind!r} (rect or blob)")
    mask = (rect_mask if kind == "rect" else blob_mask)(size, rng, area)
    sigma = float(rng.uniform(*feather_sigma)) if rng.random() < feather_prob else 0.0
    image = paste(base, src, mask, sigma)
    return Composite(image, mask, generator, real_id, donor_id, kind, round(sigma, 3))


# -- mask geometry as the encoder sees it ------------------------------------------------------
def mask_to_crop(mask: np.ndarray, size: int = CLIP_SIZE) -> np.ndarray:
    """Mask (H, W) mapped exactly like the image by `clip_crop`: float (size, size) in [0, 1]."""
    crop, _ = clip_crop(Image.fromarray(mask.astype(np.float32), mode="F"), size)
    return np.clip(np.asarray(crop, dtype=np.float32), 0.0, 1.0)


def patch_coverage(mask: np.ndarray, grid: int = GRID, size: int = CLIP_SIZE) -> np.ndarray:
    """Share (grid, grid) of each encoder patch covered by the mask (given at image size)."""
    crop = mask_to_crop(mask, size)
    if size % grid == 0:
        step = size // grid
        return np.asarray(crop.reshape(grid, step, grid, step).mean(axis=(1, 3)), np.float32)
    im = Image.fromarray(crop, mode="F").resize((grid, grid), Image.Resampling.BOX)
    return np.asarray(im, dtype=np.float32)


def patch_labels(mask: np.ndarray, grid: int = GRID, threshold: float = 0.5) -> np.ndarray:
    """Bool (grid, grid): a patch is 'generated' when the mask covers >= `threshold` of it."""
    return patch_coverage(mask, grid) >= threshold


# -- encoding ----------------------------------------------------------------------------------
def encode_images(
    images: Sequence[np.ndarray], encoder: Any, batch: int = 16, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) unit embeddings and (N, 196, D) unit patch embeddings (float32) of uint8 images,
    format-aligned exactly as in training and in `ClipDetectorModel.predict`."""
    embeds, patches = [], []
    for start in _bar(range(0, len(images), batch), progress, f"encoding (batches of {batch})"):
        chunk = [
            Image.fromarray(align_image(Image.fromarray(i))) for i in images[start : start + batch]
        ]
        out = encoder.encode(to_tensor(chunk), tokens=True)
        if out.tokens is None:
            raise ValueError("this encoder exposes no patch tokens; no patch map")
        embeds.append(_unit(out.embeds))
        patches.append(_unit(encoder.project_patches(out.tokens)))
    return np.concatenate(embeds), np.concatenate(patches)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12), np.float32)


# -- composites from a manifest ----------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    """One planned composite: `donor` pasted into `real` with the randomness of `seed`."""

    real: TrainingImage
    donor: TrainingImage  # a generated image, or a real photo for a real-into-real control
    seed: tuple[int, ...]

    @property
    def control(self) -> bool:
        return self.donor.label == "real"


def real_folds(reals: Sequence[TrainingImage], folds: int = 5, seed: int = 0) -> dict[str, int]:
    """sha256 -> fold, dealt round-robin per source after a seeded shuffle (every fold gets
    every source of real photos)."""
    out: dict[str, int] = {}
    rng = random.Random(seed)
    for source in sorted({s.source for s in reals}):
        rows = sorted({s.sha256 for s in reals if s.source == source})
        rng.shuffle(rows)
        for i, sha in enumerate(rows):
            out[sha] = (i + len(out)) % folds
    return out


def generator_folds(donors: Sequence[TrainingImage], folds: int = 5) -> dict[str, int]:
    """Generator -> the real-photo fold its held-out composites are made with."""
    return {g: i % folds for i, g in enumerate(sorted({d.generator for d in donors}))}


def plan_pairs(
    reals: Sequence[TrainingImage],
    donors: Sequence[TrainingImage],
    *,
    seed: int = 0,
    per_donor: int = 2,
    controls_per_fold: int = 40,
    folds: int = 5,
) -> list[Pair]:
    """Seeded composite plan. Each donor's first composite uses a real photo from its
    generator's fold (held-out test pairs: generator g x real fold of g), the others any real.
    Controls paste a real photo into another real photo of the same fold."""
    rng = random.Random(seed)
    rfold = real_folds(reals, folds, seed)
    gfold = generator_folds(donors, folds)
    by_fold = [
        sorted((s for s in reals if rfold[s.sha256] == f), key=lambda s: s.sha256)
        for f in range(folds)
    ]
    every = sorted(reals, key=lambda s: s.sha256)
    pairs: list[Pair] = []
    for donor in sorted(donors, key=lambda s: s.sha256):
        for k in range(per_donor):
            pool = by_fold[gfold[donor.generator]] if k == 0 else every
            pairs.append(Pair(rng.choice(pool), donor, (seed, len(pairs))))
    for pool in by_fold:
        for _ in range(controls_per_fold if len(pool) > 1 else 0):
            base, src = rng.sample(pool, 2)
            pairs.append(Pair(base, src, (seed, len(pairs))))
    return pairs


def render(pair: Pair, size: int = 256) -> Composite:
    """Load both files and make the planned composite (deterministic in `pair.seed`)."""
    with Image.open(pair.real.path) as real, Image.open(pair.donor.path) as donor:
        return make_composite(
            real,
            donor,
            np.random.default_rng(list(pair.seed)),
            size=(size, size),
            generator=pair.donor.generator,
            real_id=pair.real.sha256,
            donor_id=pair.donor.sha256,
        )


def composite_rows(
    composites: Sequence[Composite], patches: np.ndarray, per_image: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Training rows from encoded composites: `per_image` random patches of each, labelled
    by mask coverage >= 0.5, grouped by the real photo (its composites never straddle folds)."""
    rng = np.random.default_rng(seed)
    xs, ys, groups = [], [], []
    for c, p in zip(composites, patches, strict=True):
        labels = patch_labels(c.mask).ravel()
        idx = rng.choice(len(labels), size=min(per_image, len(labels)), replace=False)
        xs.append(p[idx])
        ys.append(labels[idx].astype(int))
        groups += ["file:" + c.real] * len(idx)
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys), groups


@dataclass
class PatchDataset:
    x: np.ndarray  # (N, D) unit patch embeddings
    y: np.ndarray  # (N,) 1 = generated patch
    groups: list[str]  # split units for group-aware folds
    samples: list[TrainingImage]  # every manifest row used (licences for the model card)


def composite_patch_dataset(
    manifest: Path,
    *,
    seed: int = 0,
    per_donor: int = 2,
    controls_per_fold: int = 40,
    size: int = 256,
    per_image: int = 49,
    whole_images: bool = True,
    encoder: Any = None,
    progress: bool = False,
) -> PatchDataset:
    """Patch rows for a composite-trained patch head, from a manifest (CIFAKE excluded).

    Rows: `per_image` patches of every composite (label = mask coverage >= 0.5; real-into-real
    controls are all 0, so a seam alone is not 'generated'), plus, with `whole_images`, the
    cached clip-patch rows of every untouched real (0) and generated (1) image."""
    from ..learned.encoder import ClipEncoder
    from ..models.sources import encoder_path
    from .data import read_manifest, select
    from .features import clip_normalise, extract

    samples = select(read_manifest(manifest), "generated")
    reals = [s for s in samples if s.label == "real"]
    donors = [s for s in samples if s.label == "fake"]
    if not reals or not donors:
        raise ValueError(f"manifest {manifest} needs real and generated (fake) rows")
    pairs = plan_pairs(
        reals, donors, seed=seed, per_donor=per_donor, controls_per_fold=controls_per_fold
    )
    encoder = encoder or ClipEncoder(encoder_path())
    composites = [render(p, size) for p in _bar(pairs, progress, "composites")]
    _, patches = encode_images([c.image for c in composites], encoder, progress=progress)
    x, y, groups = composite_rows(composites, patches, per_image, seed)
    if whole_images:
        # cached rows are the sampled patches concatenated: normalise each patch, not the row
        flat = extract(samples, "clip-patch", encoder=encoder, progress=progress)
        whole = clip_normalise(flat.astype(np.float64).reshape(len(samples), -1, patches.shape[-1]))
        per = whole.shape[1]
        x = np.concatenate([x, whole.reshape(-1, whole.shape[-1])])
        y = np.concatenate([y, np.repeat([int(s.label == "fake") for s in samples], per)])
        groups += [s.group for s in samples for _ in range(per)]
    return PatchDataset(x, y, groups, samples)


def _bar(items: Sequence[T], progress: bool, desc: str) -> Iterable[T]:
    """`items`, with a progress bar that advances as the caller consumes them."""
    if not progress:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img")
