"""The fitted verdict: expert summaries -> calibrated P(real, ai_generated, tampered) -> a label
or "inconclusive".

Features, per expert of the fitted set: the clipped log-odds of its score (0 when it abstains,
so abstention is "no opinion", never a vote and never a format indicator), and for experts
that draw maps, the map's `peak`, `area` and `focus` (`summary.map_stats`; 0 without a map).
A multinomial logistic regression over them, divided by a temperature fitted on out-of-fold
predictions, gives the three probabilities. The class with the highest probability is the
verdict only when that probability reaches its class's decision threshold, chosen on
validation data so that each decided label is right at least 90% of the time
(`train/verdict.py`); below it the verdict is "inconclusive".

Weights live in `weights/verdict.json`, written by `python -m forenscope.train.verdict`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Label

LABELS: tuple[Label, ...] = ("real", "ai_generated", "tampered")
CLASS_MIX: dict[Label, float] = {"real": 0.6, "ai_generated": 0.3, "tampered": 0.1}
"""The mix of images the fitted verdict assumes a user brings: most real, generated images more
common than local edits. Its fit, its calibration and its decision thresholds (hence the 90%
precision of each decided label) all refer to this mix, never to the accidental class mix of
the training data. BENCHMARKS.md also reports the figures under an equal mix."""
MAP_STATS = ("peak", "area", "focus")
SCORE_CLIP = 0.02
WEIGHTS_FILE = Path(__file__).parent / "weights" / "verdict.json"
FORMAT = "forenscope-verdict-2"


def score_logit(score: float | None) -> float:
    """Clipped log-odds of a score; 0 (no opinion) for an abstention."""
    if score is None:
        return 0.0
    p = min(1.0 - SCORE_CLIP, max(SCORE_CLIP, float(score)))
    return math.log(p / (1.0 - p))


def feature_names(experts: Sequence[str], map_experts: Sequence[str]) -> list[str]:
    names = [f"{e}.logit" for e in experts]
    return names + [f"{e}.map_{s}" for e in map_experts for s in MAP_STATS]


def features(
    summaries: Mapping[str, Mapping[str, Any]],
    experts: Sequence[str],
    map_experts: Sequence[str],
) -> np.ndarray:
    """The feature vector of one image from `summary.summarise_all` output."""
    x = [score_logit(summaries.get(e, {}).get("score")) for e in experts]
    for e in map_experts:
        stats = summaries.get(e, {}).get("map") or {}
        x.extend(float(stats.get(s, 0.0)) for s in MAP_STATS)
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class VerdictModel:
    experts: tuple[str, ...]
    map_experts: tuple[str, ...]
    coef: np.ndarray  # (3, n_features)
    intercept: np.ndarray  # (3,)
    temperature: float
    thresholds: dict[str, float]  # per class: decide when P(class) >= threshold
    required: tuple[str, ...] = ()  # experts that judged (nearly) every training image
    calibrated: bool = False
    validation: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerdictModel:
        if data.get("format") != FORMAT or tuple(data["classes"]) != LABELS:
            raise ValueError(f"not a {FORMAT} file for classes {LABELS}")
        experts = tuple(str(e) for e in data["experts"])
        map_experts = tuple(str(e) for e in data["map_experts"])
        coef = np.asarray(data["coef"], dtype=np.float64)
        intercept = np.asarray(data["intercept"], dtype=np.float64)
        n = len(feature_names(experts, map_experts))
        if coef.shape != (len(LABELS), n) or intercept.shape != (len(LABELS),):
            raise ValueError(f"verdict weights have shape {coef.shape}, expected (3, {n})")
        thresholds = {str(k): float(v) for k, v in data["thresholds"].items()}
        if set(thresholds) != set(LABELS):
            raise ValueError("verdict weights need one decision threshold per class")
        return cls(
            experts=experts,
            map_experts=map_experts,
            coef=coef,
            intercept=intercept,
            temperature=float(data["temperature"]),
            thresholds=thresholds,
            required=tuple(str(e) for e in data.get("required", [])),
            calibrated=bool(data.get("calibrated", False)),
            validation=dict(data.get("validation", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "classes": list(LABELS),
            "experts": list(self.experts),
            "map_experts": list(self.map_experts),
            "features": feature_names(self.experts, self.map_experts),
            "coef": np.round(self.coef, 6).tolist(),
            "intercept": np.round(self.intercept, 6).tolist(),
            "temperature": round(self.temperature, 6),
            "thresholds": {k: round(v, 6) for k, v in self.thresholds.items()},
            "required": list(self.required),
            "calibrated": self.calibrated,
            "validation": self.validation,
        }

    def applies(self, summaries: Mapping[str, Mapping[str, Any]]) -> bool:
        """Not extrapolated: every required expert must have judged this image."""
        return all(summaries.get(e, {}).get("score") is not None for e in self.required)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Temperature-scaled class logits for one (F,) or many (N, F) feature rows."""
        return np.asarray((x @ self.coef.T + self.intercept) / self.temperature)

    def probabilities(self, summaries: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
        z = self.logits(features(summaries, self.experts, self.map_experts))
        p = np.exp(z - z.max())
        p /= p.sum()
        return {c: float(p[i]) for i, c in enumerate(LABELS)}

    def terms(self, summaries: Mapping[str, Mapping[str, Any]]) -> dict[Label, dict[str, float]]:
        """Per non-real class, each judged expert's share of that class's logit minus real's."""
        x = features(summaries, self.experts, self.map_experts)
        names = feature_names(self.experts, self.map_experts)
        out: dict[Label, dict[str, float]] = {}
        for ci, label in enumerate(LABELS[1:], start=1):
            delta = (self.coef[ci] - self.coef[0]) * x / self.temperature
            per: dict[str, float] = {}
            for name, d in zip(names, delta, strict=True):
                expert = name.split(".", 1)[0]
                if summaries.get(expert, {}).get("score") is not None:
                    per[expert] = per.get(expert, 0.0) + float(d)
            out[label] = per
        return out


def decide(probabilities: Mapping[str, float], thresholds: Mapping[str, float]) -> str:
    """The most probable class when it reaches its threshold, else "inconclusive"."""
    leaning = max(LABELS, key=lambda c: probabilities[c])
    return leaning if probabilities[leaning] >= thresholds[leaning] else "inconclusive"


@lru_cache(maxsize=1)
def shipped_model() -> VerdictModel | None:
    """The shipped fitted verdict, or None when its weights are absent."""
    if not WEIGHTS_FILE.exists():
        return None
    return VerdictModel.from_dict(json.loads(WEIGHTS_FILE.read_text(encoding="utf-8")))
