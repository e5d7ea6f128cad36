"""An answer in the client's own JSON schema (`response_format: json_schema`), filled from the
report: what `client.beta.chat.completions.parse(..., response_format=MyModel)` expects.

Each property is matched by its name to one fact of the report (the verdict, P(fake), the
method, where, why, ...), and the fact is given the property's type (an enum value, a boolean,
a number, a string, a list). A property no fact matches gets its type's empty value and is
named in `forenscope_notes`, so a caller sees what was not answered instead of a guess.
Nested objects, `$ref`/`$defs` (pydantic's schemas), `anyOf` (Optional) and arrays are followed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...types import Report

MAX_DEPTH = 8  # a self-referencing schema stops here

# Fact name -> words a property name may use for it (after lower-casing and splitting on _ - ).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "is_fake": (
        "fake",
        "is_fake",
        "ai_generated",
        "is_ai_generated",
        "generated",
        "is_generated",
        "synthetic",
        "manipulated",
        "is_manipulated",
        "forged",
        "is_forged",
        "edited",
        "tampered",
        "is_tampered",
        "altered",
        "deepfake",
        "is_deepfake",
    ),  # fmt: skip
    "is_real": ("real", "is_real", "authentic", "is_authentic", "genuine", "pristine"),
    "label": (
        "label",
        "verdict",
        "classification",
        "class",
        "category",
        "answer",
        "result",
        "prediction",
        "decision",
    ),  # fmt: skip
    "p_fake": (
        "probability",
        "p_fake",
        "fake_probability",
        "score",
        "likelihood",
        "ai_probability",
        "probability_fake",
        "prob",
    ),  # fmt: skip
    "confidence": ("confidence", "certainty", "how_sure"),
    "method": ("method", "generator", "generation_method", "technique", "model_family"),
    "scope": ("scope", "extent", "forgery_scope"),
    "location": ("location", "where", "region", "regions", "area", "position"),
    "explanation": (
        "explanation",
        "reasoning",
        "reason",
        "rationale",
        "why",
        "summary",
        "justification",
        "analysis",
        "description",
    ),  # fmt: skip
    "evidence": (
        "evidence",
        "traces",
        "visible_traces",
        "clues",
        "artifacts",
        "artefacts",
        "indicators",
        "signs",
    ),  # fmt: skip
    "decided": ("decided", "conclusive", "is_conclusive"),
}
_BY_WORD = {word: fact for fact, words in SYNONYMS.items() for word in words}


def report_facts(report: Report) -> dict[str, Any]:
    """The report's answers, one value per fact (the names in SYNONYMS)."""
    verdict = report.verdict
    p_real = float(verdict.probabilities.get("real", 0.0))
    region = report.regions[0] if report.regions else None
    return {
        "is_fake": verdict.leaning != "real",
        "is_real": verdict.leaning == "real",
        "label": verdict.label,
        "p_fake": 1.0 - p_real,
        "confidence": float(verdict.probability),
        "method": report.attribution.method,
        "scope": report.attribution.scope,
        "location": region.description if region is not None else "",
        "explanation": report.explanation.split("\n\n")[0],
        "evidence": [e.summary for e in report.key_evidence[:5]],
        "decided": bool(verdict.decided),
    }


def _fact_for(name: str) -> str | None:
    key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    for suffix in ("", "_score", "_percent", "_pct", "_level", "_value"):
        if key.endswith(suffix) and (fact := _BY_WORD.get(key.removesuffix(suffix))):
            return fact
    return None


def _resolve(schema: Any, root: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with a local `$ref` followed and `anyOf`/`oneOf` narrowed to a non-null arm."""
    for _ in range(MAX_DEPTH):
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            schema = target
            continue
        arms = schema.get("anyOf") or schema.get("oneOf")
        if isinstance(arms, list) and arms:
            typed = [a for a in arms if not (isinstance(a, dict) and a.get("type") == "null")]
            schema = (typed or arms)[0]
            continue
        return schema
    return {}


def _type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "enum" in schema:
        return "enum"
    if kind is None and "properties" in schema:
        return "object"
    return str(kind or "string")


def _empty(kind: str, schema: dict[str, Any]) -> Any:
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    return {"string": "", "number": 0.0, "integer": 0, "boolean": False, "array": [],
            "object": {}}.get(kind)  # fmt: skip


# A value -> the enum words that say it, best first.
ENUM_WORDS: dict[Any, tuple[str, ...]] = {
    True: ("yes", "true", "fake", "ai_generated", "generated", "synthetic", "manipulated"),
    False: ("no", "false", "real", "authentic", "genuine"),
    "real": ("real", "authentic", "genuine", "no", "false"),
    "ai_generated": ("ai_generated", "generated", "ai", "synthetic", "fake", "yes", "true"),
    "tampered": ("tampered", "edited", "manipulated", "forged", "fake", "yes", "true"),
    "inconclusive": ("inconclusive", "uncertain", "unknown", "undetermined"),
}


def _as_enum(value: Any, options: list[Any]) -> Any:
    """The enum option that names the value (case-insensitive; verdicts and booleans also by
    their usual words, so `ai_generated` fills an enum of real/fake)."""
    key = value if isinstance(value, bool) else str(value).lower()
    wanted = ENUM_WORDS.get(key, (str(key),))
    names = {re.sub(r"[^a-z0-9]+", "_", str(o).lower()).strip("_"): o for o in options}
    return next((names[w] for w in wanted if w in names), None)


def _coerce(value: Any, schema: dict[str, Any]) -> Any:
    """`value` in the property's type, or None when it cannot be said in that type."""
    kind = _type(schema)
    if "enum" in schema:
        return _as_enum(value, list(schema["enum"]))
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        hi = schema.get("maximum")
        scaled = value * 100 if isinstance(hi, (int, float)) and hi > 1 else value  # percent
        return round(scaled) if kind == "integer" else float(scaled)
    if kind == "array":
        items = value if isinstance(value, list) else [value]
        return [str(v) for v in items if v not in ("", None)]
    if kind == "string":
        if isinstance(value, list):
            return "; ".join(str(v) for v in value)
        return str(value).lower() if isinstance(value, bool) else str(value)
    return None


def fill(
    schema: Any, facts: Mapping[str, Any], root: Mapping[str, Any], path: str, missing: list[str]
) -> Any:
    """A value for `schema` from the facts; unanswerable leaves go to `missing` (dotted paths)."""
    node = _resolve(schema, root)
    kind = _type(node)
    if kind == "object" and path.count(".") < MAX_DEPTH:
        props = node.get("properties") or {}
        out: dict[str, Any] = {}
        for name, sub in props.items():
            out[name] = fill(sub, facts, root, f"{path}.{name}" if path else name, missing)
        return out
    fact = _fact_for(path.rsplit(".", 1)[-1]) if path else None
    value = _coerce(facts[fact], node) if fact is not None else None
    if value is None:
        missing.append(path or "(root)")
        return _empty(kind, node)
    return value


def schema_answer(report: Report, schema: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(the answer object, the properties no fact of the report could fill)."""
    missing: list[str] = []
    out = fill(schema, report_facts(report), schema, "", missing)
    return (out if isinstance(out, dict) else {}), missing
