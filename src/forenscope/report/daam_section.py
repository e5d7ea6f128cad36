"""The HTML strip that shows how the CLIP detector's decision forms block by block (DAAM).

Reads what `clip_detector` stored in `details["daam"]` (the accumulated 14x14 map after each
block) and `details["daam_flow"]` (P(generated) of the class token after each block); empty when
the detector did not run or DAAM was off.
"""

from __future__ import annotations

import html

import numpy as np

from ..types import Report
from .html_parts import tech_section
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
        mark = ' class="decision"' if block == decision else ""
        caption = f"step {block}" + (f"<br>{float(score):.2f}" if score is not None else "")
        tiles.append(
            f'<figure{mark}><img alt="what the detector weighed after step {block}" '
            f'width="{TILE}" height="{TILE}" style="background:#222" src="{url}">'
            f"<figcaption>{caption}</figcaption></figure>"
        )
    plain = (
        "The AI-image detector reads the picture in 12 steps. Each small map shows which parts "
        'of the picture had pushed it towards "AI-made" by that step (bright = more); the '
        "number under it is how AI-made the whole picture looked at that step, from 0 (a photo) "
        "to 1 (AI-made)"
    )
    if decision:
        plain += (
            f". Its answer settles at step {int(decision)} (outlined) and does not change after"
        )
    technical = (
        "Technical: DAAM-style accumulated class-relevant patch map of the CLIP ViT-B/16 after "
        "each transformer block, and P(generated) of the class token read through the final "
        "layer norm, projection and head at that block"
    )
    if decision:
        technical += f"; the decision forms at block {int(decision)}"
    body = (
        f"<p>{html.escape(plain)}.</p>"
        f'<div class="daam-strip">{"".join(tiles)}</div>'
        f'<p class="muted">{html.escape(technical)}.</p>'
    )
    return tech_section("How the AI detector reached its answer (DAAM)", body, "daam")
