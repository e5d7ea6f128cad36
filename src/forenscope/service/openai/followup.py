"""Plain-text answers of `forenscope serve-openai`, chosen by what the user asked.

Forenscope is not a chat model: every answer is read off the image's report. The question picks
which part: where (regions), how it was made (attribution), why (the key evidence), how sure
(the class probabilities), or the verdict with its explanation. A follow-up question in a later
turn gets its own answer instead of the first one again.
"""

from __future__ import annotations

import re
from typing import Literal

from ...types import Report

Intent = Literal["where", "method", "why", "confidence", "general"]
_INTENTS: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    ("where", re.compile(
        r"\bwhere\b|which (?:part|area|region|object|side)|\blocat|\bposition|哪里|哪儿|位置|"
        r"\bdónde\b|\bwo\b", re.IGNORECASE)),
    ("method", re.compile(
        r"\bhow (?:was|were|is|has) (?:it|this|that|the (?:image|photo|picture))\b.*\b(?:made|"
        r"created|generated|edited|produced|done|faked|altered)|which (?:method|model|generator|"
        r"tool|software|ai)|\bgan\b|\bdiffusion\b|\bgenerator\b|什么方法|怎么生成|如何生成",
        re.IGNORECASE)),
    ("confidence", re.compile(
        r"\bhow (?:sure|confident|certain|likely)\b|\bprobabilit|\bconfiden|\bare you sure\b|"
        r"把握|概率|确定吗", re.IGNORECASE)),
    ("why", re.compile(
        r"\bwhy\b|\bevidence\b|\breason|\bhow do you know\b|\bexplain\b|\bwhat makes\b|"
        r"为什么|证据|依据|\bpor qué\b|\bwarum\b", re.IGNORECASE)),
)  # fmt: skip
_LABEL = {"real": "real", "ai_generated": "AI-generated", "tampered": "tampered",
          "inconclusive": "inconclusive"}  # fmt: skip


def intent_of(question: str) -> Intent:
    for intent, pattern in _INTENTS:
        if pattern.search(question):
            return intent
    return "general"


def verdict_line(report: Report) -> str:
    v = report.verdict
    return f"Verdict: {v.label} (probability {v.probability:.2f}, decided by {v.decided_by})."


def where(report: Report) -> str:
    if report.regions:
        lines = [f"{i}. {r.description}" for i, r in enumerate(report.regions[:5], 1)]
        boxes = "; ".join(
            f"region {r.id}: " + ", ".join(f"{x:.2f}" for x in r.bbox_relative)
            for r in report.regions[:5]
        )
        return (
            "The areas the experts' maps mark, strongest first:\n" + "\n".join(lines)
            + f"\n\nBoxes (x, y, width, height as shares of the image): {boxes}."
        )  # fmt: skip
    leaning = _LABEL.get(report.verdict.leaning, report.verdict.leaning)
    if report.verdict.leaning == "ai_generated":
        return f"No single region is marked: the evidence leans to {leaning} as a whole image."
    return f"No region stands out: no expert map marks an area (the evidence leans to {leaning})."


def method(report: Report) -> str:
    a = report.attribution
    basis = f" Basis: {a.basis}." if a.basis else ""
    return f"Method: {a.method}; scope: {a.scope}.{basis}"


def why(report: Report) -> str:
    items = [f"({i}) {e.summary}" for i, e in enumerate(report.key_evidence[:8], 1)]
    if not items:
        return f"{verdict_line(report)} No expert found evidence either way."
    return f"{verdict_line(report)} Evidence: " + " ".join(items)


def confidence(report: Report) -> str:
    v = report.verdict
    probs = ", ".join(f"{_LABEL.get(k, k)} {p:.2f}" for k, p in v.probabilities.items())
    decided = "decided" if v.decided else "not sure enough to decide: it needs review"
    calibrated = "calibrated" if v.calibrated else "not calibrated"
    return f"{verdict_line(report)} Class probabilities: {probs} ({calibrated}); {decided}."


def general(report: Report) -> str:
    return f"{verdict_line(report)}\n\n{report.explanation}".strip()


_ANSWERS = {"where": where, "method": method, "why": why, "confidence": confidence,
            "general": general}  # fmt: skip


def text_answer(report: Report, question: str, follow_up: bool) -> str:
    """The answer to `question` about the analysed image; an unrecognised follow-up gets the
    verdict and says what can be asked."""
    intent = intent_of(question)
    text = _ANSWERS[intent](report)
    if follow_up and intent == "general":
        text = (
            "Forenscope answers from its forensic report of the image: ask where it was edited, "
            "why, how it was made or how sure it is.\n\n" + text
        )
    return text
