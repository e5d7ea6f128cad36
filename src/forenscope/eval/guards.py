"""Protocol guard: warn loudly when the classes differ in container format or image size.

It compares, per label, the manifest's `format` / `width` / `height` (read from the file header
when the manifest has none). A detector can score on those alone (DIRE issues #11/#30: reals
JPEG, fakes PNG), so the run record and the console both carry the warning.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from .datasets import Sample

FORMAT_TV_LIMIT = 0.10  # total-variation distance between format shares
SIZE_RATIO_LIMIT = 1.25  # ratio of median shorter sides


def _facts(s: Sample) -> tuple[str, int, int]:
    if s.format and s.width and s.height:
        return s.format, s.width, s.height
    try:
        with Image.open(s.file) as im:
            return im.format or "?", im.width, im.height
    except OSError:
        return "?", 0, 0


def class_profiles(samples: Sequence[Sample]) -> dict[str, dict[str, Any]]:
    by_label: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for s in samples:
        by_label[s.label].append(_facts(s))
    out: dict[str, dict[str, Any]] = {}
    for label, facts in sorted(by_label.items()):
        formats = Counter(f for f, _, _ in facts)
        short = [min(w, h) for _, w, h in facts if w and h]
        out[label] = {
            "n": len(facts),
            "formats": {k: v / len(facts) for k, v in formats.most_common()},
            "median_short_side": float(np.median(short)) if short else 0.0,
            "short_side_range": [min(short), max(short)] if short else [0, 0],
        }
    return out


def format_warnings(samples: Sequence[Sample], align: str) -> tuple[dict[str, Any], list[str]]:
    """(per-label profiles, warnings). The warning is stronger when alignment is off."""
    prof = class_profiles(samples)
    warnings: list[str] = []
    labels = list(prof)  # real vs each other class: the detection confound
    tail = (
        "alignment is OFF (--align none): scores may come from the container, not the pixels"
        if align == "none"
        else f"aligned with --align {align}: every image is re-encoded identically before scoring"
    )
    pairs = [("real", b) for b in labels if b != "real"] if "real" in prof else []
    for a, b in pairs:
        fa, fb = prof[a]["formats"], prof[b]["formats"]
        tv = 0.5 * sum(abs(fa.get(k, 0.0) - fb.get(k, 0.0)) for k in set(fa) | set(fb))
        if tv > FORMAT_TV_LIMIT:
            warnings.append(f"FORMAT DIFFERS BY CLASS: {a} {_fmt(fa)} vs {b} {_fmt(fb)}; {tail}")
        ma, mb = prof[a]["median_short_side"], prof[b]["median_short_side"]
        if ma and mb and max(ma, mb) / min(ma, mb) > SIZE_RATIO_LIMIT:
            warnings.append(
                f"SIZE DIFFERS BY CLASS: median shorter side {a} {ma:.0f}px "
                f"vs {b} {mb:.0f}px; {tail}"
            )
    return prof, warnings


def _fmt(shares: dict[str, float]) -> str:
    return "(" + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()) + ")"
