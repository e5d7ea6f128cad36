"""Learned detection on frozen CLIP ViT-B/16 features: preprocessing, encoder, linear heads.

Importing this package does not import onnxruntime; `ClipEncoder` does so when first used.
"""

from __future__ import annotations

from .heads import LinearHead, load_head
from .preprocess import CLIP_SIZE, clip_crop, preprocess_rgb, to_tensor

__all__ = ["CLIP_SIZE", "LinearHead", "clip_crop", "load_head", "preprocess_rgb", "to_tensor"]
