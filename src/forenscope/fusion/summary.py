"""Expert results -> a small, JSON-safe summary that the verdict model reads.

The fitted verdict (`verdict_model`) never sees pixels or whole heatmaps: it reads each
expert's score and a few statistics of its map. Computing those statistics here, once, lets
the training data (`train/verdict_data.py`) cache exactly what inference computes, so the
model is fitted on the features it is later applied to.

Map statistics, at a working resolution of `MAP_SIDE` pixels on the longer side:

- `peak`: the 99th percentile (a hot speck does not count, a hot region does);
- `area`: the share of pixels at or above 0.5;
- `focus`: the share of the map's mass above its median that falls in its strongest
  connected hot component (1 = one compact region, near 0 = spread over the image). A local
  edit gives a focused map, full synthesis or texture a spread one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from ..types import ExpertResult
from .localize import resize_map

MAP_SIDE = 128
HOT = 0.5
# Details that provenance experts set for the verdict's rules (see verdict_rules.py).
FLAG_KEYS = ("edit", "digital_capture", "editor", "tamper_after_signing", "method", "scope")


def map_stats(heatmap: np.ndarray) -> dict[str, float]:
    """peak, area and focus of one map (see the module docstring)."""
    h, w = heatmap.shape[:2]
    scale = min(1.0, MAP_SIDE / max(h, w, 1))
    small = resize_map(heatmap, max(1, round(h * scale)), max(1, round(w * scale)))
    small = np.clip(small, 0.0, 1.0)
    peak = float(np.percentile(small, 99))
    hot = small >= HOT
    area = float(hot.mean())
    excess = np.clip(small - float(np.median(small)), 0.0, None)
    total = float(excess.sum())
    focus = 0.0
    if total > 0 and hot.any():
        labels, count = ndimage.label(hot)
        masses = np.asarray(ndimage.sum(excess, labels=labels, index=np.arange(1, count + 1)))
        focus = float(masses.max() / total)
    return {"peak": round(peak, 4), "area": round(area, 4), "focus": round(focus, 4)}


def summarise(result: ExpertResult) -> dict[str, Any]:
    """What the verdict needs from one expert result, JSON-safe."""
    flags: dict[str, Any] = {
        k: result.details[k]
        for k in FLAG_KEYS
        if k in result.details and isinstance(result.details[k], str | bool | int | float)
    }
    return {
        "expert": result.expert,
        "version": result.version,
        "targets": result.targets,
        "score": result.score if result.judged else None,
        "confidence": result.confidence,
        "map": map_stats(result.heatmap) if result.heatmap is not None and result.judged else None,
        # A failed or abstaining expert proves nothing, as in the fusion.
        "proves": sorted(
            {ev.proves for ev in result.evidence if ev.proves is not None and result.judged}
        ),
        "kinds": sorted({ev.kind for ev in result.evidence}),
        "flags": flags,
    }


def summarise_all(results: Sequence[ExpertResult]) -> dict[str, dict[str, Any]]:
    """Summaries by expert name."""
    return {r.expert: summarise(r) for r in results}
