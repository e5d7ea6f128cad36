"""Fit the fused-map model (`fusion.map_fitted`) on cached expert outputs (`map_data`), with its
bias chosen so that the shipped 0.5 threshold keeps untouched photos dark.

    python -m forenscope.train.map_fit --data ../shared/data [--cache DIR] [--jobs 1]

Images: the study of `map_data` (real forgeries with masks, the AI inpaintings, untouched
camera photos the learned localizer never saw, other untouched photos), as stored and
laundered. A per-pixel logistic regression reads the features of `map_fitted.pixel_features`
on pixels sampled evenly from every image (forged images weigh as much in total as untouched
ones). Its bias is then shifted to the value with the best mean F1@0.5 on the forged images
among those that keep the untouched photos within the false-alarm budget: median flagged
share <= `MAX_MEDIAN` and at most `MAX_OVER` of the photos over 1% flagged.

The honest estimate is leave-one-source-out (`loso`): each source's images are scored by a
model fitted, bias included, without any image of that source. The shipped weights are fitted
on every source; `benchmarks/bench_localization.py` prints both.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..fusion.map_fitted import (
    WEIGHTS_FILE,
    MapFusionModel,
    MapInput,
    feature_names,
    fitted_map,
    normalised_maps,
    pixel_features,
)
from .map_calibration import as_results
from .map_data import DEFAULT_CACHE, Entry, load_study

EXPERTS = ("copy_move", "ela", "jpeg_artifacts", "learned_localizer", "noise", "spectrum")
MAX_MEDIAN = 0.01
MAX_OVER = 0.05
OVER = 0.01  # "a photo with a false alarm": more than 1% of its pixels flagged
PIXELS_PER_IMAGE = 1000
STRIDE = 4  # the bias is chosen on every 4th working pixel each way (16x less memory)
SHIFTS = tuple(float(s) for s in np.round(np.arange(-4.0, 6.01, 0.25), 2))


@dataclass(frozen=True)
class FitConfig:
    experts: tuple[str, ...] = EXPERTS
    smooth_share: float = 0.03
    c: float = 0.1
    map_side: int = 512  # the cache's working size: inference then sees what fitting saw
    seed: int = 0
    # The untouched photos the false-alarm budget is held on: native-resolution camera photos
    # (the target) and the other untouched photos. Held on the camera photos alone, the
    # leave-one-source-out map flagged > 1% of 58% of the other photos.
    budget_groups: tuple[str, ...] = ("camera", "clean_extra")
    # Per-expert features held at 0: v / max(v) lights up the top speck of a pure-noise map,
    # which flagged > 1% of clean synthetic inputs (tests/test_fusion.py) when it was fitted.
    drop: tuple[str, ...] = ("relative",)


@dataclass
class Featured:
    """What fitting needs of one entry: sampled pixel rows and a coarse feature stack."""

    entry: Entry
    rows: np.ndarray  # (n, n_features) float32, pixels off the mask's edge
    labels: np.ndarray  # (n,) int8
    coarse: np.ndarray  # (n_features, h / STRIDE, w / STRIDE) float16
    coarse_truth: np.ndarray  # bool at the coarse grid

    @property
    def forged(self) -> bool:
        return self.entry.forged

    @property
    def source(self) -> str:
        return self.entry.sample.source


def map_inputs(entry: Entry, experts: Sequence[str]) -> list[MapInput]:
    return [
        MapInput(r.expert, float(r.score or 0.0), r.heatmap)
        for r in as_results(entry)
        if r.expert in experts and r.heatmap is not None
    ]


def _stack(entry: Entry, cfg: FitConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """The full feature stack at the working size, and what `fitted_map` needs to redo it."""
    from ..fusion.maps import handset_map

    shape = entry.truth.shape
    inputs = map_inputs(entry, cfg.experts)
    normalised = normalised_maps(inputs, shape)
    handset = handset_map(as_results(entry), shape, normalised)
    hs = handset if handset is not None else np.zeros(shape, np.float32)
    scores = {m.expert: m.score for m in inputs}
    x = pixel_features(normalised, scores, hs, cfg.experts, cfg.smooth_share)
    return x, {"inputs": inputs, "handset": hs, "normalised": normalised}


def featurise(entry: Entry, cfg: FitConfig, rng: np.random.Generator) -> Featured:
    x, _ = _stack(entry, cfg)
    flat = x.reshape(x.shape[0], -1)
    frac = entry.truth.ravel()
    keep = np.flatnonzero((frac <= 0.25) | (frac >= 0.75))  # a mask's edge is ambiguous
    pick = rng.choice(keep, size=min(PIXELS_PER_IMAGE, keep.size), replace=False)
    return Featured(
        entry,
        np.ascontiguousarray(flat[:, pick].T),
        (frac[pick] >= 0.5).astype(np.int8),
        x[:, ::STRIDE, ::STRIDE].astype(np.float16),
        entry.truth[::STRIDE, ::STRIDE] >= 0.5,
    )


def fit_logistic(
    items: Sequence[Featured], c: float, use: np.ndarray
) -> tuple[np.ndarray, float]:  # fmt: skip
    """L2 logistic regression on standardised features (the columns where `use` is True; the
    others get 0), returned in raw feature units. Every image weighs the same within its
    class; forged and untouched weigh half each."""
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([it.rows[:, use] for it in items])
    y = np.concatenate([it.labels for it in items])
    n_forged = sum(it.forged for it in items)
    n_clean = len(items) - n_forged
    w = np.concatenate(
        [
            np.full(len(it.labels), 0.5 / max(1, n_forged if it.forged else n_clean))
            / max(1, len(it.labels))
            for it in items
        ]
    )
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    lr = LogisticRegression(C=c, max_iter=3000).fit((x - mean) / std, y, sample_weight=w * len(w))
    coef = np.zeros(len(use))
    coef[use] = lr.coef_[0] / std
    return coef, float(lr.intercept_[0] - np.sum(lr.coef_[0] * mean / std))


@dataclass(frozen=True)
class BiasChoice:
    shift: float
    f1: float  # mean F1@0.5 over forged images (coarse grid)
    median_flagged: float
    over_1pct: float

    @property
    def within_budget(self) -> bool:
        return self.median_flagged <= MAX_MEDIAN and self.over_1pct <= MAX_OVER


def coarse_logits(model: MapFusionModel, items: Sequence[Featured]) -> list[np.ndarray]:
    return [
        np.tensordot(model.coef, it.coarse.astype(np.float32), axes=1) + model.intercept
        for it in items
    ]


def outcome(
    z: Sequence[np.ndarray], items: Sequence[Featured], shift: float, budget: Sequence[str]
) -> BiasChoice:
    """F1 on the forged items and flagged shares on the untouched items of `budget` groups."""
    f1, flagged = [], []
    for zi, it in zip(z, items, strict=True):
        pred = zi + shift >= 0.0
        if it.forged:
            tp = float(np.count_nonzero(pred & it.coarse_truth))
            total = np.count_nonzero(pred) + np.count_nonzero(it.coarse_truth)
            f1.append(2 * tp / total if tp else 0.0)
        elif it.entry.group in budget:
            flagged.append(float(pred.mean()))
    fl = np.asarray(flagged) if flagged else np.zeros(1)
    return BiasChoice(
        shift,
        float(np.mean(f1)) if f1 else float("nan"),
        float(np.median(fl)),
        float(np.mean(fl > OVER)),
    )


def choose_shift(
    z: Sequence[np.ndarray], items: Sequence[Featured], budget: Sequence[str]
) -> BiasChoice:
    """The shift with the best forged F1 among those within the budget (else the darkest)."""
    table = [outcome(z, items, s, budget) for s in SHIFTS]
    ok = [o for o in table if o.within_budget]
    return max(ok, key=lambda o: (o.f1, -o.shift)) if ok else table[0]


def fit(items: Sequence[Featured], cfg: FitConfig) -> tuple[MapFusionModel, BiasChoice]:
    """The logistic fit on `items`, its bias shifted by `choose_shift` on the same items."""
    names = feature_names(cfg.experts)
    use = np.array([n.split(".")[-1] not in cfg.drop for n in names])
    coef, intercept = fit_logistic(items, cfg.c, use)
    model = MapFusionModel(
        cfg.experts, coef.astype(np.float32), intercept, cfg.map_side, cfg.smooth_share
    )
    best = choose_shift(coarse_logits(model, items), items, cfg.budget_groups)
    return dataclasses.replace(model, intercept=intercept + best.shift), best


def loso(items: Sequence[Featured], cfg: FitConfig) -> dict[str, MapFusionModel]:
    """One model per manifest source, fitted without any image of that source (forged or
    untouched, every variant): the honest estimate for that source's images."""
    return {
        source: fit([it for it in items if it.source != source], cfg)[0]
        for source in sorted({it.source for it in items})
    }


def probability(model: MapFusionModel, entry: Entry) -> np.ndarray:
    """The product's fitted map (`map_fitted.fitted_map`) at the entry's working size."""
    cfg = FitConfig(model.experts, model.smooth_share, map_side=model.map_side)
    _, parts = _stack(entry, cfg)
    h, w = entry.truth.shape
    return fitted_map(
        parts["inputs"], parts["handset"], parts["normalised"], height=h, width=w, model=model
    )


def config_of(weights: dict[str, Any]) -> FitConfig:
    """The recipe a shipped weights file was fitted with (to refit it per fold)."""
    recipe = weights.get("recipe", {})
    return FitConfig(
        experts=tuple(weights["experts"]),
        smooth_share=float(weights["smooth_share"]),
        c=float(recipe.get("c", 0.1)),
        map_side=int(weights["map_side"]),
        seed=int(recipe.get("seed", 0)),
        budget_groups=tuple(recipe.get("budget_groups", FitConfig.budget_groups)),
        drop=tuple(recipe.get("drop", ())),
    )


def featurise_all(entries: Sequence[Entry], cfg: FitConfig) -> list[Featured]:
    rng = np.random.default_rng(cfg.seed)
    return [featurise(e, cfg, rng) for e in entries]


def weights_json(
    model: MapFusionModel, cfg: FitConfig, items: Sequence[Featured], best: BiasChoice
) -> dict[str, Any]:
    sources = sorted({it.source for it in items})
    n_forged = sum(it.forged for it in items)
    return {
        "version": 2,
        "experts": list(model.experts),
        "features": feature_names(model.experts),
        "coef": [round(float(c), 6) for c in model.coef],
        "intercept": round(float(model.intercept), 6),
        "map_side": model.map_side,
        "smooth_share": model.smooth_share,
        "fitted_on": (
            f"{len(items)} image variants (as stored and laundered) of ../shared/data: "
            f"{n_forged} with forgery masks, {len(items) - n_forged} untouched; sources "
            + ", ".join(sources)
            + "; camera photos the learned localizer trained on are left out"
        ),
        "bias_rule": (
            f"shift {best.shift:+.2f}: best mean F1@0.5 on the forged images with untouched "
            f"{' and '.join(cfg.budget_groups)} photos at median flagged <= {MAX_MEDIAN:.0%} "
            f"and <= {MAX_OVER:.0%} of them over {OVER:.0%} flagged (in-sample: F1 "
            f"{best.f1:.3f}, median {100 * best.median_flagged:.2f}%, over 1% "
            f"{100 * best.over_1pct:.1f}%)"
        ),
        "recipe": {
            "c": cfg.c,
            "seed": cfg.seed,
            "budget_groups": list(cfg.budget_groups),
            "drop": list(cfg.drop),
            "pixels_per_image": PIXELS_PER_IMAGE,
            "command": "python -m forenscope.train.map_fit --data ../shared/data",
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--c", type=float, default=0.1, help="inverse L2 strength")
    ap.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    args = ap.parse_args(argv)
    if not (args.data / "manifest.csv").is_file():
        print(f"no manifest in {args.data}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    cfg = FitConfig(c=args.c)
    items = featurise_all(load_study(args.data, args.cache, args.jobs), cfg)
    model, best = fit(items, cfg)
    out = weights_json(model, cfg, items, best)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: out[k] for k in ("fitted_on", "bias_rule")}, indent=1))
    print(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
