"""Probabilities from token log-probs (FakeScope-style) and from repeated votes (seed 000)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..types.llm import VoteLabel

YES_TOKENS = frozenset({"yes", "yeah", "yep", "true"})
NO_TOKENS = frozenset({"no", "nope", "false"})
# Leading tokens that carry no answer (markdown, quotes, spaces): skipped when looking for the
# first answer token.
_FILLER = re.compile(r"^[\s\*\"'`#_\-\.:>]*$")

TopTokens = list[tuple[str, float]]
"""One position: (token text, log-probability) for the chosen token and its alternatives."""


def _as_float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _position_openai(entry: Mapping[str, Any]) -> TopTokens:
    out: TopTokens = []
    for alt in entry.get("top_logprobs") or []:
        lp = _as_float(alt.get("logprob")) if isinstance(alt, Mapping) else None
        if lp is not None:
            out.append((str(alt.get("token", "")), lp))
    chosen = _as_float(entry.get("logprob"))
    if chosen is not None and not any(t == entry.get("token") for t, _ in out):
        out.append((str(entry.get("token", "")), chosen))
    return out


def _position_llamacpp(entry: Mapping[str, Any]) -> TopTokens:
    """llama.cpp `/completion` rows: logprob/top_logprobs, post-sampling prob/top_probs, or the
    older {content, probs: [{tok_str, prob}]} shape."""
    if "top_logprobs" in entry or "logprob" in entry:
        return _position_openai(entry)
    out: TopTokens = []
    for alt in entry.get("top_probs") or entry.get("probs") or []:
        if not isinstance(alt, Mapping):
            continue
        p = _as_float(alt.get("prob"))
        token = alt.get("token", alt.get("tok_str", ""))
        if p is not None and p > 0:
            out.append((str(token), math.log(p)))
    return out


def top_tokens(response: Mapping[str, Any], choice: int = 0) -> list[TopTokens] | None:
    """Per-position token alternatives from a chat-completion response, or None if absent.

    Reads OpenAI/vLLM/Ollama (>= 0.12.11)/llama.cpp-oai `choices[i].logprobs.content[]` and
    llama.cpp's native `completion_probabilities`.
    """
    choices = response.get("choices")
    if isinstance(choices, list) and len(choices) > choice:
        logprobs = choices[choice].get("logprobs") if isinstance(choices[choice], dict) else None
        content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
        if isinstance(content, list) and content:
            return [_position_openai(e) for e in content if isinstance(e, Mapping)]
    native = response.get("completion_probabilities")
    if isinstance(native, list) and native:
        return [_position_llamacpp(e) for e in native if isinstance(e, Mapping)]
    return None


def _norm(token: str) -> str:
    return token.strip().strip("\"'`*.,:!").lower()


def _read_position(tokens: TopTokens) -> float | None:
    p_yes = sum(math.exp(lp) for t, lp in tokens if _norm(t) in YES_TOKENS)
    p_no = sum(math.exp(lp) for t, lp in tokens if _norm(t) in NO_TOKENS)
    if p_yes == 0.0 and p_no == 0.0:
        return None
    residual = max(0.0, 1.0 - sum(math.exp(lp) for _, lp in tokens))
    if p_yes == 0.0:
        p_yes = residual
    elif p_no == 0.0:
        p_no = residual
    total = p_yes + p_no
    return None if total <= 0.0 else min(1.0, max(0.0, p_yes / total))


def yes_probability(positions: Sequence[TopTokens], max_positions: int = 3) -> float | None:
    """P(yes) / (P(yes) + P(no)) at the first answer token, or None when it cannot be read.

    Positions whose likeliest token is filler ('**', a quote, a space) are skipped: the answer
    is decided at the next token. Probability mass of every yes-like token at the answer
    position is summed ('Yes', ' yes', 'YES' are distinct tokens), likewise for no-like ones.
    When only one side is listed, the other can hold at most the mass not listed, so that
    residual stands in for it: a lone 'Yes' at 0.6 gives 0.6, not a certain 1.0.
    """
    fallback: float | None = None
    for tokens in list(positions)[:max_positions]:
        if not tokens:
            continue
        if _FILLER.match(max(tokens, key=lambda t: t[1])[0]):
            if fallback is None:
                fallback = _read_position(tokens)
            continue
        return _read_position(tokens)
    return fallback


def vote_probability(labels: Iterable[VoteLabel]) -> tuple[float | None, int, int, int]:
    """(share of yes among yes+no, yes, no, refusals). Refusals never vote; None if no votes."""
    yes = no = refusals = 0
    for label in labels:
        if label == "yes":
            yes += 1
        elif label == "no":
            no += 1
        else:
            refusals += 1
    votes = yes + no
    return (yes / votes if votes else None), yes, no, refusals
