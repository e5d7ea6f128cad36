"""Which straight-from-camera photos the learned localizer trains, validates and is held out on.

The localizer's trainer and the fused-map study both need the same split (the map study keeps
the localizer's training photos out of its false-alarm figures), so it lives here, below both.
"""

from __future__ import annotations

import hashlib

STRAIGHT_FROM_CAMERA = frozenset({"metadata-extractor-images", "exif-samples"})
SALT = "localizer:"
TRAIN_SHARE, VAL_SHARE = 0.5, 0.15  # of the camera photos, by path hash; the rest is held out


def path_hash(path: str, salt: str = "") -> float:
    """A stable number in [0, 1] from a manifest path: the basis of every split here."""
    return int(hashlib.sha256((salt + path).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def camera_part(path: str) -> str:
    """train | val | held_out for a straight-from-camera photo (stable across runs)."""
    h = path_hash(path, SALT)
    return "train" if h < TRAIN_SHARE else "val" if h < TRAIN_SHARE + VAL_SHARE else "held_out"
