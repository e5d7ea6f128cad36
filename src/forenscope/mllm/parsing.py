"""Answer parsing: stage-1 yes/no, and stage-2 JSON read tolerantly but never guessed."""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Literal

from pydantic import ValidationError

from .refusal import normalise_text, refusal_reason
from .types import Stage2Answer, VoteLabel

_YES = {"yes", "yeah", "yep", "true"}
_NO = {"no", "nope", "false"}
_WORD = re.compile(r"[a-z]+")


def parse_yes_no(text: str | None) -> tuple[VoteLabel, str | None]:
    """(label, refusal reason). A leading yes/no wins; then refusals; then a lone yes or no.

    'No. The lighting is consistent.' -> no; 'I can't determine that.' -> refusal (policy);
    'The image shows a cat.' -> refusal (non_answer); 'yes or no?' -> refusal (non_answer).
    """
    reason = refusal_reason(text)
    if reason == "empty" or text is None:
        return "refusal", "empty"
    words = _WORD.findall(normalise_text(text))
    if words and words[0] in _YES:
        return "yes", None
    if words and words[0] in _NO:
        return "no", None
    if reason is not None:
        return "refusal", reason
    found = {w for w in words if w in _YES or w in _NO}
    has_yes, has_no = bool(found & _YES), bool(found & _NO)
    if has_yes != has_no:
        return ("yes" if has_yes else "no"), None
    return "refusal", "non_answer"


_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def _first_object(text: str) -> str | None:
    """The first balanced {...} in text (string- and escape-aware), or None if unbalanced."""
    start = text.find("{")
    if start < 0:
        return None
    depth, quote, escaped = 0, "", False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def _loads_lenient(obj_text: str) -> Any:
    try:
        return json.loads(obj_text)
    except json.JSONDecodeError:
        pass
    # Python-literal style answers ({'method': 'gan', 'ok': True}); JSON keywords mapped first.
    pythonish = re.sub(r"\btrue\b", "True", obj_text)
    pythonish = re.sub(r"\bfalse\b", "False", pythonish)
    pythonish = re.sub(r"\bnull\b", "None", pythonish)
    return ast.literal_eval(pythonish)


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in an answer (code fences, prose around it, single quotes tolerated).

    Truncated or otherwise unbalanced objects return None: repairing them would be guessing.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        obj_text = _first_object(candidate)
        if obj_text is None:
            continue
        try:
            value = _loads_lenient(obj_text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    return None


_METHOD_WORDS = {
    "gan": "gan",
    "generative adversarial network": "gan",
    "diffusion": "diffusion",
    "diffusion model": "diffusion",
    "other": "other",
    "unknown": "unknown",
}


def _normalise_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """Case/spacing clean-up of enum fields only; values outside the vocabulary stay invalid."""
    out = dict(obj)
    for key in ("method", "scope"):
        if isinstance(out.get(key), str):
            out[key] = out[key].strip().lower()
    if isinstance(out.get("method"), str):
        out["method"] = _METHOD_WORDS.get(out["method"], out["method"])
    if isinstance(out.get("visible_traces"), str):
        out["visible_traces"] = [out["visible_traces"]]
    return out


AnalysisStatus = Literal["ok", "refused", "unparseable"]


def parse_analysis(
    text: str | None,
) -> tuple[Stage2Answer | None, dict[str, Any] | None, AnalysisStatus]:
    """(answer, parsed object, status) where status is 'ok', 'refused' or 'unparseable'."""
    if text is None or not text.strip():
        return None, None, "refused"
    obj = extract_json_object(text)
    if obj is None:
        return None, None, ("refused" if refusal_reason(text) else "unparseable")
    try:
        return Stage2Answer.model_validate(_normalise_fields(obj)), obj, "ok"
    except ValidationError:
        return None, obj, "unparseable"


def schema_problem(obj: dict[str, Any]) -> str:
    """A short description of why an object fails the Stage2Answer schema."""
    try:
        Stage2Answer.model_validate(_normalise_fields(obj))
    except ValidationError as exc:
        parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]]
        return "schema: " + "; ".join(parts)
    return ""
