"""Out-of-source CLIP scores for the verdict protocol.

The shipped `clip-generated` head was trained on the same data the verdict is validated on, so
its scores there are in-sample and far more confident than on a user's images. A verdict fitted
on them would learn to trust the CLIP expert too much. So the protocol replaces each image's
CLIP score by that of a head refitted, with the shipped recipe (standardised L2 logistic
regression, Platt-calibrated on grouped out-of-fold logits), on every source but the image's
own: the score the expert would give an image from a source it never saw.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from .fit import calibrated_head, group_folds

C = 0.05  # the shipped head's regularisation (models/heads/clip-generated.json meta "c")
SEED = 0


def out_of_source_scores(rows: Sequence[dict[str, Any]], groups: np.ndarray) -> np.ndarray:
    """P(generated) per row from a head that never saw the row's source; NaN without an
    embedding. Trained on real vs fully generated rows of the other sources (both variants)."""
    from tqdm import tqdm

    has = np.array([r.get("clip_embed") is not None for r in rows])
    out = np.full(len(rows), np.nan)
    if not has.any():
        return out
    dim = len(next(r["clip_embed"] for r in rows if r.get("clip_embed") is not None))
    x = np.array([r["clip_embed"] if r.get("clip_embed") else [0.0] * dim for r in rows])
    y = np.array([1 if r["label"] == "fake" else 0 for r in rows])
    usable = has & np.array([r["label"] in ("real", "fake") for r in rows])
    for g in tqdm(sorted(set(groups[has])), desc="clip heads", file=sys.stderr):
        train = usable & (groups != g)
        if len(set(y[train])) < 2:
            continue
        idx = np.flatnonzero(train)
        n_groups = len(set(groups[idx]))
        if n_groups < 2:  # no held-out calibration possible: keep the shipped head's score
            continue
        folds = [idx[f] for f in group_folds(y[idx], list(groups[idx]), SEED, min(5, n_groups))]
        head = calibrated_head(
            x, y, folds, c=C, name="clip-generated-oos", feature="clip",
            classes=("real", "generated"), seed=SEED,
        )  # fmt: skip
        test = has & (groups == g)
        out[test] = head.predict_proba(x[test])
    return out
