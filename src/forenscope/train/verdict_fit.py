"""One fold of the verdict fit: regularisation, temperature and decision thresholds, each chosen
on grouped out-of-fold predictions inside the training data.

Every step weighs the classes to the verdict's assumed mix (`class_weights`, `CLASS_MIX`), not
to the accidental mix of the data, which has far fewer tampered images than real or generated
ones. Fitted probabilities, the temperature, ECE
and the precision that sets each threshold all refer to that prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fusion.verdict_model import CLASS_MIX, LABELS

C_GRID = (0.03, 0.1, 0.3, 1.0)
INNER_FOLDS = 6
TARGET_PRECISION = 0.9
THRESHOLD_GRID = tuple(round(0.34 + 0.01 * i, 2) for i in range(66))  # 0.34 .. 0.99
SEED = 0


@dataclass(frozen=True)
class Fit:
    coef: np.ndarray  # (3, F) on raw features
    intercept: np.ndarray  # (3,)
    temperature: float
    thresholds: dict[str, float]
    c: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray((x @ self.coef.T + self.intercept) / self.temperature)


def class_weights(y: np.ndarray) -> np.ndarray:
    """Per-row weights that give each present class its share of `CLASS_MIX` (renormalised over
    the classes present), so the weighted data has the verdict's assumed class mix."""
    counts = np.bincount(y, minlength=3).astype(np.float64)
    prior = np.array([CLASS_MIX[c] for c in LABELS])
    present = counts > 0
    w = np.zeros(3)
    w[present] = len(y) * prior[present] / (prior[present].sum() * counts[present])
    return np.asarray(w[y])


def probabilities_from_logits(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return np.asarray(p / p.sum(axis=1, keepdims=True))


def _weighted_nll(z: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    p = probabilities_from_logits(z)
    return float(-(w * np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))).sum() / w.sum())


def fit_lr(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Prior-weighted multinomial L2 logistic regression on standardised features, returned
    as (coef, intercept) on the raw features. A class absent from `y` gets a very low bias."""
    from sklearn.linear_model import LogisticRegression

    present = np.unique(y)
    if len(present) == 1:  # a fold with one class: predict it, learn nothing else
        intercept = np.full(3, -10.0)
        intercept[int(present[0])] = 0.0
        return np.zeros((3, x.shape[1])), intercept
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std < 1e-9] = 1.0
    lr = LogisticRegression(C=c, max_iter=2000, random_state=SEED)
    lr.fit((x - mean) / std, y, sample_weight=class_weights(y))
    coef, intercept = np.zeros((3, x.shape[1])), np.full(3, -10.0)
    rows = lr.coef_ if len(lr.classes_) > 2 else np.stack([-lr.coef_[0], lr.coef_[0]]) / 2
    biases = lr.intercept_ if len(lr.classes_) > 2 else np.array([-1, 1]) * lr.intercept_[0] / 2
    for i, k in enumerate(lr.classes_):  # back to raw features: w/std, b - sum(w*mean/std)
        coef[int(k)] = rows[i] / std
        intercept[int(k)] = biases[i] - float((rows[i] * mean / std).sum())
    return coef, intercept


def inner_folds(groups: np.ndarray) -> list[np.ndarray]:
    """Test masks of up to `INNER_FOLDS` folds that never split a group (seeded)."""
    names = sorted(set(groups))
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(names))
    n = min(INNER_FOLDS, len(names))
    return [np.isin(groups, [names[i] for i in order[k::n]]) for k in range(n)]


def oof_logits(x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float) -> np.ndarray:
    z = np.zeros((len(y), 3))
    for test in inner_folds(groups):
        coef, intercept = fit_lr(x[~test], y[~test], c)
        z[test] = x[test] @ coef.T + intercept
    return z


def fit_temperature(z: np.ndarray, y: np.ndarray) -> float:
    from scipy.optimize import minimize_scalar

    w = class_weights(y)
    res = minimize_scalar(
        lambda t: _weighted_nll(z / np.exp(t), y, w), bounds=(-3, 3), method="bounded"
    )
    return float(np.exp(res.x))


def thresholds_for(
    p: np.ndarray, y: np.ndarray, precision: float = TARGET_PRECISION
) -> dict[str, float]:
    """Per class, the lowest threshold at which the verdicts leaning to it and reaching it are
    right at least `precision` of the time (weighted to the prior); 1.0 when none is."""
    w = class_weights(y)
    leaning = p.argmax(axis=1)
    top = p.max(axis=1)
    out: dict[str, float] = {}
    for k, label in enumerate(LABELS):
        out[label] = 1.0
        for t in THRESHOLD_GRID:
            chosen = (leaning == k) & (top >= t)
            if w[chosen].sum() <= 0:
                continue
            if w[chosen & (y == k)].sum() / w[chosen].sum() >= precision:
                out[label] = t
                break
    return out


def fit_fold(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, precision: float = TARGET_PRECISION
) -> Fit:
    """Choose C, the temperature and the thresholds on grouped OOF logits; fit on all rows."""
    best: tuple[float, float, float, np.ndarray] | None = None
    for c in C_GRID:
        z = oof_logits(x, y, groups, c)
        t = fit_temperature(z, y)
        nll = _weighted_nll(z / t, y, class_weights(y))
        if best is None or nll < best[0]:
            best = (nll, c, t, z)
    assert best is not None
    _, c, t, z = best
    coef, intercept = fit_lr(x, y, c)
    thresholds = thresholds_for(probabilities_from_logits(z / t), y, precision)
    return Fit(coef=coef, intercept=intercept, temperature=t, thresholds=thresholds, c=c)
