"""Expert results -> one verdict, attribution, fused tamper map and key evidence.

Rules, in order:

1. Abstainers never vote. A result with `score is None` or with an `error` is left out of every
   step below. When no expert could judge, the verdict is "inconclusive" (leaning on the prior,
   `decided_by="none"`): it is not a finding, and the explanation says so.
2. Probabilities. By default (`FORENSCOPE_FUSION=fitted`) the fitted verdict model
   (`verdict_model.py`, weights in `weights/verdict.json`, written by
   `python -m forenscope.train.verdict`) reads each expert's score and map statistics and gives
   temperature-calibrated probabilities; `calibrated` is true only when its leave-one-source-out
   validation met the calibration target. It is not extrapolated: when a required expert (one
   that judged nearly every training image, e.g. clip_detector without its cached encoder)
   abstains, or with `FORENSCOPE_FUSION=handset`, the hand-set pooling below is used instead
   and the verdict says it is uncalibrated.
   Hand-set pooling: each score is read as a likelihood ratio against "real" under even odds,
   `llr = logit(score)` (scores clipped to [0.02, 0.98]), scaled by a vote weight
   `EXPERT_WEIGHTS[name] * confidence`: `a = weight * llr`. Per class (ai_generated, tampered)
   the pooled evidence is a weighted noisy-OR in odds space for the experts that see something,
   `log(1 + sum(exp(a) - 1))` over a > 0, plus `NEGATIVE_DISCOUNT[class]` times the
   informativeness-weighted mean `sum(a*|a|) / sum(|a|)` of the experts that see nothing. The
   class logits `log PRIOR[c] + L_c` (L_real = 0) go through a softmax.
3. Provenance dominates. Evidence with `proves` set (a C2PA AI claim, generator parameters, a
   known generator watermark, an inpainting run's parameters) decides the label with probability
   `PROVENANCE_PROBABILITY`, `decided_by="provenance"`, and is cited first. If proofs disagree,
   the label proven most often wins (ties: ai_generated, then tampered, then real).
4. Decision. The most probable class is the label only when its probability reaches that
   class's threshold (the fitted model's, chosen on validation data so that each decided label
   is right at least 90% of the time; `HANDSET_DECIDE` for the hand-set pooling); otherwise the
   label is "inconclusive" and `leaning` keeps the most probable class. Conflicting strong
   evidence (`verdict_rules.py`: a compact high-scoring region, an editor named in the metadata,
   a learned detector far from the others, a signed capture claim against an AI score) never
   lets that class stand: the label becomes "inconclusive" and `conflicts` names each conflict.
5. Attribution. The method (gan / diffusion / other) comes from `details["method"]` of judged
   experts that found something (score >= 0.5) or proved the label, each vote weighted by
   weight * confidence * score * `details["method_probability"]` (default 1); the heaviest wins.
   Scope is "local" when a compact region dominates the fused map (and always for "tampered",
   which is local by definition), "global" for ai_generated without one, "none" for real. The
   basis says it in words that agree with the regions the report draws (step 6).
6. The fused map is `maps.fuse_heatmaps` (see there); `localize.localize` thresholds it into the
   mask and the numbered regions at the map's working size (only the final mask is upsampled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from ..config import AnalysisConfig
from ..types import Attribution, Evidence, ExpertResult, Label, Method, Outcome, Region, Verdict
from .decision import make_decision
from .expert_weights import TAMPER_TARGETS, expert_weight
from .localize import localize
from .maps import compact_region_dominates, fused_work_map, shared_normalised, to_image_size
from .summary import summarise_all
from .verdict_model import LABELS, VerdictModel, shipped_model

SCORE_CLIP = 0.02
# How much "I see nothing" counts against a class, relative to "I see it". Each tamper detector
# sees one kind of trace, so its silence is weak evidence; generation detectors look at the
# whole image, so theirs counts more.
NEGATIVE_DISCOUNT: dict[Label, float] = {"ai_generated": 0.7, "tampered": 0.35}
MAX_KEY_EVIDENCE = 8
EVIDENCE_PER_EXPERT = 2
_METHODS: tuple[Method, ...] = ("gan", "diffusion", "other")


PRIOR: dict[Label, float] = {"real": 0.5, "ai_generated": 0.25, "tampered": 0.25}
"""The hand-set pooling's prior (and the verdict's when no expert could judge)."""
HANDSET_DECIDE = 0.55
"""The hand-set pooling is uncalibrated: it decides only well clear of an even split."""


@dataclass
class Fused:
    """What the fusion decided; `contributions` maps each voting expert to its signed term in
    its class's pooled log-likelihood ratio (positive pushes away from "real"); `mask` and
    `regions` are the fused map localized (None and [] without a map)."""

    verdict: Verdict
    attribution: Attribution
    heatmap: np.ndarray | None
    key_evidence: list[Evidence] = field(default_factory=list)
    contributions: dict[str, float] = field(default_factory=dict)
    mask: np.ndarray | None = None
    regions: list[Region] = field(default_factory=list)


def fusion_mode() -> str:
    """`FORENSCOPE_FUSION`: "fitted" (default) or "handset"."""
    return AnalysisConfig.current().fusion


def fitted_model() -> VerdictModel | None:
    """The shipped fitted verdict in "fitted" mode, else None."""
    return shipped_model() if fusion_mode() == "fitted" else None


def fuse(results: list[ExpertResult], *, height: int, width: int, threshold: float = 0.5) -> Fused:
    """Combine expert results into a verdict, attribution, fused map and key evidence, and
    localize the map at `threshold` so the attribution's words agree with the regions drawn."""
    judged = [r for r in results if r.judged]
    # Localized at the working size the map was fused at; only the map and mask are upsampled.
    # The tamper maps are normalised once for the fused map and the regions' experts.
    normalised = shared_normalised(judged, height, width)
    work = fused_work_map(judged, height=height, width=width, normalised=normalised)
    heatmap = None if work is None else to_image_size(work, height, width)
    mask, regions = (
        (None, [])
        if work is None
        else localize(
            work,
            results=results,
            threshold=threshold,
            shape=(height, width),
            normalised=normalised,
        )
    )
    if not judged:
        verdict = Verdict(
            label="inconclusive",
            leaning="real",
            probability=PRIOR["real"],
            probabilities=dict(PRIOR),
            decided_by="none",
            calibrated=False,
        )
        basis = "no expert could judge this image"
        unknown = Attribution(method="unknown", scope="unknown", basis=basis)
        return Fused(verdict, unknown, heatmap, mask=mask, regions=regions)
    summaries = summarise_all(results)
    model = fitted_model()
    if model is not None and model.applies(summaries):
        terms, probabilities = model.terms(summaries), model.probabilities(summaries)
        calibrated, thresholds = model.calibrated, model.thresholds
    else:
        terms = _pooled_terms(judged)
        probabilities = _softmax_probabilities(terms)
        calibrated, thresholds = False, dict.fromkeys(LABELS, HANDSET_DECIDE)
    decision = make_decision(summaries, probabilities, thresholds)
    proofs = [(r, ev) for r in judged for ev in r.evidence if ev.proves is not None]
    verdict = Verdict(
        label=cast(Outcome, decision.label),
        leaning=decision.leaning,
        probability=decision.probabilities[decision.leaning],
        probabilities=decision.probabilities,
        decided_by=decision.decided_by,
        calibrated=calibrated and decision.decided_by == "experts",
        conflicts=decision.conflicts,
    )
    return Fused(
        verdict=verdict,
        attribution=attribute(decision.leaning, judged, heatmap, regions=len(regions)),
        heatmap=heatmap,
        key_evidence=_key_evidence(decision.leaning, judged, terms, proofs),
        contributions=_contributions(terms),
        mask=mask,
        regions=regions,
    )


def handset_probabilities(results: Sequence[ExpertResult]) -> dict[str, float]:
    """Class probabilities of the hand-set pooling from the judged results."""
    return _softmax_probabilities(_pooled_terms([r for r in results if r.judged]))


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


def attribute(
    label: Label, judged: list[ExpertResult], heatmap: np.ndarray | None, *, regions: int
) -> Attribution:
    """Method from expert details, scope from the shape of the fused map; `regions` is how many
    regions the report draws from that map, so the basis never reads "nothing stands out"
    next to numbered boxes."""
    if label == "real":
        return Attribution(method="unknown", scope="none", basis="the verdict is 'real'")
    method, method_basis = _method_vote(judged)
    compact = heatmap is not None and compact_region_dominates(heatmap)
    if compact:
        scope = "local"
        scope_basis = "a compact region dominates the fused map"
    elif label == "tampered":  # local by definition, wherever the map points
        scope = "local"
        scope_basis = (
            f"tampering is a local edit, though {_no_dominant_region(regions, ' in the map')}"
        )
    else:
        scope = "global"
        scope_basis = f"{_no_dominant_region(regions)}, so the whole image is implicated"
    return Attribution(method=method, scope=scope, basis=f"{method_basis}; {scope_basis}")


def _no_dominant_region(regions: int, where: str = "") -> str:
    """That no compact region dominates the map, said the way the report draws it."""
    if regions == 0:
        return f"no compact region stands out{where}"
    if regions == 1:
        return "the fused map marks one region that does not dominate it"
    return f"the fused map marks {regions} regions, none dominating"


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
