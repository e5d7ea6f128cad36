"""Fitted fused tamper map: per-pixel logistic combination of the expert maps -> P(pixel forged).

The hand-set map (`fusion.fuse_heatmaps`, mode "handset") ranks pixels well but its scale is
too cautious for the fixed 0.5 threshold users apply. This module replaces the scale, not the
experts: at a small working resolution (longer side `map_side`) each tamper expert's map is
resized and background-subtracted exactly as the hand-set fusion does (`localize.normalise_map`),
and per pixel a logistic regression reads, for every expert in the fitted set,

    v            the normalised map value,
    smooth(v)    the same map blurred over a few percent of the image (two box-filter passes;
                 context: a hot blob beats a hot speck),
    v / max(v)   the value relative to the map's own peak (a per-image rescaling),
    logit(s)     the expert's image-level score (clipped; 0 when it abstains),
    v * logit(s) the map gated by how sure the expert is about the whole image,
    max smooth(v) the height of the map's strongest blob (an image-level gate: a map with no
                 blob keeps the whole image dark),

plus the hand-set fused value itself. Weights come from `weights/map_fitted.json` (package data,
written by `python -m forenscope.train.map_fit`): fitted on the expert outputs of the real
forgeries with masks and untouched photos of ../shared/data, as stored and laundered, with the
bias set so that 0.5 keeps untouched photos within a false-alarm budget (median flagged share
<= 1%, <= 5% of photos over 1%). Experts outside the fitted set are ignored; an abstaining
expert contributes zeros, as in training. The probability map is resized once to the image size.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from ..types import ExpertResult
from .localize import normalise_map, resize_map

WEIGHTS_FILE = Path(__file__).parent / "weights" / "map_fitted.json"
MODE_ENV = "FORENSCOPE_MAP_FUSION"
MODES = ("handset", "fitted")
DEFAULT_MODE = "handset"
PER_EXPERT = ("value", "smooth", "relative", "score_logit", "value_x_score_logit", "smooth_peak")
SCORE_CLIP = 0.02


@dataclass(frozen=True)
class MapInput:
    """What the map fusion needs from one judged expert."""

    expert: str
    score: float
    heatmap: np.ndarray


@dataclass(frozen=True)
class MapFusionModel:
    experts: tuple[str, ...]
    coef: np.ndarray  # (n_features,): len(PER_EXPERT) per expert, then the hand-set value
    intercept: float
    map_side: int
    smooth_share: float

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MapFusionModel:
        experts = tuple(str(n) for n in data["experts"])
        names = feature_names(experts)
        if list(data["features"]) != names:
            raise ValueError("map fusion weights list other features than this code computes")
        coef = np.asarray(data["coef"], dtype=np.float32)
        if coef.shape != (len(names),):
            raise ValueError(f"map fusion coef has shape {coef.shape}, expected ({len(names)},)")
        side, share = int(data["map_side"]), float(data["smooth_share"])
        if side < 16 or not 0.0 <= share < 0.5:
            raise ValueError(f"bad map_side {side} or smooth_share {share}")
        return cls(experts, coef, float(data["intercept"]), side, share)

    def probability(self, features: np.ndarray) -> np.ndarray:
        """(n_features, h, w) -> P(forged) per pixel, float32."""
        z = np.tensordot(self.coef, features, axes=1) + np.float32(self.intercept)
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0))), dtype=np.float32)


def feature_names(experts: Sequence[str]) -> list[str]:
    return [f"{e}.{f}" for e in experts for f in PER_EXPERT] + ["handset"]


def map_mode() -> str:
    """`FORENSCOPE_MAP_FUSION` (handset | fitted); the default is the hand-set map.

    The fitted map's 0.5 keeps untouched photos within the false-alarm budget, which the
    hand-set map's does not, but under that budget it finds less of the real forgeries and
    misses clear synthetic edits a single expert sees (BENCHMARKS.md, localization), so it
    stays opt-in until a map reaches both.
    """
    mode = os.environ.get(MODE_ENV, DEFAULT_MODE).strip().lower()
    return mode if mode in MODES else DEFAULT_MODE


@lru_cache(maxsize=1)
def load_model() -> MapFusionModel | None:
    """The shipped weights, or None when the JSON is absent."""
    if not WEIGHTS_FILE.exists():
        return None
    return MapFusionModel.from_dict(json.loads(WEIGHTS_FILE.read_text(encoding="utf-8")))


def inputs_from_results(results: Sequence[ExpertResult], targets: Sequence[str]) -> list[MapInput]:
    """Judged experts with a map whose targets are in `targets`."""
    return [
        MapInput(r.expert, float(r.score), r.heatmap)
        for r in results
        if r.judged and r.score is not None and r.heatmap is not None and r.targets in targets
    ]


def _logit(score: float) -> float:
    p = min(1.0 - SCORE_CLIP, max(SCORE_CLIP, score))
    return math.log(p / (1.0 - p))


def normalised_maps(inputs: Sequence[MapInput], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Each expert's map resized to `shape` and background-subtracted, as the hand-set fusion."""
    return {m.expert: normalise_map(resize_map(m.heatmap, *shape)) for m in inputs}


def smooth(v: np.ndarray, share: float) -> np.ndarray:
    """Two box-filter passes of width ~2.45 sigma (sigma = share * longer side): close to a
    Gaussian blur, at a cost that does not grow with the width."""
    size = max(1, round(2.45 * share * max(v.shape)))
    once = ndimage.uniform_filter(v, size, mode="nearest")
    return np.asarray(ndimage.uniform_filter(once, size, mode="nearest"), dtype=np.float32)


def pixel_features(
    normalised: dict[str, np.ndarray],
    scores: dict[str, float],
    handset: np.ndarray,
    experts: Sequence[str],
    smooth_share: float,
) -> np.ndarray:
    """(n_features, h, w) float32 at the handset map's shape; see the module docstring for the
    columns. For fitting; inference computes the same linear score without the stack."""
    h, w = handset.shape
    out = np.zeros((len(PER_EXPERT) * len(experts) + 1, h, w), dtype=np.float32)
    for i, name in enumerate(experts):
        v = normalised.get(name)
        if v is None:
            continue
        peak = float(v.max())
        ls = _logit(scores[name])
        k = len(PER_EXPERT) * i
        out[k] = v
        out[k + 1] = smooth(v, smooth_share)
        out[k + 2] = v / peak if peak > 1e-6 else 0.0
        out[k + 3] = ls
        out[k + 4] = v * ls
        out[k + 5] = float(out[k + 1].max())
    out[-1] = handset
    return out


def linear_score(
    model: MapFusionModel,
    normalised: dict[str, np.ndarray],
    scores: dict[str, float],
    handset: np.ndarray,
) -> np.ndarray:
    """`coef . pixel_features + intercept`, folded per expert into two map terms and a constant
    (the features are linear in v and smooth(v), so nothing needs stacking)."""
    c = model.coef.reshape(-1)
    z = c[-1] * handset + np.float32(model.intercept)
    for i, name in enumerate(model.experts):
        v = normalised.get(name)
        if v is None:
            continue
        cv, cs, cr, cl, cx, cp = c[len(PER_EXPERT) * i : len(PER_EXPERT) * (i + 1)]
        peak = float(v.max())
        ls = _logit(scores[name])
        gain = cv + cx * ls + (cr / peak if peak > 1e-6 else 0.0)
        blurred = smooth(v, model.smooth_share)
        z += np.float32(gain) * v + cs * blurred + np.float32(cl * ls + cp * float(blurred.max()))
    return np.asarray(z, dtype=np.float32)


def fitted_map(
    inputs: Sequence[MapInput],
    handset: np.ndarray,
    normalised: dict[str, np.ndarray],
    *,
    height: int,
    width: int,
    model: MapFusionModel,
) -> np.ndarray:
    """The fitted P(forged) map at (height, width), float32 in [0, 1]; `normalised` and
    `handset` are at `maps.working_size(height, width, model.map_side)`."""
    prob = fitted_work_map(inputs, handset, normalised, model=model)
    return np.asarray(np.clip(resize_map(prob, height, width), 0.0, 1.0), dtype=np.float32)


def fitted_work_map(
    inputs: Sequence[MapInput],
    handset: np.ndarray,
    normalised: dict[str, np.ndarray],
    *,
    model: MapFusionModel,
) -> np.ndarray:
    """`fitted_map` at the working size of `normalised` and `handset` (not resized)."""
    scores = {m.expert: m.score for m in inputs}
    z = linear_score(model, normalised, scores, handset)
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0))))
