"""Stage-2 explanation metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from forenscope.eval.explanations import (
    box_iou,
    explanation_record,
    field_completeness,
    flesch_reading_ease,
    frame_position_score,
    mask_box,
    mask_cell,
    words_cell,
)


def test_position_words_against_the_mask_grid() -> None:
    mask = np.zeros((90, 90), bool)
    mask[5:25, 62:88] = True  # upper right
    assert mask_cell(mask) == (0, 2) and mask_cell(np.zeros((9, 9), bool)) is None
    assert words_cell("top-right corner") == (0, 2) and words_cell("in the centre") == (1, 1)
    assert frame_position_score("upper right of the frame", mask) == 1.0
    assert frame_position_score("upper left", mask) == 0.5
    assert frame_position_score("bottom left", mask) == 0.0
    assert frame_position_score("somewhere", mask) == 0.0


def test_box_iou_and_mask_box() -> None:
    mask = np.zeros((10, 20), bool)
    mask[0:5, 0:10] = True
    assert mask_box(mask) == pytest.approx([0, 0, 0.5, 0.5])
    assert box_iou([0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]) == 1.0
    assert box_iou([0, 0, 0.5, 0.5], [0.25, 0, 0.75, 0.5]) == pytest.approx(1 / 3)
    assert box_iou([0, 0, 0.1, 0.1], [0.5, 0.5, 1, 1]) == 0.0


def test_completeness_readability_and_judge_hook() -> None:
    answer: dict[str, Any] = {
        "location": {
            "relative": "left of the tree",
            "absolute": "upper left",
            "box": [0, 0, 0.4, 0.4],
        },
        "forged_content": "a bird",
        "visible_traces": ["soft edges"],
        "method": "unknown",
        "scope": "local",
        "reasoning": "The bird is pasted. Its edges are soft.",
    }
    assert field_completeness(answer) == pytest.approx(7 / 8)  # method unknown = not filled
    easy = flesch_reading_ease("The cat sat on the mat. It was red.")
    hard = flesch_reading_ease(
        "Photorealistic inconsistencies characterise generative manipulation."
    )
    assert easy is not None and hard is not None and easy > 90 > hard
    assert flesch_reading_ease("") is None
    mask = np.zeros((30, 30), bool)
    mask[0:12, 0:12] = True
    seen: list[Any] = []
    rec = explanation_record(answer, mask, judge=lambda a, t: seen.append(t) or {"overall": 4.0})
    assert rec["frame_position"] == 1.0 and rec["box_iou"] == pytest.approx(
        0.4**2 * 900 / (144 + 0.16 * 900 - 144)
    )
    assert rec["judge"] == {"overall": 4.0} and seen[0]["cell"] == (0, 0)
