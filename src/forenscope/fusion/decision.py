"""Probabilities + provenance + conflicts -> the verdict's label, one function for the product,
the training protocol and the evaluation, so all three decide identically."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..types import Label
from . import verdict_rules
from .verdict_model import LABELS, decide

PROVENANCE_PROBABILITY = 0.99


@dataclass(frozen=True)
class Decision:
    label: str  # a class or "inconclusive"
    leaning: Label
    probabilities: dict[str, float]
    decided_by: Literal["provenance", "experts"]
    conflicts: list[str] = field(default_factory=list)


def proven_label(summaries: Mapping[str, Mapping[str, Any]]) -> Label | None:
    """The label that provenance proves (most experts proving it; ties: ai_generated, then
    tampered, then real), or None without proof."""
    counts: Counter[str] = Counter(p for s in summaries.values() for p in s.get("proves", []))
    if not counts:
        return None
    precedence: tuple[Label, ...] = ("ai_generated", "tampered", "real")
    return max(precedence, key=lambda c: (counts.get(c, 0), -precedence.index(c)))


def provenance_probabilities(label: Label, expert_probs: Mapping[str, float]) -> dict[str, float]:
    """`label` at `PROVENANCE_PROBABILITY`; the rest shared as the experts' odds say."""
    rest = [c for c in LABELS if c != label]
    rest_total = sum(expert_probs[c] for c in rest)
    out = {label: PROVENANCE_PROBABILITY}
    for c in rest:
        share = expert_probs[c] / rest_total if rest_total > 0 else 1.0 / len(rest)
        out[c] = (1.0 - PROVENANCE_PROBABILITY) * share
    return {c: out[c] for c in LABELS}


def make_decision(
    summaries: Mapping[str, Mapping[str, Any]],
    probabilities: Mapping[str, float],
    thresholds: Mapping[str, float],
) -> Decision:
    proven = proven_label(summaries)
    if proven is not None:
        probs = provenance_probabilities(proven, probabilities)
        leaning: Label = proven
        label: str = proven
        decided_by: Literal["provenance", "experts"] = "provenance"
    else:
        probs = dict(probabilities)
        leaning = max(LABELS, key=lambda c: probs[c])  # ties keep the earlier label
        label = decide(probs, thresholds)
        decided_by = "experts"
    conflicts = verdict_rules.conflicts(summaries, leaning)
    return Decision(
        label="inconclusive" if conflicts else label,
        leaning=leaning,
        probabilities=probs,
        decided_by=decided_by,
        conflicts=conflicts,
    )
