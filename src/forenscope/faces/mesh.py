"""The 468-point face mesh on a rotated square crop around a BlazeFace detection.

As in MediaPipe's face_landmark graph: the crop is centred on the detection box, rotated so the
eye line is horizontal, 1.5x the box's longer side, resampled to 192 x 192 in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image

MESH_SIZE = 192
ROI_SCALE = 1.5
MIN_PRESENCE = 0.5

RunFn = Callable[[np.ndarray], list[np.ndarray]]


def roi_affine(
    box: np.ndarray, right_eye: np.ndarray, left_eye: np.ndarray
) -> tuple[np.ndarray, float]:
    """2x3 affine mapping crop pixels (u, v, 1) to image pixels, and the roll in radians."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(box[2] - box[0], box[3] - box[1]) * ROI_SCALE
    d = left_eye - right_eye
    roll = math.atan2(float(d[1]), float(d[0]))
    c, s = math.cos(roll) * side / MESH_SIZE, math.sin(roll) * side / MESH_SIZE
    # (u, v) = (0, 0) is the crop's top-left corner: centre it, rotate, scale, translate.
    half = MESH_SIZE / 2
    mat = np.array([[c, -s, cx - c * half + s * half], [s, c, cy - s * half - c * half]])
    return mat, roll


def crop(rgb: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Resample the rotated square ROI to MESH_SIZE x MESH_SIZE (shrinking first when large)."""
    img = Image.fromarray(rgb)
    scale = math.hypot(mat[0, 0], mat[1, 0])  # image pixels per crop pixel
    shrink = max(1, int(scale // 2))  # avoid aliasing when the face is many times 192 px
    if shrink > 1:
        img = img.reduce(shrink)
        mat = mat / shrink
    coeffs = (mat[0, 0], mat[0, 1], mat[0, 2], mat[1, 0], mat[1, 1], mat[1, 2])
    out = img.transform(
        (MESH_SIZE, MESH_SIZE),
        Image.Transform.AFFINE,
        tuple(float(v) for v in coeffs),
        resample=Image.Resampling.BILINEAR,
    )
    return np.asarray(out)


def landmarks(
    run: RunFn, rgb: np.ndarray, box: np.ndarray, keypoints: np.ndarray
) -> tuple[np.ndarray | None, float, float]:
    """(468, 2) landmarks in image pixels (None when the mesh sees no face), presence, roll."""
    mat, roll = roi_affine(box, keypoints[0], keypoints[1])
    patch = crop(rgb, mat).astype(np.float32)[None] / 255.0
    outputs = run(patch)
    coords = next(o for o in outputs if o.size == 468 * 3).reshape(468, 3)
    flag = next(o for o in outputs if o.size == 1)
    presence = float(1.0 / (1.0 + math.exp(-float(np.clip(flag.ravel()[0], -50, 50)))))
    if presence < MIN_PRESENCE:
        return None, presence, roll
    uv1 = np.concatenate([coords[:, :2], np.ones((468, 1), dtype=np.float32)], axis=1)
    return uv1 @ mat.T, presence, roll
