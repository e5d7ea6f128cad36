"""The HTML strip that shows how the CLIP detector's decision forms block by block (DAAM).

Reads what `clip_detector` stored in `details["daam"]` (the accumulated 14x14 map after each
block) and `details["daam_flow"]` (P(generated) of the class token after each block); empty when
the detector did not run or DAAM was off.
"""

from __future__ import annotations

import html

import numpy as np

from ..types import Report
from .overlays import data_url, overlay_png

TILE = 84  # px per block thumbnail


def render_daam_html(report: Report) -> str:
    result = next((r for r in report.experts if r.details.get("daam")), None)
    if result is None:
        return ""
    maps = [np.asarray(m, dtype=np.float32) for m in result.details["daam"]]
    flow = result.details.get("daam_flow") or {}
    scores = flow.get("cls_score") or [None] * len(maps)
    decision = flow.get("decision_block")
    tiles = []
    for block, (heat, score) in enumerate(zip(maps, scores, strict=False), start=1):
        url = data_url(overlay_png(heat, size=(TILE, TILE)), "image/png")
        mark = " decision" if block == decision else ""
        caption = f"block {block}" + (f"<br>P {float(score):.2f}" if score is not None else "")
        tiles.append(
            f'<figure class="daam{mark}"><img alt="accumulated map after block {block}" '
            f'width="{TILE}" height="{TILE}" style="background:#222" src="{url}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    intro = (
        "Accumulated class-relevant patch map of the CLIP detector after each transformer block, "
        "and P(generated) of the class token read through the final head at that block"
    )
    if decision:
        intro += f"; the decision forms at block {int(decision)}"
    return (
        f"<h2>How the CLIP decision forms (DAAM)</h2><p>{html.escape(intro)}.</p>"
        f'<div style="display:flex;flex-wrap:wrap;gap:6px">{"".join(tiles)}</div>'
    )
