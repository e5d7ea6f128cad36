"""Expert results -> one verdict, attribution, fused tamper map and key evidence.

Rules, in order:

1. Abstainers never vote. A result with `score is None` or with an `error` is left out of every
   step below. When no expert could judge, the verdict is the prior (`PRIOR`, label "real") with
   `decided_by="none"`: it is not a finding, and the explanation says so.
2. Provenance dominates. Evidence with `proves` set (a C2PA AI claim, generator parameters, a
   known generator watermark) decides the label with probability `PROVENANCE_PROBABILITY`,
   `decided_by="provenance"`, and is cited first. If proofs disagree, the label proven most often
   wins (ties: ai_generated, then tampered, then real).
3. Otherwise experts are pooled by target. Each score is read as a likelihood ratio against
   "real" under even odds, `llr = logit(score)` (scores clipped to [0.02, 0.98]), scaled by a
   vote weight `EXPERT_WEIGHTS[name] * confidence`: `a = weight * llr`. Per class
   (ai_generated, tampered) the pooled evidence is a weighted noisy-OR in odds space for the
   experts that see something, `log(1 + sum(exp(a) - 1))` over a > 0 (one decisive detector is
   enough, agreement adds a little), plus `NEGATIVE_DISCOUNT[class]` times the
   informativeness-weighted mean `sum(a*|a|) / sum(|a|)` of the experts that see nothing
   (silence of a detector that looks for one kind of trace is weak evidence of absence).
   Experts targeting "both" feed both classes. The class logits `log PRIOR[c] + L_c`
   (L_real = 0) go through a softmax, so the three probabilities sum to 1. These hand-set
   probabilities are NOT calibrated (`calibrated=False`). The label is the most probable class.
3b. Fitted path (opt-in: `FORENSCOPE_FUSION=fitted`). When `weights/verdict.json` (package data
   next to this module, written by `benchmarks/fit_fusion.py`) exists and the results come from
   exactly its expert set, step 3
   is replaced by a multinomial logistic regression over, per expert, the judged indicator and
   `judged * logit(score)` (abstention is information, not a 0.5), divided by a temperature
   fitted on held-out predictions; `calibrated` is the JSON's `calibrated` flag. Provenance
   (step 2) still overrides it. The model is not extrapolated: when an expert that judged every
   training image abstains (e.g. clip_detector without its cached model), the input is outside
   the data it was fitted on and the hand-set rule above is the fallback, as it is without the
   JSON or for another expert set.
4. Attribution. The method (gan / diffusion / other) comes from `details["method"]` of judged
   experts that found something (score >= 0.5) or proved the label, each vote weighted by
   weight * confidence * score * `details["method_probability"]` (default 1); the heaviest wins.
   Scope is "local" when a compact region dominates the fused map (and always for "tampered",
   which is local by definition), "global" for ai_generated without one, "none" for real.
5. Fused map. Only judged experts whose targets include tampering contribute. Each map is
   resized to the image, background-subtracted (`localize.normalise_map`: a flat noise map stays
   low, no min-max stretch) and averaged with weights `weight * confidence * score**2`, so a
   confident expert that found something dominates. The result is scaled by
   `min(1, mean score / 0.5)`: maps of experts that judge the image clean cannot light up.
5b. Fitted map (opt-in: `FORENSCOPE_MAP_FUSION=fitted`, see `map_fitted.py`): a per-pixel
   logistic regression over the same normalised maps, the experts' scores and the step-5 map,
   fitted on synthetic forgeries of real photos (`benchmarks/fit_map_fusion.py`), gives
   P(pixel forged). Opt-in because on real tampered images it buys its higher F1@0.5 with about
   twice the flagged area on untouched photos (BENCHMARKS.md, localization).
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..types import Attribution, Evidence, ExpertResult, Label, Method, Verdict
from .expert_weights import TAMPER_TARGETS, expert_weight
from .maps import compact_region_dominates, fuse_heatmaps

LABELS: tuple[Label, ...] = ("real", "ai_generated", "tampered")
PRIOR: dict[Label, float] = {"real": 0.5, "ai_generated": 0.25, "tampered": 0.25}
PROVENANCE_PROBABILITY = 0.99
SCORE_CLIP = 0.02
# How much "I see nothing" counts against a class, relative to "I see it". Each tamper detector
# sees one kind of trace, so its silence is weak evidence; generation detectors look at the
# whole image, so theirs counts more.
NEGATIVE_DISCOUNT: dict[Label, float] = {"ai_generated": 0.7, "tampered": 0.35}
MAX_KEY_EVIDENCE = 8
EVIDENCE_PER_EXPERT = 2
_METHODS: tuple[Method, ...] = ("gan", "diffusion", "other")


@dataclass
class Fused:
    """What the fusion decided; `contributions` maps each voting expert to its signed term in
    its class's pooled log-likelihood ratio (positive pushes away from "real")."""

    verdict: Verdict
    attribution: Attribution
    heatmap: np.ndarray | None
    key_evidence: list[Evidence] = field(default_factory=list)
    contributions: dict[str, float] = field(default_factory=dict)


def fuse(results: list[ExpertResult], *, height: int, width: int) -> Fused:
    """Combine expert results into a verdict, attribution, fused map and key evidence."""
    judged = [r for r in results if r.judged]
    heatmap = fuse_heatmaps(judged, height=height, width=width)
    if not judged:
        verdict = Verdict(
            label="real",
            probability=PRIOR["real"],
            probabilities=dict(PRIOR),
            decided_by="none",
            calibrated=False,
        )
        basis = "no expert could judge this image"
        return Fused(verdict, Attribution(method="unknown", scope="unknown", basis=basis), heatmap)
    model = fitted_model()
    if model is not None and model.matches(results):
        terms, probabilities = model.terms(results), model.probabilities(results)
        calibrated = model.calibrated
    else:
        terms = _pooled_terms(judged)
        probabilities = _softmax_probabilities(terms)
        calibrated = False
    proofs = [(r, ev) for r in judged for ev in r.evidence if ev.proves is not None]
    if proofs:
        verdict = _provenance_verdict(proofs, probabilities)
    else:
        label = max(LABELS, key=lambda c: probabilities[c])  # ties keep the earlier label
        verdict = Verdict(
            label=label,
            probability=probabilities[label],
            probabilities=probabilities,
            decided_by="experts",
            calibrated=calibrated,
        )
    contributions = _contributions(terms)
    return Fused(
        verdict=verdict,
        attribution=attribute(verdict.label, judged, heatmap),
        heatmap=heatmap,
        key_evidence=_key_evidence(verdict.label, judged, terms, proofs),
        contributions=contributions,
    )


def handset_probabilities(results: Sequence[ExpertResult]) -> dict[str, float]:
    """Class probabilities of the hand-set rule (step 3) from the judged results."""
    return _softmax_probabilities(_pooled_terms([r for r in results if r.judged]))


@dataclass(frozen=True)
class FittedFusion:
    """Multinomial logistic regression over expert features (see step 3b), numpy inference."""

    experts: tuple[str, ...]
    coef: np.ndarray  # (len(LABELS), 2 * len(experts)): per expert [judged, judged * logit]
    intercept: np.ndarray  # (len(LABELS),)
    temperature: float = 1.0
    calibrated: bool = False
    always_judged: frozenset[str] = frozenset()  # judged on every training image

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FittedFusion:
        if tuple(data["classes"]) != LABELS:
            raise ValueError(f"fusion weights are for classes {data['classes']}, not {LABELS}")
        experts = tuple(str(n) for n in data["experts"])
        coef = np.asarray(data["coef"], dtype=np.float64)
        intercept = np.asarray(data["intercept"], dtype=np.float64)
        if coef.shape != (len(LABELS), 2 * len(experts)) or intercept.shape != (len(LABELS),):
            raise ValueError(f"fusion weights have shape {coef.shape}, {intercept.shape}")
        temperature = float(data.get("temperature", 1.0))
        calibrated = bool(data.get("calibrated", False))
        always = frozenset(str(n) for n in data.get("always_judged", []))
        return cls(experts, coef, intercept, temperature, calibrated, always)

    def matches(self, results: Sequence[ExpertResult]) -> bool:
        """The model applies to the expert set it was fitted on (abstainers included), and only
        when every expert that judged all training images judged this one too."""
        names = [r.expert for r in results]
        if len(names) != len(set(names)) or set(names) != set(self.experts):
            return False
        return all(r.judged for r in results if r.expert in self.always_judged)

    def features(self, results: Sequence[ExpertResult]) -> np.ndarray:
        return expert_features(results, self.experts)

    def logits(self, results: Sequence[ExpertResult]) -> np.ndarray:
        z = (self.coef @ self.features(results) + self.intercept) / self.temperature
        return np.asarray(z, dtype=np.float64)

    def probabilities(self, results: Sequence[ExpertResult]) -> dict[str, float]:
        z = self.logits(results)
        p = np.exp(z - z.max())
        p /= p.sum()
        return {c: float(p[i]) for i, c in enumerate(LABELS)}

    def terms(self, results: Sequence[ExpertResult]) -> dict[Label, dict[str, float]]:
        """Per non-real class, each judged expert's share of that class's logit minus real's."""
        x = self.features(results)
        out: dict[Label, dict[str, float]] = {}
        for ci, label in enumerate(LABELS[1:], start=1):
            delta = (self.coef[ci] - self.coef[0]) * x / self.temperature
            out[label] = {
                r.expert: float(delta[2 * i] + delta[2 * i + 1])
                for r in results
                if r.judged
                for i in [self.experts.index(r.expert)]
            }
        return out


def expert_features(results: Sequence[ExpertResult], experts: Sequence[str]) -> np.ndarray:
    """Per expert in `experts` order: [judged, judged * clipped logit(score)]."""
    by_name = {r.expert: r for r in results}
    x = np.zeros(2 * len(experts), dtype=np.float64)
    for i, name in enumerate(experts):
        r = by_name.get(name)
        if r is not None and r.judged and r.score is not None:
            x[2 * i], x[2 * i + 1] = 1.0, _llr(r.score)
    return x


WEIGHTS_FILE = Path(__file__).parent / "weights" / "verdict.json"


FUSION_ENV = "FORENSCOPE_FUSION"


def fitted_model() -> FittedFusion | None:
    """The shipped fitted fusion when `FORENSCOPE_FUSION=fitted`, else None (hand-set).

    Opt-in for now: it was fitted and cross-validated on 256 px JPEG-aligned images; on
    full-size photos its calibration is unverified, and on the 15 full-size wallpapers of
    ../shared/data it did not reduce false alarms (4 vs 3 of 15). See BENCHMARKS.md.
    """
    if os.environ.get(FUSION_ENV, "handset") != "fitted":
        return None
    return load_fitted()


@lru_cache(maxsize=1)
def load_fitted() -> FittedFusion | None:
    """The shipped fitted fusion, or None when the JSON is absent."""
    if not WEIGHTS_FILE.exists():
        return None
    return FittedFusion.from_dict(json.loads(WEIGHTS_FILE.read_text(encoding="utf-8")))


def _llr(score: float) -> float:
    p = min(1.0 - SCORE_CLIP, max(SCORE_CLIP, score))
    return math.log(p / (1.0 - p))


def _pooled_terms(judged: list[ExpertResult]) -> dict[Label, dict[str, float]]:
    """Per class, each voting expert's term; the terms of a class sum to its pooled LLR."""
    votes: dict[Label, list[tuple[str, float]]] = {"ai_generated": [], "tampered": []}
    for r in judged:
        assert r.score is not None  # judged
        vote = (r.expert, expert_weight(r.expert) * r.confidence * _llr(r.score))
        if r.targets in ("ai_generated", "both"):
            votes["ai_generated"].append(vote)
        if r.targets in TAMPER_TARGETS:
            votes["tampered"].append(vote)
    return {label: _class_terms(items, NEGATIVE_DISCOUNT[label]) for label, items in votes.items()}


def _class_terms(votes: list[tuple[str, float]], discount: float) -> dict[str, float]:
    """Soft-OR of the positive votes plus the discounted, informativeness-weighted mean of the
    negative ones; returned as one additive term per expert."""
    terms = {name: 0.0 for name, _ in votes}
    excess = {name: math.expm1(min(a, 30.0)) for name, a in votes if a > 0}
    if excess:
        positive = math.log1p(sum(excess.values()))
        for name, e in excess.items():
            terms[name] = positive * e / sum(excess.values())
    negatives = [(name, a) for name, a in votes if a < 0]
    denominator = sum(abs(a) for _, a in negatives)
    for name, a in negatives:
        terms[name] = discount * a * abs(a) / denominator
    return terms


def _softmax_probabilities(terms: dict[Label, dict[str, float]]) -> dict[str, float]:
    logits = {c: math.log(PRIOR[c]) + sum(terms.get(c, {}).values()) for c in LABELS}
    top = max(logits.values())
    exp = {c: math.exp(v - top) for c, v in logits.items()}
    total = sum(exp.values())
    return {c: exp[c] / total for c in LABELS}


def _provenance_verdict(
    proofs: list[tuple[ExpertResult, Evidence]], expert_probs: dict[str, float]
) -> Verdict:
    counts = Counter(ev.proves for _, ev in proofs)
    precedence: tuple[Label, ...] = ("ai_generated", "tampered", "real")
    label = max(precedence, key=lambda c: (counts.get(c, 0), -precedence.index(c)))
    rest = [c for c in LABELS if c != label]
    rest_total = sum(expert_probs[c] for c in rest)
    probabilities = {label: PROVENANCE_PROBABILITY}
    for c in rest:
        share = expert_probs[c] / rest_total if rest_total > 0 else 1.0 / len(rest)
        probabilities[c] = (1.0 - PROVENANCE_PROBABILITY) * share
    return Verdict(
        label=label,
        probability=PROVENANCE_PROBABILITY,
        probabilities={c: probabilities[c] for c in LABELS},
        decided_by="provenance",
        calibrated=False,
    )


def _contributions(terms: dict[Label, dict[str, float]]) -> dict[str, float]:
    """One number per expert: its term, or for "both" experts the larger-magnitude one."""
    out: dict[str, float] = {}
    for class_terms in terms.values():
        for name, term in class_terms.items():
            if name not in out or abs(term) > abs(out[name]):
                out[name] = term
    return out


def _support(label: Label, name: str, terms: dict[Label, dict[str, float]]) -> float:
    """How much an expert's vote supports `label` (positive = supports)."""
    if label == "real":
        own = [t[name] for t in terms.values() if name in t]
        return -max(own) if own else 0.0
    return terms.get(label, {}).get(name, 0.0)


def _key_evidence(
    label: Label,
    judged: list[ExpertResult],
    terms: dict[Label, dict[str, float]],
    proofs: list[tuple[ExpertResult, Evidence]],
) -> list[Evidence]:
    """Proofs of the label first, then evidence of the experts that most support the label."""
    chosen: list[Evidence] = [ev for _, ev in proofs if ev.proves == label]
    ranked = sorted(judged, key=lambda r: -_support(label, r.expert, terms))
    for r in ranked:
        if _support(label, r.expert, terms) <= 0:
            break
        # Findings that point at a place come before context such as "JPEG quality 92".
        located_first = sorted(r.evidence, key=lambda ev: ev.bbox is None)
        fresh = [ev for ev in located_first if ev not in chosen][:EVIDENCE_PER_EXPERT]
        chosen.extend(fresh)
    return chosen[:MAX_KEY_EVIDENCE]


def attribute(label: Label, judged: list[ExpertResult], heatmap: np.ndarray | None) -> Attribution:
    """Method from expert details, scope from the shape of the fused map."""
    if label == "real":
        return Attribution(method="unknown", scope="none", basis="the verdict is 'real'")
    method, method_basis = _method_vote(judged)
    compact = heatmap is not None and compact_region_dominates(heatmap)
    if label == "tampered":
        scope_basis = (
            "a compact region dominates the fused map"
            if compact
            else "tampering is a local edit, though no compact region stands out in the map"
        )
        scope = "local"
    else:
        scope = "local" if compact else "global"
        scope_basis = (
            "a compact region dominates the fused map"
            if compact
            else "no compact region stands out, so the whole image is implicated"
        )
    return Attribution(method=method, scope=scope, basis=f"{method_basis}; {scope_basis}")


def _method_vote(judged: list[ExpertResult]) -> tuple[Method, str]:
    votes: dict[Method, float] = {}
    sources: dict[Method, list[str]] = {}
    for r in judged:
        method = r.details.get("method")
        proves = any(ev.proves is not None for ev in r.evidence)
        if method not in _METHODS or r.score is None or not (proves or r.score >= 0.5):
            continue
        sure = r.details.get("method_probability", 1.0)
        sure = float(sure) if isinstance(sure, int | float) else 1.0
        weight = expert_weight(r.expert) * r.confidence * r.score * sure + (10.0 if proves else 0.0)
        votes[method] = votes.get(method, 0.0) + weight
        sources.setdefault(method, []).append(r.expert)
    if not votes:
        return "unknown", "no expert named a generation method"
    best = max(votes, key=lambda m: votes[m])
    return best, f"method '{best}' reported by {', '.join(sources[best])}"
