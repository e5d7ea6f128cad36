"""Protocol guards on the pixels: format alignment and seeded robustness perturbations.

Alignment (on by default, `jpeg90`): decode -> RGB -> shorter side resized to `size` (bicubic,
down or up) -> centre crop `size` x `size` -> perturbations -> re-encode WITHOUT metadata, every
image of every class the same way (JPEG q=90 4:2:0, or PNG). So a detector cannot score from
the container (format, quantisation tables, EXIF, PNG chunks) or the resolution of a class.
`size=0` keeps the geometry and only re-encodes. `none` passes the stored bytes through (a
perturbation then re-encodes as PNG, or as the JPEG of a `jpeg:Q` step).

Masks follow the same geometry (nearest neighbour) so localization is scored on aligned pixels.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageFilter

from ..learned.preprocess import clip_crop, crop_geometry

AlignMode = Literal["none", "jpeg90", "png"]
ALIGN_MODES: tuple[AlignMode, ...] = ("none", "jpeg90", "png")
Op = Callable[
    [Image.Image, "np.ndarray | None", float, random.Random],
    tuple[Image.Image, "np.ndarray | None"],
]
PERTURBATIONS: dict[str, Op] = {}


def register_perturbation(name: str) -> Callable[[Op], Op]:
    """Register `name:PARAM` ops, like experts: f(image, mask, param, rng) -> (image, mask)."""

    def deco(fn: Op) -> Op:
        PERTURBATIONS[name] = fn
        return fn

    return deco


def _mask_to(
    mask: np.ndarray | None, size: tuple[int, int], box: tuple[int, int, int, int] | None = None
) -> np.ndarray | None:
    if mask is None:
        return None
    m = Image.fromarray(mask.astype(np.uint8) * 255)
    if box is not None:
        m = m.crop(box)
    return np.asarray(m.resize(size, Image.Resampling.NEAREST)) >= 128


@register_perturbation("jpeg")
def _jpeg(
    im: Image.Image, mask: np.ndarray | None, q: float, rng: random.Random
) -> tuple[Image.Image, np.ndarray | None]:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(q), subsampling=2)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), mask


@register_perturbation("resize")
def _resize(
    im: Image.Image, mask: np.ndarray | None, f: float, rng: random.Random
) -> tuple[Image.Image, np.ndarray | None]:
    size = (max(1, round(im.width * f)), max(1, round(im.height * f)))
    return im.resize(size, Image.Resampling.BICUBIC), _mask_to(mask, size)


@register_perturbation("blur")
def _blur(
    im: Image.Image, mask: np.ndarray | None, sigma: float, rng: random.Random
) -> tuple[Image.Image, np.ndarray | None]:
    return im.filter(ImageFilter.GaussianBlur(sigma)), mask


@register_perturbation("noise")
def _noise(
    im: Image.Image, mask: np.ndarray | None, sigma: float, rng: random.Random
) -> tuple[Image.Image, np.ndarray | None]:
    gen = np.random.default_rng(rng.getrandbits(63))
    arr = np.asarray(im, dtype=np.float32) + gen.normal(0.0, sigma, (im.height, im.width, 3))
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8)), mask


@register_perturbation("crop")
def _crop(
    im: Image.Image, mask: np.ndarray | None, f: float, rng: random.Random
) -> tuple[Image.Image, np.ndarray | None]:
    """A random crop keeping share `f` of each side (seeded position)."""
    w, h = max(1, round(im.width * f)), max(1, round(im.height * f))
    x, y = rng.randint(0, im.width - w), rng.randint(0, im.height - h)
    box = (x, y, x + w, y + h)
    return im.crop(box), _mask_to(mask, (w, h), box)


@dataclass(frozen=True)
class Perturbation:
    name: str
    param: float

    @classmethod
    def parse(cls, text: str) -> Perturbation:
        name, _, value = text.partition(":")
        if name not in PERTURBATIONS or not value:
            raise ValueError(
                f"perturbation {text!r}: expected one of {sorted(PERTURBATIONS)}:VALUE"
            )
        return cls(name, float(value))

    def __str__(self) -> str:
        return f"{self.name}:{self.param:g}"


@dataclass(frozen=True)
class Preprocess:
    """How every image is turned into the bytes a system sees (recorded in the run record)."""

    align: AlignMode = "jpeg90"
    size: int = 256
    perturb: tuple[Perturbation, ...] = ()
    seed: int = 0

    def describe(self) -> str:
        steps = [f"align={self.align}", f"size={self.size or 'kept'}"]
        return " ".join(steps + [f"perturb={p}" for p in self.perturb])


def _square(
    im: Image.Image, mask: np.ndarray | None, size: int
) -> tuple[Image.Image, np.ndarray | None]:
    crop, _ = clip_crop(im, size)
    if mask is not None:
        w, h, x, y = crop_geometry(im.width, im.height, size)
        mask = _mask_to(mask, (w, h))
        assert mask is not None
        mask = mask[y : y + size, x : x + size]
    return crop, mask


def prepare(
    data: bytes, pre: Preprocess, key: str, mask: np.ndarray | None = None
) -> tuple[bytes, np.ndarray | None]:
    """The bytes a system sees for one image, and its mask in the same geometry.

    `key` (the sample id) seeds random perturbations, so reruns and resumes see the same pixels.
    """
    if pre.align == "none" and not pre.perturb:
        return data, mask
    with Image.open(io.BytesIO(data)) as src:
        im = src.convert("RGB")
    if mask is not None and mask.shape != (im.height, im.width):
        mask = _mask_to(mask, (im.width, im.height))
    if pre.align != "none" and pre.size:
        im, mask = _square(im, mask, pre.size)
    rng = random.Random(f"{pre.seed}:{key}")
    for p in pre.perturb:
        im, mask = PERTURBATIONS[p.name](im, mask, p.param, rng)
    buf = io.BytesIO()
    last_jpeg = [p for p in pre.perturb if p.name == "jpeg"][-1:] if pre.align == "none" else []
    if pre.align == "jpeg90" or last_jpeg:
        quality = int(last_jpeg[0].param) if last_jpeg else 90
        im.save(buf, "JPEG", quality=quality, subsampling=2)  # 2 = 4:2:0, no EXIF/ICC passed
    else:
        im.save(buf, "PNG")
    return buf.getvalue(), mask
