"""Answer parsing: stage-1 yes/no, and stage-2 JSON read tolerantly but never guessed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

from ..types.llm import Stage2Answer
from .answers import classify_answer, parse_yes_no
from .jsontext import extract_json_object
from .refusal import refusal_reason

__all__ = [
    "classify_answer",
    "extract_json_object",
    "parse_analysis",
    "parse_yes_no",
    "schema_problem",
]

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
