"""Feature extraction per detector, with an .npz cache keyed by file sha256."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import ModelError
from ..learned.baselines import fredect_features, gram_features
from ..learned.encoder import ClipEncoder
from ..learned.preprocess import to_tensor
from ..models.cache import cache_dir
from ..models.sources import encoder_path, file_sha256
from .data import ALIGN_TAG, TrainingImage, load_sample

FEATURES = ("clip", "clip-patch", "fredect", "gram")
# clip-patch keeps every 6th of the 196 patch embeddings (33 per image): enough samples to fit
# a patch head, a 6x smaller cache than all of them.
PATCH_STRIDE = 6


class FeatureCache:
    """One .npz per (feature, alignment, encoder) holding a (N, D) matrix keyed by the sample's
    key (its sha256, plus the laundering tag for a laundered copy)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path) as data:
                self.rows = dict(zip(data["keys"].tolist(), data["values"], strict=True))

    def save(self) -> None:
        if not self.rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.rows))
        values = np.stack(list(self.rows.values()))
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, values=values)
        tmp.replace(self.path)


def _cache_for(feature: str, encoder: Path | None) -> FeatureCache:
    tag = f"{feature}-{ALIGN_TAG}"
    if encoder is not None:
        tag += "-" + file_sha256(encoder)[:12]
    return FeatureCache(cache_dir() / "features" / f"{tag}.npz")


def extract(
    samples: list[TrainingImage],
    feature: str,
    *,
    encoder: ClipEncoder | None = None,
    progress: bool = False,
    batch: int = 16,
) -> np.ndarray:
    """(N, D) features of the format-aligned images, computing only what is not cached."""
    if feature not in FEATURES:
        raise ValueError(f"unknown feature {feature!r} (known: {', '.join(FEATURES)})")
    uses_clip = feature.startswith("clip")
    if uses_clip and encoder is None:
        encoder = ClipEncoder(encoder_path())
    cache = _cache_for(feature, encoder.path if uses_clip and encoder else None)
    todo = list({s.key: s for s in samples if s.key not in cache.rows}.values())
    bar: Iterable[int] = range(0, len(todo), batch)
    if progress and todo:
        bar = tqdm(bar, desc=f"{feature} features", unit="batch")
    fn = _image_fn(feature)
    try:
        for start in bar:
            chunk = todo[start : start + batch]
            images = [load_sample(s) for s in chunk]
            if uses_clip and encoder is not None:
                rows = _clip_rows(encoder, images, feature)
            else:
                rows = np.stack([fn(i) for i in images])
            for s, row in zip(chunk, rows, strict=True):
                cache.rows[s.key] = row.astype(np.float32)
    finally:
        if todo:
            cache.save()
    return np.stack([cache.rows[s.key] for s in samples])


def _clip_rows(encoder: ClipEncoder, images: list[np.ndarray], feature: str) -> np.ndarray:
    from PIL import Image

    out = encoder.encode(to_tensor([Image.fromarray(i) for i in images]), tokens=True)
    if feature == "clip":
        return out.embeds
    if out.tokens is None:
        raise ModelError("this encoder exposes no patch tokens; clip-patch is unavailable")
    patches = encoder.project_patches(out.tokens)[:, ::PATCH_STRIDE, :]
    return patches.reshape(len(images), -1)


def _image_fn(feature: str) -> Callable[[np.ndarray], np.ndarray]:
    return {"fredect": fredect_features, "gram": gram_features}.get(feature, fredect_features)


def clip_normalise(x: np.ndarray) -> np.ndarray:
    """L2-normalise CLIP embeddings (the heads are fitted on unit vectors)."""
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12))
