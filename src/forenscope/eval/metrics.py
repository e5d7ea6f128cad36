"""Localization metrics as pure numpy functions (checked against scikit-learn in the tests).

Conventions, named explicitly because the field mixes them up (see research/anchors.md §5):
- `*_at` metrics use a FIXED threshold given by the caller (default 0.5): a deployable number.
- `best_threshold_f1` picks the threshold per image using the ground truth: an ORACLE upper bound,
  never to be reported as if it were fixed-threshold F1.
- Localization metrics are computed on forged images only; an empty truth mask is an error here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class PixelScores:
    f1: float
    iou: float
    precision: float
    recall: float
    mcc: float


def resize_map(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float map to (H, W)."""
    if heatmap.shape == shape:
        return heatmap.astype(np.float32)
    im = Image.fromarray(heatmap.astype(np.float32), mode="F")
    return np.asarray(im.resize((shape[1], shape[0]), Image.BILINEAR), dtype=np.float32)


def _counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int, int]:
    pred = pred.astype(bool).ravel()
    truth = truth.astype(bool).ravel()
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    tn = pred.size - tp - fp - fn
    return tp, fp, fn, tn


def pixel_scores(pred: np.ndarray, truth: np.ndarray) -> PixelScores:
    """F1, IoU, precision, recall and MCC of a binary prediction against a binary truth mask."""
    if pred.shape != truth.shape:
        raise ValueError(f"shape mismatch: prediction {pred.shape} vs truth {truth.shape}")
    tp, fp, fn, tn = _counts(pred, truth)
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    iou = tp / (tp + fp + fn) if tp + fp + fn else 1.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    denom = float(np.sqrt(float(tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    mcc = (tp * tn - fp * fn) / denom if denom else 0.0
    return PixelScores(f1, iou, precision, recall, mcc)


def scores_at(heatmap: np.ndarray, truth: np.ndarray, *, threshold: float = 0.5) -> PixelScores:
    """Pixel scores of `heatmap >= threshold` (the map is resized to the truth's shape)."""
    hm = np.nan_to_num(resize_map(heatmap, truth.shape))
    return pixel_scores(hm >= threshold, truth)


def best_threshold_f1(heatmap: np.ndarray, truth: np.ndarray, *, steps: int = 101) -> float:
    """ORACLE: the best F1 over `steps` thresholds in [0, 1], chosen with the ground truth."""
    hm = np.nan_to_num(resize_map(heatmap, truth.shape)).ravel()
    t = truth.astype(bool).ravel()
    best = 0.0
    for thr in np.linspace(0.0, 1.0, steps):
        pred = hm >= thr
        tp = np.count_nonzero(pred & t)
        denom = np.count_nonzero(pred) + np.count_nonzero(t)
        best = max(best, 2 * tp / denom if denom else 1.0)
    return float(best)


def all_forged_f1(truth: np.ndarray) -> float:
    """The trivial baseline: F1 of flagging every pixel."""
    t = truth.astype(bool)
    return float(2 * t.sum() / (t.size + t.sum())) if t.size else 0.0
