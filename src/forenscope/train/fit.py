"""Fit a standardised logistic-regression head, calibrate it on held-out data, evaluate it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..eval.classification import auc, ece
from ..learned.heads import LinearHead


def group_folds(y: np.ndarray, groups: list[str], seed: int, folds: int = 5) -> list[np.ndarray]:
    """Stratified, group-aware folds: a group (prompt, image) never straddles two folds."""
    from sklearn.model_selection import StratifiedGroupKFold

    skf = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [test for _, test in skf.split(np.zeros(len(y)), y, groups)]


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    *,
    name: str,
    feature: str,
    classes: tuple[str, str],
    seed: int = 0,
    c: float = 0.05,
) -> LinearHead:
    """Logistic regression on standardised features (balanced classes, L2, seeded)."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(0)
    scale = np.where(x.std(0) > 1e-8, x.std(0), 1.0)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=5000, random_state=seed)
    clf.fit((x - mean) / scale, y)
    return LinearHead(
        name=name,
        feature=feature,
        classes=classes,
        mean=mean.astype(np.float64),
        scale=scale.astype(np.float64),
        weights=clf.coef_[0].astype(np.float64),
        bias=float(clf.intercept_[0]),
    )


def calibrate(head: LinearHead, z: np.ndarray, y: np.ndarray, method: str) -> None:
    """Set `head.calibration` from held-out logits z and labels y: Platt or isotonic."""
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e4, max_iter=1000).fit(z.reshape(-1, 1), y)
        head.calibration = {
            "method": "platt",
            "a": float(lr.coef_[0, 0]),
            "b": float(lr.intercept_[0]),
        }
    elif method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(z, y)
        head.calibration = {
            "method": "isotonic",
            "x": [float(v) for v in iso.X_thresholds_],
            "y": [float(v) for v in iso.y_thresholds_],
        }
    else:
        raise ValueError(f"unknown calibration {method!r}")


def evaluate(head: LinearHead, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """AUC, accuracy, recall and false-positive rate at 0.5 (on the calibrated probability),
    and ECE before (raw sigmoid) and after calibration."""
    z = head.logit(x)
    raw = 1.0 / (1.0 + np.exp(-z))
    prob = head.predict_proba(x)
    flagged = prob >= 0.5
    y = np.asarray(y).astype(int)
    return {
        "n": len(y),
        "n_positive": int(np.sum(y)),
        "auc": round(auc(y, z), 4),
        "accuracy": round(float(np.mean((prob >= 0.5) == y.astype(bool))), 4),
        "recall_at_0.5": round(float(flagged[y == 1].mean()), 4) if y.any() else None,
        "fpr_at_0.5": round(float(flagged[y == 0].mean()), 4) if (y == 0).any() else None,
        "ece_uncalibrated": round(ece(y, raw), 4),
        "ece_calibrated": round(ece(y, prob), 4),
    }


def calibrated_head(
    x: np.ndarray,
    y: np.ndarray,
    folds: list[np.ndarray],
    *,
    calibration: str = "platt",
    c: float = 0.05,
    **kw: Any,
) -> LinearHead:
    """Calibrate on out-of-fold logits (each fold of row indices scored by a head that never
    saw it), then fit the returned weights on all the folds' rows."""
    z_oof, y_oof = [], []
    for k, held in enumerate(folds):
        fit_idx = np.concatenate([p for m, p in enumerate(folds) if m != k])
        fold_head = fit_head(x[fit_idx], y[fit_idx], c=c, **kw)
        z_oof.append(fold_head.logit(x[held]))
        y_oof.append(y[held])
    rows = np.concatenate(folds)
    head = fit_head(x[rows], y[rows], c=c, **kw)
    calibrate(head, np.concatenate(z_oof), np.concatenate(y_oof), calibration)
    return head


def train_and_calibrate(
    x: np.ndarray,
    y: np.ndarray,
    groups: list[str],
    *,
    name: str,
    feature: str,
    classes: tuple[str, str],
    seed: int,
    calibration: str = "platt",
    c: float = 0.05,
    laundered: np.ndarray | None = None,
) -> tuple[LinearHead, dict[str, Any]]:
    """Hold out 20% for the metrics. On the other 80%: calibrate on out-of-fold logits (each
    fold scored by a head that never saw it), then fit the shipped weights on all of it.

    `laundered` (bool per row) marks laundered training copies: the split keeps a copy with its
    original (same group); the metrics are those of the held-out rows as stored, and the
    `laundered_*` metrics those of their laundered copies."""
    test, *rest = group_folds(y, groups, seed)
    kw: dict[str, Any] = {"name": name, "feature": feature, "classes": classes, "seed": seed}
    head = calibrated_head(x, y, rest, calibration=calibration, c=c, **kw)
    if laundered is None or not laundered.any():
        metrics = evaluate(head, x[test], y[test])
    else:
        stored, washed = test[~laundered[test]], test[laundered[test]]
        metrics = evaluate(head, x[stored], y[stored])
        metrics |= {f"laundered_{k}": v for k, v in evaluate(head, x[washed], y[washed]).items()}
    metrics["n_train"] = metrics["n_calib_out_of_fold"] = sum(len(f) for f in rest)
    return head, metrics
