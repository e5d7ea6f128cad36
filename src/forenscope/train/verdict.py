"""Fit and validate the verdict: leave-one-source-out, as stored and laundered.

    python -m forenscope.train.verdict [--cache FILE] [--write] [--record BENCHMARKS.md]

Reads the expert summaries cached by `train/verdict_data.py` and runs one protocol for the
whole verdict (probabilities, the inconclusive band and the conflict rules):

1. Leave-one-source-out. For each source, the model is fitted on every other source (both
   variants: as stored and laundered), its regularisation and temperature are chosen by an
   inner leave-one-source-out over those training sources, and so are the decision
   thresholds. Then the held-out source is predicted and decided exactly as the product
   decides (`fusion.decision.make_decision`). Nothing about a source is seen before it is
   predicted.
2. Tables (printed as Markdown; `--record` writes them into BENCHMARKS.md between markers):
   4-way confusion per source and coverage, balanced accuracy of the decided verdicts, recall
   and precision per class, AUC of P(not real) per source against every real photo next to
   the best single expert and a format-only baseline, photoshopped forgeries called tampered,
   false alarms on untouched camera photos, ECE and a reliability table.
3. `--write` fits on everything (regularisation, temperature and thresholds from the
   leave-one-source-out predictions) and writes `fusion/weights/verdict.json` with its
   validation figures; `calibrated` is true only when the held-out ECE meets `ECE_TARGET` in
   both variants.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..fusion.verdict_model import LABELS, VerdictModel, feature_names, features
from .verdict_data import DEFAULT_CACHE, read_cache
from .verdict_fit import Fit, fit_fold, probabilities_from_logits, thresholds_for

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
ECE_TARGET = 0.05
WEIGHTS = Path(__file__).resolve().parents[1] / "fusion" / "weights" / "verdict.json"


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


def leave_one_source_out(data: Data) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities (N, 3) and per-row decision thresholds (N, 3)."""
    from tqdm import tqdm

    probs = np.zeros((len(data.y), 3))
    thresholds = np.zeros((len(data.y), 3))
    groups = sorted(set(data.group))
    for g in tqdm(groups, desc="sources", file=sys.stderr):
        test = data.group == g
        fit = fit_fold(data.x[~test], data.y[~test], data.group[~test])
        probs[test] = probabilities_from_logits(fit.logits(data.x[test]))
        thresholds[test] = [fit.thresholds[c] for c in LABELS]
    return probs, thresholds


def ship(data: Data, oof_logits_fit: Fit, validation: dict[str, Any]) -> VerdictModel:
    """The model fitted on everything, with the protocol's temperature and thresholds."""
    calibrated = all(v["ece"] <= ECE_TARGET for v in validation["variants"].values())
    return VerdictModel(
        experts=data.experts,
        map_experts=data.map_experts,
        coef=oof_logits_fit.coef,
        intercept=oof_logits_fit.intercept,
        temperature=oof_logits_fit.temperature,
        thresholds=oof_logits_fit.thresholds,
        required=data.required,
        calibrated=calibrated,
        validation=validation,
    )


def main(argv: list[str] | None = None) -> int:
    from .verdict_report import evaluate, record, render

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--write", action="store_true", help=f"write {WEIGHTS.name}")
    p.add_argument("--record", type=Path, help="write the tables into this Markdown file")
    args = p.parse_args(argv)
    rows = list(read_cache(args.cache).values())
    if not rows:
        print(f"no cached rows in {args.cache}: run forenscope.train.verdict_data", file=sys.stderr)
        return 2
    data = Data(rows)
    probs, thresholds = leave_one_source_out(data)
    results = evaluate(data, probs, thresholds)
    text = render(results, data)
    print(text)
    if args.record:
        record(args.record, text)
    if args.write:
        fit = fit_fold(data.x, data.y, data.group)
        model = ship(data, fit, results.validation())
        import json

        WEIGHTS.write_text(json.dumps(model.to_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {WEIGHTS} (calibrated={model.calibrated})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["Data", "feature_names", "thresholds_for"]
