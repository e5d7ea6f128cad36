"""Social-media-style "laundering" of an image: a random downscale, then a random JPEG re-save.

Used as training augmentation (applied to both classes identically, *before* the format
alignment and the encoder's preprocessing, exactly like an image a user downloads from a
platform) and by the benchmark to score a laundered copy of each held-out image. Every copy is
seeded by (seed, copy, the file's sha256), so it does not depend on the order of the images or
on which other images are processed, and the same command gives the same pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

_RESAMPLERS = (Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class Launder:
    """One seeded laundered copy: scale ~ U[scale], then JPEG 4:2:0 at quality ~ U{quality}."""

    quality: tuple[int, int] = (70, 95)
    scale: tuple[float, float] = (0.5, 1.0)
    seed: int = 0
    copy: int = 1

    @property
    def tag(self) -> str:
        """Identifies the pixels this copy produces (feature-cache key suffix)."""
        q, s = self.quality, self.scale
        return f"launder-q{q[0]}-{q[1]}-s{s[0]:g}-{s[1]:g}-seed{self.seed}-copy{self.copy}"

    def rng(self, sha256: str) -> np.random.Generator:
        digest = int(sha256[:15], 16) if sha256 else 0
        return np.random.default_rng([self.seed, self.copy, digest])


# the training augmentation (copies 1..k) and the benchmark's laundered test copy
TRAIN_LAUNDER = Launder(quality=(70, 95), scale=(0.5, 1.0))
BENCH_LAUNDER = Launder(quality=(70, 90), scale=(0.5, 1.0), seed=20261126, copy=0)


def launder_bytes(img: Image.Image, spec: Launder, sha256: str) -> bytes:
    """The laundered copy of `img` as JPEG bytes (the file a platform would serve)."""
    rng = spec.rng(sha256)
    scale = float(rng.uniform(*spec.scale))
    quality = int(rng.integers(spec.quality[0], spec.quality[1] + 1))
    resample = _RESAMPLERS[int(rng.integers(len(_RESAMPLERS)))]
    rgb = img.convert("RGB")
    w, h = rgb.size
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    if size != (w, h):
        rgb = rgb.resize(size, resample)
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=quality, subsampling=2)
    return buf.getvalue()


def launder(img: Image.Image, spec: Launder, sha256: str) -> Image.Image:
    """The laundered copy of `img`, decoded to RGB."""
    with Image.open(io.BytesIO(launder_bytes(img, spec, sha256))) as out:
        return out.convert("RGB")


def copies(k: int, seed: int, base: Launder = TRAIN_LAUNDER) -> list[Launder]:
    """The k training copies for `seed` (copy numbers 1..k)."""
    return [
        Launder(quality=base.quality, scale=base.scale, seed=seed, copy=i) for i in range(1, k + 1)
    ]
