"""Stage-2 explanation metrics: is the MLLM's "where" and "why" checkable against the truth?

- frame position (seed 000's "absolute position": where in the picture): the 3x3 grid cell
  holding most of the mask's pixels, in words ("upper left", "middle centre", ...), against the
  words of the answer's location (1 = row and column right, 0.5 = one of them, 0 = neither or no
  position words). Position relative to objects ("the flag the man holds") needs a judge:
  `eval --judge CFG` asks an LLM (`mllm/judge.py`), the run's `object_position`;
- method and scope as answered (gan / diffusion, global / local), compared with the manifest's
  `family` and `scope` in the summary;
- box IoU of the answer's [x0, y0, x1, y1] box (shares of width/height) with the mask's box;
- field completeness: share of the answer's fields that are filled;
- Flesch reading ease of the reasoning (vowel-group syllable count: a rough, documented proxy);
- a judge hook: any callable `(answer, truth) -> {criterion: score}`, e.g. an LLM judge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..mllm.frame import mask_box, mask_cell

_ROW_WORDS = {"upper": 0, "top": 0, "middle": 1, "center": 1, "centre": 1, "central": 1,
              "lower": 2, "bottom": 2}  # fmt: skip
_COL_WORDS = {"left": 0, "centre": 1, "center": 1, "middle": 1, "central": 1, "right": 2}
FIELDS = ("location.relative", "location.absolute", "location.box", "forged_content",
          "visible_traces", "method", "scope", "reasoning")  # fmt: skip
Judge = Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, float]]


def words_cell(text: str) -> tuple[int | None, int | None]:
    """(row, col) named by position words; 'centre' alone means the middle cell."""
    words = re.findall(r"[a-z]+", text.lower())
    row = next((_ROW_WORDS[w] for w in words if w in ("upper", "top", "lower", "bottom")), None)
    col = next((_COL_WORDS[w] for w in words if w in ("left", "right")), None)
    central = any(w in ("centre", "center", "middle", "central") for w in words)
    if central:
        row = 1 if row is None else row
        col = 1 if col is None else col
    return row, col


def frame_position_score(text: str, mask: np.ndarray) -> float | None:
    cell = mask_cell(mask)
    if cell is None:
        return None
    row, col = words_cell(text)
    return ((row == cell[0]) + (col == cell[1])) / 2.0


def box_iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _get(d: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = d
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    return cur


def field_completeness(answer: Mapping[str, Any]) -> float:
    filled = [_get(answer, f) not in (None, "", [], "unknown") for f in FIELDS]
    return sum(filled) / len(FIELDS)


def _syllables(word: str) -> int:
    groups = re.findall(r"[aeiouy]+", word.lower())
    n = len(groups) - (1 if word.lower().endswith("e") and len(groups) > 1 else 0)
    return max(1, n)


def flesch_reading_ease(text: str) -> float | None:
    """206.835 - 1.015 words/sentence - 84.6 syllables/word; None for text without words."""
    words = re.findall(r"[A-Za-z]+", text)
    if not words:
        return None
    sentences = max(1, len(re.findall(r"[.!?]+", text)))
    syll = sum(_syllables(w) for w in words)
    return 206.835 - 1.015 * len(words) / sentences - 84.6 * syll / len(words)


def explanation_record(
    answer: Mapping[str, Any], mask: np.ndarray | None, judge: Judge | None = None
) -> dict[str, Any]:
    """Every explanation metric of one stage-2 answer (None where it does not apply)."""
    loc = answer.get("location") or {}
    text = f"{loc.get('absolute', '')} {loc.get('relative', '')}"
    truth_box = mask_box(mask) if mask is not None else None
    box = loc.get("box")
    out: dict[str, Any] = {
        "frame_position": frame_position_score(text, mask) if mask is not None else None,
        "box_iou": box_iou(box, truth_box) if box and truth_box else None,
        "field_completeness": field_completeness(answer),
        "flesch_reading_ease": flesch_reading_ease(str(answer.get("reasoning", ""))),
        "method": answer.get("method"),
        "scope": answer.get("scope"),
    }
    if judge is not None:
        truth = {"box": truth_box, "cell": mask_cell(mask) if mask is not None else None}
        out["judge"] = dict(judge(answer, truth))
    return out
