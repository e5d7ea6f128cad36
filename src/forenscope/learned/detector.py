"""The CLIP detector as a batch model: RGB images -> P(generated), method, patch grid.

Used by the `clip_detector` expert (batch of one) and by the benchmark (batches).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ModelError
from .encoder import ClipEncoder
from .heads import LinearHead, load_head
from .preprocess import align_image, to_tensor

GENERATED_HEAD = "clip-generated"
ATTRIBUTION_HEAD = "clip-attribution"
# The patch map's head, first found wins: the one fitted on pasted regions localizes them
# (held-out F1@0.5 0.64 vs 0.35, benchmarks/bench_patch_map.py); the image-label one is the
# fallback for heads trained on another encoder without composites.
PATCH_HEADS = ("clip-patch-composite", "clip-patch")


@dataclass
class DetectorOutput:
    p_generated: float
    logit: float
    p_diffusion: float | None
    grid: np.ndarray | None  # (14, 14) calibrated P(generated) per patch


def aligned_tensor(images: list[np.ndarray]) -> np.ndarray:
    """uint8 (H, W, 3) images -> format-aligned, normalised (N, 3, 224, 224) encoder input."""
    return to_tensor([Image.fromarray(align_image(Image.fromarray(i))) for i in images])


def unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12))


class ClipDetectorModel:
    """Encoder + real-vs-generated head + optional GAN-vs-diffusion head."""

    def __init__(
        self,
        encoder: ClipEncoder,
        generated: LinearHead,
        attribution: LinearHead | None = None,
        patch: LinearHead | None = None,
    ) -> None:
        self.encoder = encoder
        self.generated = generated
        self.attribution = attribution
        # patch tokens are scored by a head fitted on patches when shipped (their statistics
        # differ from the pooled embedding's), else by the image-level direction itself
        self.patch = patch or generated

    @classmethod
    def load(
        cls,
        path: Path,
        heads_dir: Path | None = None,
        threads: int | None = None,
        lazy: bool = False,
    ) -> ClipDetectorModel:
        """Load the encoder at `path` and its heads (shipped, `heads_dir`, or env
        FORENSCOPE_CLIP_HEADS); refuse heads fitted on another encoder. `lazy` defers the
        encoder session to the first `predict` (for callers that may run another graph)."""
        from ..models.sources import file_sha256

        if heads_dir is None and os.environ.get("FORENSCOPE_CLIP_HEADS"):
            heads_dir = Path(os.environ["FORENSCOPE_CLIP_HEADS"])  # heads for another encoder
        generated = load_head(GENERATED_HEAD, heads_dir)
        want = generated.meta.get("encoder_sha256")
        if want and file_sha256(path) != want:
            raise ModelError(
                f"the heads were fitted on encoder sha256 {want[:12]}..., but {path.name} "
                "differs; train heads for this encoder with `forenscope train`"
            )
        attribution = _optional_head((ATTRIBUTION_HEAD,), heads_dir)
        patch = _optional_head(PATCH_HEADS, heads_dir)
        return cls(ClipEncoder(path, threads=threads, lazy=lazy), generated, attribution, patch)

    def predict(self, images: list[np.ndarray], patches: bool = True) -> list[DetectorOutput]:
        """Format-align each uint8 (H, W, 3) image exactly as in training, then score it."""
        out = self.encoder.encode(aligned_tensor(images), tokens=patches)
        return self.predictions(out.embeds, out.tokens if patches else None)

    def predictions(self, embeds: np.ndarray, tokens: np.ndarray | None) -> list[DetectorOutput]:
        """Predictions from one encoder pass: pooled (N, D) embeddings and, for the patch
        map, the (N, 1 + P, W) last hidden state (None: no map), whichever graph gave them."""
        emb = unit(embeds.astype(np.float64))
        logits = self.generated.logit(emb)
        probs = self.generated.calibrate_logit(logits)
        p_diff = self.attribution.predict_proba(emb) if self.attribution is not None else None
        grids = self.patch_grids(tokens)
        return [
            DetectorOutput(
                p_generated=float(np.clip(probs[i], 0.0, 1.0)),
                logit=float(logits[i]),
                p_diffusion=None if p_diff is None else float(p_diff[i]),
                grid=None if grids is None else grids[i],
            )
            for i in range(len(emb))
        ]

    def patch_grids(self, tokens: np.ndarray | None) -> np.ndarray | None:
        """(N, 14, 14) P(generated) of each patch token scored by the image-level head."""
        if tokens is None:
            return None
        try:
            patches = self.encoder.project_patches(tokens)
        except ModelError:
            return None  # an encoder without a readable projection gets no map
        n, p, _ = patches.shape
        side = int(round(np.sqrt(p)))
        probs = self.patch.predict_proba(unit(patches.reshape(n * p, -1).astype(np.float64)))
        return np.asarray(probs, dtype=np.float32).reshape(n, side, side)


def _optional_head(names: tuple[str, ...], heads_dir: Path | None) -> LinearHead | None:
    """The first of `names` that loads, or None."""
    for name in names:
        try:
            return load_head(name, heads_dir)
        except ModelError:
            continue
    return None
