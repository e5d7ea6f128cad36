"""Localization metrics as pure numpy functions (checked against scikit-learn in the tests).

Conventions, named explicitly because the field mixes them up (see research/anchors.md §5):
- `*_at` metrics use a FIXED threshold given by the caller (default 0.5): a deployable number.
- `best_threshold_f1` picks the threshold per image using the ground truth: an ORACLE upper bound,
  never to be reported as if it were fixed-threshold F1.
- Localization metrics are computed on forged images only; an empty truth mask is an error here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..fusion.localize import resize_map


@dataclass(frozen=True)
class PixelScores:
    f1: float
    iou: float
    precision: float
    recall: float
    mcc: float


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
    hm = np.nan_to_num(resize_map(heatmap, *truth.shape))
    return pixel_scores(hm >= threshold, truth)


def best_threshold_f1(heatmap: np.ndarray, truth: np.ndarray, *, steps: int = 101) -> float:
    """ORACLE: the best F1 over `steps` thresholds in [0, 1], chosen with the ground truth."""
    hm = np.nan_to_num(resize_map(heatmap, *truth.shape)).ravel()
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


# -- per-image records and dataset aggregates (used by `forenscope eval`) ------------------------
HIST_BINS = 100


def pixel_auc(heatmap: np.ndarray, truth: np.ndarray) -> float:
    """Pixel ROC AUC of the map against the mask; NaN when the mask is all one value."""
    from .classification import auc

    hm = np.nan_to_num(resize_map(heatmap, *truth.shape))
    return auc(truth.ravel(), hm.ravel())


def pixel_histograms(heatmap: np.ndarray, truth: np.ndarray) -> tuple[list[int], list[int]]:
    """Counts of map values in 100 equal bins of [0, 1], for forged and for clean pixels: enough
    to pool pixel metrics over a dataset without keeping the maps."""
    hm = np.clip(np.nan_to_num(resize_map(heatmap, *truth.shape)), 0.0, 1.0).ravel()
    idx = np.minimum((hm * HIST_BINS).astype(int), HIST_BINS - 1)
    t = truth.astype(bool).ravel()
    pos = np.bincount(idx[t], minlength=HIST_BINS)
    neg = np.bincount(idx[~t], minlength=HIST_BINS)
    return pos.tolist(), neg.tolist()


def localization_record(
    heatmap: np.ndarray, truth: np.ndarray, threshold: float = 0.5
) -> dict[str, Any]:
    """Per-image localization numbers kept in the journal (the map itself is not)."""
    fixed = scores_at(heatmap, truth, threshold=threshold)
    pos, neg = pixel_histograms(heatmap, truth)
    p_auc = pixel_auc(heatmap, truth)
    return {
        "f1@fixed": fixed.f1,
        "iou@fixed": fixed.iou,
        "mcc@fixed": fixed.mcc,
        "f1@best_thr_per_image (oracle)": best_threshold_f1(heatmap, truth),
        "pixel_auc": None if np.isnan(p_auc) else p_auc,
        "hist_pos": pos,
        "hist_neg": neg,
    }


def pooled_best_threshold_f1(hist_pos: np.ndarray, hist_neg: np.ndarray) -> tuple[float, float]:
    """ORACLE (F1, threshold): one threshold for the whole set (bin edges), chosen on the masks;
    F1 here is pixel-pooled over all images."""
    tp = np.cumsum(hist_pos[::-1])[::-1]  # pixels >= each bin's lower edge
    fp = np.cumsum(hist_neg[::-1])[::-1]
    fn = hist_pos.sum() - tp
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(1, 2 * tp + fp + fn), 0.0)
    i = int(np.argmax(f1))
    return float(f1[i]), i / HIST_BINS


def localization_summary(records: list[dict[str, Any]], threshold: float = 0.5) -> dict[str, Any]:
    """Means over forged images at the fixed threshold, the per-image oracle, and the pooled
    dataset-level oracle threshold, each named."""
    if not records:
        return {"n": 0}
    out: dict[str, Any] = {"n": len(records), "fixed_threshold": threshold}
    for key in ("f1@fixed", "iou@fixed", "mcc@fixed", "f1@best_thr_per_image (oracle)"):
        out[key] = float(np.mean([float(r[key]) for r in records]))
    aucs = [float(r["pixel_auc"]) for r in records if r.get("pixel_auc") is not None]
    out["pixel_auc"] = float(np.mean(aucs)) if aucs else float("nan")
    out["pixel_auc_undefined"] = len(records) - len(aucs)
    pos = np.sum([r["hist_pos"] for r in records], axis=0)
    neg = np.sum([r["hist_neg"] for r in records], axis=0)
    f1, thr = pooled_best_threshold_f1(pos, neg)
    out["f1@best_thr_dataset (oracle)"] = f1
    out["best_thr_dataset (oracle)"] = thr
    return out
