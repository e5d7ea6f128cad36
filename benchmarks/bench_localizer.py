"""The learned localizer on the real tampered images it never saw, and on unseen real photos.

    python benchmarks/bench_localizer.py [--data ../shared/data] [--jobs 2] [--weights PATH]

Tampered (label == tampered with a mask, 34 images): F1@0.5 and IoU@0.5 at the FIXED threshold
0.5 (what a user gets), the per-image best-threshold F1 (ORACLE: chosen with the ground truth,
an upper bound only) and the all-forged baseline, overall and per source.
Untouched real photos the training never used (BSDS500 val, NoSo originals): share of pixels at
or above 0.5 and image false-alarm rate (an image "alarms" when >= 1% of its pixels are flagged).
Nothing here feeds back into training: the weights, threshold and calibration are fixed before.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from forenscope.eval.datasets import Sample, load_manifest, load_mask
from forenscope.eval.metrics import all_forged_f1, best_threshold_f1, scores_at
from forenscope.io import load_image
from forenscope.learned.localizer.model import WEIGHTS, Localizer

HOLDOUT_REAL = {"bsds500-val", "noso"}
Row = dict[str, float | str]
_model: Localizer | None = None


def _load(weights: Path) -> Localizer:
    global _model
    if _model is None:
        _model = Localizer.load(weights)
    return _model


def run_one(args: tuple[Sample, Path]) -> Row:
    sample, weights = args
    model = _load(weights)
    rgb = load_image(sample.file).rgb
    model.pixel_map(rgb[:64, :64])  # build the ONNX session outside the timing
    start, cpu = time.perf_counter(), time.process_time()
    hm = model.pixel_map(rgb)
    row: Row = {
        "source": sample.source,
        "mp": rgb.shape[0] * rgb.shape[1] / 1e6,
        "seconds": time.perf_counter() - start,
        "cpu": time.process_time() - cpu,
    }
    row["score"] = float(np.sort(hm.ravel())[::-1][: max(1, hm.size // 50)].mean())
    row["flagged"] = float((hm >= 0.5).mean())
    row["flagged_t"] = float((hm >= model.val_threshold).mean())
    if sample.mask_file is None:
        return row
    truth = load_mask(sample.mask_file)
    fixed = scores_at(hm, truth, threshold=0.5)
    at_t = scores_at(hm, truth, threshold=model.val_threshold)
    row.update(
        f1_t=at_t.f1,
        iou_t=at_t.iou,
        f1=fixed.f1,
        iou=fixed.iou,
        oracle_f1=best_threshold_f1(hm, truth),
        all_forged_f1=all_forged_f1(truth),
        truth_share=float(truth.mean()),
    )
    return row


def _m(rows: list[Row], key: str) -> float:
    return float(np.mean([float(r[key]) for r in rows])) if rows else float("nan")


def _groups(rows: list[Row]) -> list[tuple[str, list[Row]]]:
    groups: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        groups[str(r["source"])].append(r)
    return [*sorted(groups.items()), ("**overall**", rows)]


def print_tampered(rows: list[Row], t: float) -> None:
    print("\n## Real tampered images (never seen in training or selection)\n")
    print(
        f"| source | n | F1@0.5 | IoU@0.5 | F1@{t:g} (val) | IoU@{t:g} (val) "
        "| best-thr F1 (oracle) | all-forged F1 | flagged@0.5 | flagged@val | truth share |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, rs in _groups(rows):
        print(
            f"| {name} | {len(rs)} | {_m(rs, 'f1'):.3f} | {_m(rs, 'iou'):.3f} "
            f"| {_m(rs, 'f1_t'):.3f} | {_m(rs, 'iou_t'):.3f} "
            f"| {_m(rs, 'oracle_f1'):.3f} | {_m(rs, 'all_forged_f1'):.3f} "
            f"| {_m(rs, 'flagged'):.3f} | {_m(rs, 'flagged_t'):.3f} | {_m(rs, 'truth_share'):.3f} |"
        )
    print("| PhotoHolmes DQ (recorded) | 34 | 0.315 | 0.213 | | | 0.360 | 0.310 | | | |")


def print_untouched(rows: list[Row], t: float) -> None:
    print("\n## Untouched real photos not used in training\n")
    print(
        "| source | n | flagged share @0.5 | false-alarm rate @0.5 "
        f"| flagged share @{t:g} | false-alarm rate @{t:g} | mean score |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, rs in _groups(rows):
        alarms = np.mean([float(r["flagged"]) >= 0.01 for r in rs])
        alarms_t = np.mean([float(r["flagged_t"]) >= 0.01 for r in rs])
        print(
            f"| {name} | {len(rs)} | {_m(rs, 'flagged'):.3f} | {alarms:.2f} "
            f"| {_m(rs, 'flagged_t'):.3f} | {alarms_t:.2f} | {_m(rs, 'score'):.3f} |"
        )
    print("(an image false-alarms when >= 1% of its pixels are at or above the threshold)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    ap.add_argument("--data", type=Path, default=default)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--weights", type=Path, default=WEIGHTS)
    args = ap.parse_args(argv)
    manifest = args.data / "manifest.csv"
    if not manifest.is_file():
        print(f"no manifest at {manifest}", file=sys.stderr)
        return 2
    tampered = [s for s in load_manifest(manifest, label="tampered") if s.mask]
    reals = load_manifest(manifest, label="real", source=HOLDOUT_REAL)
    with ProcessPoolExecutor(args.jobs) as pool:
        t_rows = list(pool.map(run_one, [(s, args.weights) for s in tampered]))
        r_rows = list(pool.map(run_one, [(s, args.weights) for s in reals]))
    model = Localizer.load(args.weights)
    print(f"weights: {args.weights} ({model.version}; val threshold {model.val_threshold:g})")
    print_tampered(t_rows, model.val_threshold)
    print_untouched(r_rows, model.val_threshold)
    all_rows = t_rows + r_rows
    mp = sum(float(r["mp"]) for r in all_rows)
    wall = sum(float(r["seconds"]) for r in all_rows) / mp
    cpu = sum(float(r["cpu"]) for r in all_rows) / mp
    print(f"\ninference: {cpu:.2f} CPU s per MP, {wall:.2f} wall s per MP ({args.jobs} jobs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
