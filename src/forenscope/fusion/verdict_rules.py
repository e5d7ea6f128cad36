"""Conflicting strong evidence: when it blocks a confident label, and how it is said.

A calibrated probability is an average over images like the training data; a user's image may
carry one strong signal that the average hides. These rules never raise a label, they only
withhold one: when strong evidence contradicts the leading class, the verdict becomes
"inconclusive" and each conflict is named in words (`Verdict.conflicts`). They read the same
expert summaries as the fitted model (`summary.summarise_all`), so training, evaluation and
the product apply them identically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A learned detector this sure of "generated" is not outvoted silently.
LEARNED_STRONG = 0.9
LEARNED_EXPERTS = ("clip_detector",)
# A tamper map is "a compact region with a high score" at these levels (`summary.map_stats`).
REGION_SCORE = 0.6
REGION_PEAK = 0.6
REGION_FOCUS = 0.6
TAMPER_TARGETS = ("tampered", "both")


def _judged(summaries: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [s for s in summaries.values() if s.get("score") is not None]


def compact_region(summaries: Mapping[str, Mapping[str, Any]]) -> str | None:
    """A tamper expert that is sure and whose map is one compact hot region."""
    for s in _judged(summaries):
        stats = s.get("map") or {}
        if (
            s.get("targets") in TAMPER_TARGETS
            and float(s["score"]) >= REGION_SCORE
            and stats.get("peak", 0.0) >= REGION_PEAK
            and stats.get("focus", 0.0) >= REGION_FOCUS
        ):
            return (
                f"{s['expert']} finds one compact region (score {float(s['score']):.2f}, "
                f"{100 * stats.get('area', 0.0):.1f}% of the image)"
            )
    return None


def editor_named(summaries: Mapping[str, Mapping[str, Any]]) -> str | None:
    for s in summaries.values():
        editor = (s.get("flags") or {}).get("editor")
        if editor:
            return f"the metadata names an image editor ({editor})"
    return None


def learned_far_apart(summaries: Mapping[str, Mapping[str, Any]]) -> str | None:
    for name in LEARNED_EXPERTS:
        s = summaries.get(name)
        if s is not None and s.get("score") is not None and float(s["score"]) >= LEARNED_STRONG:
            return f"{name} gives P(generated) {float(s['score']):.2f}, far from the other experts"
    return None


def signed_capture(summaries: Mapping[str, Mapping[str, Any]]) -> str | None:
    for s in summaries.values():
        if (s.get("flags") or {}).get("digital_capture"):
            return "a signed C2PA manifest claims a camera capture (digitalCapture)"
    return None


def changed_after_signing(summaries: Mapping[str, Mapping[str, Any]]) -> str | None:
    for s in summaries.values():
        if (s.get("flags") or {}).get("tamper_after_signing"):
            return "the image data changed after its C2PA manifest was signed"
    return None


def conflicts(summaries: Mapping[str, Mapping[str, Any]], leaning: str) -> list[str]:
    """Strong evidence against `leaning`, in words; empty when nothing contradicts it."""
    found: list[str | None] = []
    if leaning == "real":
        found += [
            compact_region(summaries),
            editor_named(summaries),
            learned_far_apart(summaries),
            changed_after_signing(summaries),
        ]
    elif leaning == "ai_generated":
        found += [signed_capture(summaries)]
    return [f for f in found if f]
