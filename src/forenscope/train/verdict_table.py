"""The verdict protocol's table: cached rows as arrays (features, truth, group, variant), with
each CLIP score replaced by an out-of-source one (`verdict_clip.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..fusion.verdict_model import LABELS, features

TRUTH = {"real": "real", "fake": "ai_generated", "tampered": "tampered"}
# Sources that are one collection split in two in the manifest.
SOURCE_GROUPS = {
    "bsds500-train": "bsds500",
    "bsds500-val": "bsds500",
    "debian-lomiri-wallpapers-16.04": "lomiri-wallpapers",
    "debian-lomiri-wallpapers-20.04": "lomiri-wallpapers",
}
# Provenance is read by rules and proofs, never fitted: in this data its presence follows the
# collection (the camera JPEGs were chosen to name no editor, CASIA's name Photoshop), so a fitted
# weight would learn the collection, not the evidence.
NOT_FITTED = frozenset({"exif", "c2pa", "generator_metadata", "watermark"})
REQUIRED_SHARE = 0.99  # an expert judging at least this share of images must judge at inference
MIN_JUDGED_SHARE = 0.02
MAP_SHARE = 0.5


class Data:
    """Cached rows as arrays: features, truth index, group, variant, and the raw rows."""

    def __init__(self, rows: Sequence[dict[str, Any]]) -> None:
        kept = [r for r in rows if "error" not in r]
        self.errors = len(rows) - len(kept)
        self.group = np.array([SOURCE_GROUPS.get(r["source"], r["source"]) for r in kept])
        self.rows = with_out_of_source_clip(kept, self.group)
        self.experts, self.map_experts, self.required = choose_experts(self.rows)
        self.x = np.stack(
            [features(r["experts"], self.experts, self.map_experts) for r in self.rows]
        )
        self.y = np.array([LABELS.index(TRUTH[r["label"]]) for r in self.rows])
        self.variant = np.array([r["variant"] for r in self.rows])


def with_out_of_source_clip(
    rows: Sequence[dict[str, Any]], groups: np.ndarray
) -> list[dict[str, Any]]:
    """Rows whose clip_detector score is replaced by the out-of-source head's
    (`verdict_clip.py`); rows without an embedding keep theirs."""
    from .verdict_clip import out_of_source_scores

    scores = out_of_source_scores(rows, groups)
    out = []
    for row, p in zip(rows, scores, strict=True):
        clip = row["experts"].get("clip_detector")
        if clip is not None and clip.get("score") is not None and not np.isnan(p):
            row = {
                **row,
                "experts": {**row["experts"], "clip_detector": {**clip, "score": float(p)}},
            }
        out.append(row)
    return out


def choose_experts(
    rows: Sequence[dict[str, Any]],
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Experts that judge often enough to learn from, those whose maps are read, and those
    that must judge for the model to apply."""
    names = sorted({e for r in rows for e in r["experts"]})
    judged = {
        n: np.mean([r["experts"].get(n, {}).get("score") is not None for r in rows]) for n in names
    }
    with_map = {n: np.mean([bool(r["experts"].get(n, {}).get("map")) for r in rows]) for n in names}
    experts = tuple(n for n in names if judged[n] >= MIN_JUDGED_SHARE and n not in NOT_FITTED)
    # Maps that most images have: a face expert's map exists only where a face is found, too
    # rarely to learn its statistics without overfitting them.
    map_experts = tuple(n for n in experts if with_map[n] >= MAP_SHARE)
    required = tuple(n for n in experts if judged[n] >= REQUIRED_SHARE)
    return experts, map_experts, required
