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
from pathlib import Path
from typing import Any

import numpy as np

from ..fusion.verdict_model import LABELS, VerdictModel
from .verdict_data import DEFAULT_CACHE, read_cache
from .verdict_fit import TARGET_PRECISION, Fit, fit_fold, probabilities_from_logits
from .verdict_table import Data

ECE_TARGET = 0.05
WEIGHTS = Path(__file__).resolve().parents[1] / "fusion" / "weights" / "verdict.json"


def leave_one_source_out(
    data: Data, precision: float = TARGET_PRECISION
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities (N, 3) and per-row decision thresholds (N, 3)."""
    from tqdm import tqdm

    probs = np.zeros((len(data.y), 3))
    thresholds = np.zeros((len(data.y), 3))
    groups = sorted(set(data.group))
    for g in tqdm(groups, desc="sources", file=sys.stderr):
        test = data.group == g
        fit = fit_fold(data.x[~test], data.y[~test], data.group[~test], precision)
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
    p.add_argument(
        "--precision",
        type=float,
        default=TARGET_PRECISION,
        help="precision each decided class must reach on held-out predictions (sets the "
        "thresholds; lower decides more images and gets more of them wrong)",
    )
    args = p.parse_args(argv)
    rows = list(read_cache(args.cache).values())
    if not rows:
        print(f"no cached rows in {args.cache}: run forenscope.train.verdict_data", file=sys.stderr)
        return 2
    data = Data(rows)
    probs, thresholds = leave_one_source_out(data, args.precision)
    results = evaluate(data, probs, thresholds)
    text = render(results, data)
    print(text)
    if args.record:
        record(args.record, text)
    if args.write:
        fit = fit_fold(data.x, data.y, data.group, args.precision)
        model = ship(data, fit, results.validation())
        import json

        WEIGHTS.write_text(json.dumps(model.to_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"wrote {WEIGHTS} (calibrated={model.calibrated})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
