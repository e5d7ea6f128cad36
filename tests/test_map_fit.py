"""The fused-map fit (train/map_fit.py) on tiny synthetic expert outputs: the bias respects the
false-alarm budget, leave-one-source-out never sees the held-out source, and the weights it
writes are the ones the product loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from forenscope.eval.datasets import Sample
from forenscope.fusion.map_fitted import MapFusionModel
from forenscope.train import map_calibration as mc
from forenscope.train import map_fit as mf
from forenscope.train.camera_split import path_hash
from forenscope.train.map_data import Entry, ExpertOut

SHAPE = (48, 64)
EXPERTS = ("copy_move", "noise")


def _sample(source: str, i: int, forged: bool) -> Sample:
    label = "tampered" if forged else "real"
    return Sample(
        Path("."), f"{label}/{source}/{i}.png", label, "", "", "", "m.png" if forged else "",
        source, "PNG", "0" * 64,
    )  # fmt: skip


def _entry(source: str, i: int, forged: bool, rng: np.random.Generator) -> Entry:
    """A forged entry has a box that copy_move lights up (plus noise); an untouched one gets
    speckle that is bright in a few pixels only."""
    truth = np.zeros(SHAPE, np.float32)
    cm = rng.uniform(0.0, 0.15, SHAPE).astype(np.float32)
    if forged:
        y, x = int(rng.integers(4, 24)), int(rng.integers(4, 36))
        truth[y : y + 16, x : x + 20] = 1.0
        cm[truth > 0] += 0.7
    else:
        cm[rng.random(SHAPE) < 0.002] = 0.9
    noise = rng.uniform(0.0, 0.3, SHAPE).astype(np.float32)
    experts = {
        "copy_move": ExpertOut(0.8 if forged else 0.3, 0.8, True, "tampered", cm),
        "noise": ExpertOut(0.5, 0.5, True, "tampered", noise),
    }
    group = "forged" if forged else "camera"
    return Entry(_sample(source, i, forged), group, "stored", truth, experts, SHAPE)


def _study(seed: int = 0) -> list[Entry]:
    rng = np.random.default_rng(seed)
    return [
        _entry(source, i, forged, rng)
        for source in ("a", "b", "c")
        for i in range(6)
        for forged in (True, False)
    ]


def test_fit_keeps_untouched_photos_within_the_budget_and_finds_the_boxes() -> None:
    cfg = mf.FitConfig(experts=EXPERTS, map_side=64)
    entries = _study()
    model, best = mf.fit(mf.featurise_all(entries, cfg), cfg)
    assert best.within_budget
    scores = mc.score_all(entries, lambda e: mf.probability(model, e))
    median, _, over = mc.flagged_summary(scores)
    assert median <= mf.MAX_MEDIAN and over <= mf.MAX_OVER
    f1 = np.mean([s.f1 for s in scores if s.forged])
    all_forged = np.mean([s.all_forged for s in scores if s.forged])
    assert f1 > 0.6 and f1 > all_forged


def test_an_impossible_budget_gives_the_darkest_shift(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mf, "MAX_OVER", -1.0)
    cfg = mf.FitConfig(experts=EXPERTS, map_side=64)
    _, best = mf.fit(mf.featurise_all(_study(), cfg), cfg)
    assert not best.within_budget and best.shift == mf.SHIFTS[0]


def test_loso_fits_each_fold_without_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[set[str]] = []
    real_fit = mf.fit

    def spy(items: list[mf.Featured], cfg: mf.FitConfig) -> tuple[MapFusionModel, mf.BiasChoice]:
        seen.append({it.source for it in items})
        return real_fit(items, cfg)

    monkeypatch.setattr(mf, "fit", spy)
    cfg = mf.FitConfig(experts=EXPERTS, map_side=64)
    folds = mf.loso(mf.featurise_all(_study(), cfg), cfg)
    assert sorted(folds) == ["a", "b", "c"]
    assert seen == [{"b", "c"}, {"a", "c"}, {"a", "b"}]


def test_written_weights_load_in_the_product_and_give_the_same_map(tmp_path: Path) -> None:
    cfg = mf.FitConfig(experts=EXPERTS, map_side=64)
    entries = _study(1)
    items = mf.featurise_all(entries, cfg)
    model, best = mf.fit(items, cfg)
    path = tmp_path / "map.json"
    path.write_text(json.dumps(mf.weights_json(model, cfg, items, best)))
    loaded = MapFusionModel.from_dict(json.loads(path.read_text()))
    assert mf.config_of(json.loads(path.read_text())) == cfg
    assert np.allclose(
        mf.probability(loaded, entries[0]), mf.probability(model, entries[0]), atol=1e-5
    )


def test_path_hash_is_stable_and_uniform() -> None:
    values = [path_hash(f"real/x/{i}.jpg", "salt:") for i in range(2000)]
    assert values == [path_hash(f"real/x/{i}.jpg", "salt:") for i in range(2000)]
    assert 0.45 < float(np.mean(np.asarray(values) < 0.5)) < 0.55
