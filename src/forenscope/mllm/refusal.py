"""Refusal detection: policy language, empty answers and non-answers are not votes."""

from __future__ import annotations

import re

# Phrases models use when they decline or hedge instead of answering. Matched on lower-case
# text with curly apostrophes normalised.
_POLICY_PATTERNS = (
    r"\bi(?: a|')m (?:sorry|unable|not able)\b",
    r"\bi (?:can ?not|can't|won't|am unable to|am not able to|do not|don't) "
    r"(?:help|assist|provide|identify|determine|tell|verify|make|analy[sz]e|comply|say)",
    r"\b(?:can ?not|can't|unable to) (?:be )?(?:determined|determine|verify|tell)\b",
    r"\bas an ai\b",
    r"\b(?:against|violates?) (?:my|our|the) (?:policy|policies|guidelines)\b",
    r"\bnot (?:possible|able) (?:for me )?to (?:determine|tell|say)\b",
    r"\bi (?:apologi[sz]e|must decline|decline)\b",
    r"\bsorry, (?:but )?i\b",
)
_POLICY = re.compile("|".join(_POLICY_PATTERNS))


def normalise_text(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u2018", "'").strip().lower()


def refusal_reason(text: str | None) -> str | None:
    """Why `text` is a refusal ('empty' or 'policy'), or None when it is not one.

    Non-answers (text that is neither yes nor no) are classified by the yes/no parser, which
    knows what an answer looks like; this function only spots declining language.
    """
    if text is None or not text.strip():
        return "empty"
    if _POLICY.search(normalise_text(text)):
        return "policy"
    return None
