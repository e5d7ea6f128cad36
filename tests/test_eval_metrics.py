"""Image-level metrics of `forenscope eval` against scikit-learn, edge cases included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.interpolate import interp1d
from scipy.optimize import brentq
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    roc_auc_score,
)
from sklearn.metrics import roc_curve as sk_roc_curve

from forenscope.eval import classification as C
from forenscope.eval.baseline import jpeg_quality, out_of_fold


def _data(seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(300) < 0.4
    s = np.clip(rng.normal(0.5 + 0.2 * y, 0.2), 0, 1)
    return y, (np.round(s, 1) if ties else s)  # rounding makes many ties


@pytest.mark.parametrize("seed,ties", [(0, False), (1, True), (2, True), (3, False)])
def test_ranking_metrics_match_sklearn(seed: int, ties: bool) -> None:
    y, s = _data(seed, ties)
    assert C.auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert C.average_precision(y, s) == pytest.approx(average_precision_score(y, s))
    fpr, tpr, thr = C.roc_curve(y, s)
    sf, st, sthr = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sf)
    np.testing.assert_allclose(tpr, st)
    np.testing.assert_allclose(thr[1:], sthr[1:])
    expected_eer = brentq(lambda x: 1.0 - x - interp1d(sf, st)(x), 0.0, 1.0)
    assert C.eer(y, s) == pytest.approx(expected_eer, abs=1e-6)
    for target in (0.01, 0.05):
        assert C.tpr_at_fpr(y, s, target) == pytest.approx(st[sf <= target].max())


@pytest.mark.parametrize("seed", range(3))
def test_threshold_metrics_match_sklearn(seed: int) -> None:
    y, s = _data(seed, True)
    pred = s >= 0.5
    assert C.accuracy_at(y, s, 0.5) == pytest.approx(accuracy_score(y, pred))
    assert C.balanced_accuracy(y, s) == pytest.approx(balanced_accuracy_score(y, pred))
    real, fake = C.class_accuracies(y, s)
    assert real == pytest.approx(np.mean(~pred[~y])) and fake == pytest.approx(np.mean(pred[y]))
    best, thr = C.best_threshold_accuracy(y, s)
    brute = max(accuracy_score(y, s >= t) for t in np.r_[np.unique(s), np.inf])
    assert best == pytest.approx(brute) and accuracy_score(y, s >= thr) == pytest.approx(best)


def test_ece_matches_calibration_curve() -> None:
    y, s = _data(5, False)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=15, strategy="uniform")
    counts = np.histogram(s, bins=np.linspace(0, 1, 16))[0]
    counts = counts[counts > 0]
    expected = float(np.sum(counts / len(s) * np.abs(prob_true - prob_pred)))
    assert C.ece(y, s) == pytest.approx(expected)
    assert C.ece(np.array([1, 0]), np.array([1.0, 0.0])) == 0.0


def test_one_class_is_undefined_with_a_note() -> None:
    y = np.ones(10, bool)
    s = np.linspace(0, 1, 10)
    out = C.binary_summary(y, s)
    assert math.isnan(out["auc"]) and math.isnan(out["eer"]) and math.isnan(out["tpr@5%fpr"])
    assert math.isnan(out["balanced_acc"]) and math.isnan(out["acc@best_thr (oracle)"])
    assert out["fake_acc"] == pytest.approx(0.5) and math.isnan(out["real_acc"])
    assert any("one class" in n for n in out["notes"])


def test_nan_scores_are_counted_and_excluded() -> None:
    y, s = _data(7, False)
    s2 = s.copy()
    s2[:25] = np.nan
    out = C.binary_summary(y, s2)
    assert out["nan_scores_excluded"] == 25 and out["n"] == 275
    assert out["auc"] == pytest.approx(roc_auc_score(y[25:], s[25:]))
    assert any("without a score" in n for n in out["notes"])


def test_all_ties_give_chance_auc_and_confusion_matches_sklearn() -> None:
    y = np.array([0, 1, 0, 1, 1], bool)
    assert C.auc(y, np.full(5, 0.3)) == pytest.approx(0.5)
    true = ["real", "fake", "tampered", "real", "fake"]
    pred: list[str | None] = ["real", "real", "fake", None, "fake"]
    mat = C.confusion(true, pred, ["real", "fake", "tampered"])
    sk = confusion_matrix(
        true, [p or "none" for p in pred], labels=["real", "fake", "tampered", "none"]
    )
    assert mat == sk[:3].tolist()


def test_format_only_baseline_finds_a_container_confound() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(200) < 0.5
    x = np.c_[y + rng.normal(0, 0.3, 200), rng.normal(0, 1, 200)]  # feature 0 leaks the label
    p = out_of_fold(x, y.astype(float))
    assert roc_auc_score(y, p) > 0.9
    p_noise = out_of_fold(x[:, 1:], y.astype(float))
    assert roc_auc_score(y, p_noise) < 0.7


@pytest.mark.parametrize("q", [50, 75, 90])
def test_jpeg_quality_estimate(q: int) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "gray").save(buf, "JPEG", quality=q)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        assert jpeg_quality(im.quantization[0]) == pytest.approx(q, abs=1.5)


def test_binary_confusion_has_one_column_per_prediction() -> None:
    mat = C.confusion(
        ["real", "tampered", "fake"],
        ["fake", "real", None],
        ["real", "fake", "tampered"],
        ["real", "fake"],
    )
    assert mat == [[0, 1, 0], [0, 0, 1], [1, 0, 0]]
