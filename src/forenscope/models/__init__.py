"""Model weights: where they come from, how they are verified and where they are cached.

Nothing here imports onnxruntime; sessions are built in `forenscope.learned`.
"""

from __future__ import annotations

from .cache import cache_dir, default_cache_dir
from .registry import CLIP_B16_INT8, MODELS, ModelSpec, get_model, list_models
from .sources import encoder_path, pull

__all__ = [
    "CLIP_B16_INT8",
    "MODELS",
    "ModelSpec",
    "cache_dir",
    "default_cache_dir",
    "encoder_path",
    "get_model",
    "list_models",
    "pull",
]
