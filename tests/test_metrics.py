"""Localization metrics against scikit-learn, including edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import f1_score, jaccard_score, matthews_corrcoef

from forenscope.eval.datasets import load_mask
from forenscope.eval.metrics import all_forged_f1, best_threshold_f1, pixel_scores, scores_at


@pytest.mark.parametrize("seed", range(5))
def test_pixel_scores_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.random((40, 50)) < 0.3
    pred = rng.random((40, 50)) < 0.4
    s = pixel_scores(pred, truth)
    assert s.f1 == pytest.approx(f1_score(truth.ravel(), pred.ravel()))
    assert s.iou == pytest.approx(jaccard_score(truth.ravel(), pred.ravel()))
    assert s.mcc == pytest.approx(matthews_corrcoef(truth.ravel(), pred.ravel()))


def test_edge_cases() -> None:
    truth = np.zeros((4, 4), bool)
    truth[:2] = True
    empty = np.zeros_like(truth)
    assert pixel_scores(empty, truth).f1 == 0.0
    assert pixel_scores(truth, truth).iou == 1.0
    assert pixel_scores(empty, empty).f1 == 1.0  # nothing to find, nothing flagged
    assert all_forged_f1(truth) == pytest.approx(f1_score(truth.ravel(), np.ones(16, bool)))
    with pytest.raises(ValueError, match="shape"):
        pixel_scores(np.zeros((3, 3), bool), truth)


def test_fixed_threshold_and_oracle_differ() -> None:
    truth = np.zeros((20, 20), bool)
    truth[5:10, 5:10] = True
    heatmap = np.where(truth, 0.4, 0.1).astype(np.float32)  # right place, low values
    assert scores_at(heatmap, truth, threshold=0.5).f1 == 0.0
    assert best_threshold_f1(heatmap, truth) == pytest.approx(1.0)
    nan_map = heatmap.copy()
    nan_map[0, 0] = np.nan
    assert np.isfinite(scores_at(nan_map, truth).f1)


def test_heatmap_is_resized_to_the_mask() -> None:
    truth = np.zeros((64, 64), bool)
    truth[:32] = True
    small = np.zeros((8, 8), np.float32)
    small[:4] = 1.0
    assert scores_at(small, truth).iou > 0.9


def test_load_mask_conventions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0, 2] = 200  # one channel over 128 counts
    rgb[1, 1] = 127  # below threshold
    Image.fromarray(rgb).save(tmp_path / "m.png")
    m = load_mask(tmp_path / "m.png")
    assert m.dtype == bool and m.sum() == 1 and m[0, 0]
    Image.fromarray((np.eye(4) * 255).astype(np.uint8)).save(tmp_path / "g.jpg", quality=95)
    assert load_mask(tmp_path / "g.jpg").sum() == 4


def test_pixel_auc_and_pooled_oracle() -> None:
    from sklearn.metrics import roc_auc_score

    from forenscope.eval.metrics import (
        localization_record,
        localization_summary,
        pixel_auc,
        pooled_best_threshold_f1,
    )

    rng = np.random.default_rng(0)
    truth = np.zeros((32, 32), bool)
    truth[8:20, 4:16] = True
    hm = np.clip(truth * 0.4 + rng.random((32, 32)) * 0.6, 0, 1).astype(np.float32)
    assert pixel_auc(hm, truth) == pytest.approx(roc_auc_score(truth.ravel(), hm.ravel()))
    assert np.isnan(pixel_auc(hm, np.ones_like(truth)))  # one class: undefined
    rec = localization_record(hm, truth)
    assert sum(rec["hist_pos"]) == truth.sum() and sum(rec["hist_neg"]) == (~truth).sum()
    f1, thr = pooled_best_threshold_f1(np.array(rec["hist_pos"]), np.array(rec["hist_neg"]))
    binned = np.minimum((hm * 100).astype(int), 99) / 100
    brute = max(f1_score(truth.ravel(), binned.ravel() >= t) for t in np.arange(100) / 100)
    assert f1 == pytest.approx(brute) and 0 <= thr <= 1
    summary = localization_summary([rec, localization_record(np.zeros_like(hm), truth)])
    assert summary["n"] == 2 and summary["f1@fixed"] == pytest.approx(rec["f1@fixed"] / 2)
    assert summary["f1@best_thr_per_image (oracle)"] >= summary["f1@fixed"]
