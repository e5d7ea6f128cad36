"""Image-level metrics as pure numpy functions (checked against scikit-learn in the tests).

Conventions (the field mixes them up, research/anchors.md sections 5 and 6):
- `y` is 1 for the positive class (fake or tampered), 0 for real; `s` is P(positive).
- A prediction at a fixed threshold is `s >= threshold`. `accuracy_at(.., 0.5)` is the
  deployable number; `best_threshold_accuracy` picks the threshold WITH the labels: an ORACLE,
  always reported under that name.
- NaN scores (no answer) are excluded by `binary_summary`, counted and warned about; a metric
  that needs both classes (AUC, AP, EER, TPR@FPR, balanced accuracy) is NaN with a note when
  one class is missing.
- ECE: 15 equal-width bins of P(positive) on [0, 1] (the last bin closed); the weighted mean of
  |positive rate - mean P| over non-empty bins. It calibrates P(positive), not the top-class
  confidence.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

NAN = float("nan")


def _arrays(y: Any, s: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(y, dtype=bool).ravel(), np.asarray(s, dtype=np.float64).ravel()


def roc_curve(y: Any, s: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), one point per distinct score plus the (0, 0) start at +inf."""
    yt, sc = _arrays(y, s)
    order = np.argsort(-sc, kind="mergesort")
    ys, ss = yt[order], sc[order]
    last = np.r_[np.flatnonzero(np.diff(ss)), ys.size - 1] if ys.size else np.array([], int)
    tps = np.cumsum(ys)[last] if ys.size else np.array([])
    fps = (last + 1) - tps
    pos, neg = max(int(yt.sum()), 0), int((~yt).sum())
    tpr = np.r_[0.0, tps / pos] if pos else np.full(len(tps) + 1, NAN)
    fpr = np.r_[0.0, fps / neg] if neg else np.full(len(fps) + 1, NAN)
    return fpr, tpr, np.r_[np.inf, ss[last]]


def auc(y: Any, s: Any) -> float:
    """ROC AUC (Mann-Whitney with average ranks for ties); NaN when one class is missing."""
    yt, sc = _arrays(y, s)
    pos, neg = int(yt.sum()), int((~yt).sum())
    if not pos or not neg:
        return NAN
    order = np.argsort(sc, kind="mergesort")
    ranks = np.empty(sc.size)
    sorted_s = sc[order]
    start = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    end = np.r_[start[1:], sc.size]
    avg = (start + end + 1) / 2.0  # 1-based average rank of each tie block
    ranks[order] = np.repeat(avg, end - start)
    return float((ranks[yt].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def average_precision(y: Any, s: Any) -> float:
    """AP = sum over thresholds of (R_n - R_{n-1}) P_n, as scikit-learn; NaN with no positive."""
    yt, sc = _arrays(y, s)
    if not yt.any():
        return NAN
    fpr, tpr, _ = roc_curve(yt, sc)
    neg = int((~yt).sum())
    tps = tpr[1:] * yt.sum()
    fps = fpr[1:] * neg if neg else np.zeros_like(tps)
    precision = tps / (tps + fps)
    recall = tpr[1:]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def eer(y: Any, s: Any) -> float:
    """Equal error rate: the FPR where FPR = 1 - TPR, linearly interpolated on the ROC curve."""
    fpr, tpr, _ = roc_curve(y, s)
    if not np.isfinite(fpr).all() or not np.isfinite(tpr).all():
        return NAN
    fnr = 1.0 - tpr
    d = fnr - fpr  # decreasing from 1 to -1 along the curve
    i = int(np.flatnonzero(d <= 0)[0])
    if i == 0 or d[i] == 0:
        return float(fpr[i])
    t = d[i - 1] / (d[i - 1] - d[i])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def tpr_at_fpr(y: Any, s: Any, target: float) -> float:
    """The highest TPR among ROC points with FPR <= target (no interpolation: achievable)."""
    fpr, tpr, _ = roc_curve(y, s)
    if not np.isfinite(fpr).all() or not np.isfinite(tpr).all():
        return NAN
    return float(tpr[fpr <= target + 1e-12].max())


def accuracy_at(y: Any, s: Any, threshold: float = 0.5) -> float:
    yt, sc = _arrays(y, s)
    return float(np.mean((sc >= threshold) == yt)) if yt.size else NAN


def class_accuracies(y: Any, s: Any, threshold: float = 0.5) -> tuple[float, float]:
    """(real-only accuracy = TNR, fake-only accuracy = TPR) at a fixed threshold."""
    yt, sc = _arrays(y, s)
    pred = sc >= threshold
    real = float(np.mean(~pred[~yt])) if (~yt).any() else NAN
    fake = float(np.mean(pred[yt])) if yt.any() else NAN
    return real, fake


def balanced_accuracy(y: Any, s: Any, threshold: float = 0.5) -> float:
    real, fake = class_accuracies(y, s, threshold)
    return (real + fake) / 2.0  # NaN propagates when a class is missing


def best_threshold_accuracy(y: Any, s: Any) -> tuple[float, float]:
    """ORACLE (accuracy, threshold): the threshold chosen on these labels; not deployable."""
    yt, sc = _arrays(y, s)
    if not yt.size:
        return NAN, NAN
    fpr, tpr, thr = roc_curve(yt, sc)
    pos, neg = int(yt.sum()), int((~yt).sum())
    tp = np.nan_to_num(tpr) * pos
    tn = neg - np.nan_to_num(fpr) * neg
    acc = (tp + tn) / yt.size
    i = int(np.argmax(acc))
    return float(acc[i]), float(thr[i])


def ece(y: Any, s: Any, bins: int = 15, weights: Any = None) -> float:
    """Expected calibration error over `bins` equal-width bins of the probability `s` of the
    event `y`; with `weights`, a weighted average (e.g. rows weighted to a class mix)."""
    yt, sc = _arrays(y, s)
    if not yt.size:
        return NAN
    w = np.ones(yt.size) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    idx = np.clip(np.floor(sc * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in np.unique(idx):
        m = idx == b
        gap = float((w[m] * (yt[m] - sc[m])).sum() / w[m].sum())
        total += float(w[m].sum() / w.sum()) * abs(gap)
    return float(total)


def binary_summary(y: Any, s: Any, *, threshold: float = 0.5) -> dict[str, Any]:
    """Every image-level metric of one set, NaN scores excluded and counted."""
    yt = np.asarray(y, dtype=bool).ravel()
    sc = np.asarray(s, dtype=np.float64).ravel()
    finite = np.isfinite(sc)
    yt, sc = yt[finite], sc[finite]
    out: dict[str, Any] = {"n": int(yt.size), "n_pos": int(yt.sum()), "n_neg": int((~yt).sum())}
    out["nan_scores_excluded"] = int((~finite).sum())
    notes = []
    if out["nan_scores_excluded"]:
        notes.append(f"{out['nan_scores_excluded']} sample(s) without a score excluded")
    if not out["n_pos"] or not out["n_neg"]:
        notes.append("one class only: AUC, AP, EER, TPR@FPR and balanced accuracy are undefined")
    real_acc, fake_acc = class_accuracies(yt, sc, threshold)
    best_acc, best_thr = best_threshold_accuracy(yt, sc)
    if not out["n_pos"] or not out["n_neg"]:
        best_acc = best_thr = NAN  # trivially 1.0 with one class: meaningless
    out.update(
        {
            f"acc@{threshold:g}": accuracy_at(yt, sc, threshold),
            "acc@best_thr (oracle)": best_acc,
            "best_thr (oracle)": best_thr,
            "balanced_acc": balanced_accuracy(yt, sc, threshold),
            "real_acc": real_acc,
            "fake_acc": fake_acc,
            "auc": auc(yt, sc),
            "ap": average_precision(yt, sc) if out["n_neg"] else NAN,
            "eer": eer(yt, sc),
            "tpr@1%fpr": tpr_at_fpr(yt, sc, 0.01),
            "tpr@5%fpr": tpr_at_fpr(yt, sc, 0.05),
            "ece": ece(yt, sc),
            "mean_score": float(sc.mean()) if sc.size else NAN,
        }
    )
    out["notes"] = notes
    return out


def confusion(
    true: list[str], pred: list[str | None], labels: list[str], pred_labels: list[str] | None = None
) -> list[list[int]]:
    """Counts [true][pred] (rows `labels`, columns `pred_labels`, default the same); a None or
    unknown prediction goes to an extra last column ('no answer')."""
    cols = pred_labels if pred_labels is not None else labels
    row_of = {lab: i for i, lab in enumerate(labels)}
    col_of = {lab: i for i, lab in enumerate(cols)}
    mat = [[0] * (len(cols) + 1) for _ in labels]
    for t, p in zip(true, pred, strict=True):
        if t in row_of:
            mat[row_of[t]][col_of[p] if p in col_of else len(cols)] += 1
    return mat


def finite_or_none(x: float) -> float | None:
    return None if isinstance(x, float) and math.isnan(x) else x
