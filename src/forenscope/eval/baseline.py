"""The "format-only" baseline: how much of a score can come from the container alone.

Per image it reads only container facts of the bytes the systems see (format, file size, pixel
count, aspect, JPEG quality estimated from the luminance quantisation table). Its score is the
OUT-OF-FOLD probability of a small L2 logistic regression fitted on those features with k-fold
cross-validation over the evaluated set itself (seeded folds): a confound probe, not a detector.
An AUC well above 0.5 means the classes can be told apart by their files, not their pixels.
The features and the fit live here; the system that runs them is `systems.FormatOnlySystem`.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence

import numpy as np
from PIL import Image

FEATURES = ("is_jpeg", "is_png", "is_other", "log_bytes", "log_pixels", "aspect", "bits_per_px",
            "jpeg_quality")  # fmt: skip
_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)  # fmt: skip


def jpeg_quality(table: Sequence[int]) -> float:
    """IJG quality whose scaled standard luminance table is closest to `table` (natural order
    and zigzag give the same mean ratio)."""
    scale = float(np.mean(np.asarray(table, dtype=np.float64) / _STD_LUMA)) * 100.0
    q = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return float(min(100.0, max(1.0, q)))


def container_features(data: bytes) -> dict[str, float]:
    with Image.open(io.BytesIO(data)) as im:
        fmt, (w, h) = im.format or "", im.size
        tables = getattr(im, "quantization", None) or {}
    quality = jpeg_quality(tables[0]) if fmt == "JPEG" and 0 in tables else 0.0
    pixels = max(1, w * h)
    return {
        "is_jpeg": float(fmt == "JPEG"),
        "is_png": float(fmt == "PNG"),
        "is_other": float(fmt not in ("JPEG", "PNG")),
        "log_bytes": math.log(max(1, len(data))),
        "log_pixels": math.log(pixels),
        "aspect": w / max(1, h),
        "bits_per_px": 8.0 * len(data) / pixels,
        "jpeg_quality": quality,
    }


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> np.ndarray:
    """Weights (bias first) of an L2-penalised logistic regression, by Newton's method."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    reg = np.full(xb.shape[1], l2)
    reg[0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + reg * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w


def out_of_fold(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold P(y=1) for every row; NaN where a training fold held a single class."""
    n = len(y)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    fold_of = np.empty(n, dtype=int)
    fold_of[order] = np.arange(n) % max(2, min(folds, n))
    out = np.full(n, np.nan)
    for f in np.unique(fold_of):
        train, test = fold_of != f, fold_of == f
        if len(np.unique(y[train])) < 2:
            continue
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-9
        w = fit_logistic((x[train] - mu) / sd, y[train].astype(float))
        z = w[0] + ((x[test] - mu) / sd) @ w[1:]
        out[test] = 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))
    return out
