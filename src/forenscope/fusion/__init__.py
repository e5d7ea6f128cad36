"""The map stage of the analysis line: expert results -> verdict, fused map, mask and regions.

- `verdict`: the label, its probability and attribution (hand-set pooling or the fitted model);
- `maps`: the fused tamper map (`map_fitted` is its opt-in per-pixel model);
- `localize`: map -> mask -> regions described in words;
- `weights/`: the fitted weights these modules ship with.
"""

from __future__ import annotations

from ..map_geometry import working_size
from .localize import localize, normalise_map, resize_map
from .maps import compact_region_dominates, fuse_heatmaps, handset_map
from .verdict import PRIOR, Fused, attribute, fuse, handset_probabilities
from .verdict_model import LABELS

__all__ = [
    "LABELS",
    "PRIOR",
    "Fused",
    "attribute",
    "compact_region_dominates",
    "fuse",
    "fuse_heatmaps",
    "handset_map",
    "handset_probabilities",
    "localize",
    "normalise_map",
    "resize_map",
    "working_size",
]
