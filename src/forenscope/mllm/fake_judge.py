"""The fake server's judge: how `fake_server` answers a position-judge request (`mllm/judge.py`).

It finds the pixels of the outline colour the prompt names, takes the 3x3 cell of their centre
and answers Yes when the quoted description names that cell's words ("upper left"), else No: a
deterministic stand-in that still depends on the outline being drawn where the mask is.
"""

from __future__ import annotations

import io
import re

import numpy as np

from .frame import cell_words, mask_cell
from .judge import OUTLINE_COLOURS

_ASK = re.compile(r'outlined in (\w+)\. .*?: "(.*)"', re.DOTALL)


def outline_cell(img: bytes, colour: str) -> tuple[int, int] | None:
    """The 3x3 cell holding most of the pixels near `colour` (JPEG-tolerant), or None."""
    from PIL import Image

    with Image.open(io.BytesIO(img)) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.int32)
    near = np.linalg.norm(rgb - np.array(OUTLINE_COLOURS[colour]), axis=2) < 100
    return mask_cell(near)


def judge_answer(text: str, img: bytes) -> str | None:
    """'Yes'/'No' for a judge request, None when `text` is not one."""
    found = _ASK.search(text)
    if not found or found.group(1) not in OUTLINE_COLOURS or not img:
        return None
    cell = outline_cell(img, found.group(1))
    if cell is None:
        return "I cannot see any outlined region in this image."
    return "Yes" if cell_words(cell) in found.group(2).lower() else "No"
