"""The JSON object inside a model's answer: fences, prose around it and single quotes tolerated,
truncated objects never repaired."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

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
