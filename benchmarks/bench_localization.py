"""Pixel F1 / IoU of every expert's heatmap and of the fused map on the tampered images with masks.

    python benchmarks/bench_localization.py [--data ../shared/data] [--jobs 2]

Forged images only (label == tampered with a mask). For every map it prints:
- F1@0.5 and IoU@0.5: the map thresholded at a FIXED 0.5 (what a user gets);
- best-thr F1 (oracle): the best per-image threshold chosen with the ground truth, an upper
  bound that is not deployable, shown only for context;
- the trivial baseline of flagging every pixel.
Means are over images (overall) and per source. PhotoHolmes figures on the same 34 images come
from ../shared/research/peer-photoholmes.md (a separate run on this kind of machine).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from forenscope.eval.datasets import Sample, load_manifest, load_mask
from forenscope.eval.metrics import all_forged_f1, best_threshold_f1, scores_at
from forenscope.experts import expert_classes
from forenscope.io import load_image
from forenscope.pipeline import analyze_image

PEERS = {  # PhotoHolmes on the same 34 images: F1@0.5, IoU@0.5, oracle F1, s/img
    "PhotoHolmes DQ": (0.315, 0.213, 0.360, 0.06),
    "PhotoHolmes Splicebuster": (0.173, 0.119, 0.434, 2.05),
    "PhotoHolmes Noisesniffer": (0.103, 0.071, None, 8.16),
    "PhotoHolmes ZERO": (0.034, 0.024, None, 21.75),
}
Row = dict[str, float | str]


def _draws_maps(name: str) -> bool:
    return expert_classes()[name].spec.produces_heatmap


def score_sample(sample: Sample) -> list[Row]:
    """One row per map (fused + each expert with a heatmap) for one image."""
    assert sample.mask_file is not None
    truth = load_mask(sample.mask_file)
    start = time.perf_counter()
    image = load_image(sample.file)
    report = analyze_image(image, threads=1)
    seconds = time.perf_counter() - start
    # An expert that abstains (or a fused map with nothing judged) predicts no pixel: it counts
    # as an empty map, so every row is a mean over all forged images.
    mapping = {r.expert: r.heatmap for r in report.experts if _draws_maps(r.expert)}
    maps: dict[str, np.ndarray | None] = {"fused": report.fused_heatmap, **mapping}
    rows = []
    for name, hm in maps.items():
        if hm is None:
            hm = np.zeros(truth.shape, np.float32)
        fixed = scores_at(hm, truth, threshold=0.5)
        rows.append(
            {
                "map": name,
                "source": sample.source,
                "f1": fixed.f1,
                "iou": fixed.iou,
                "oracle_f1": best_threshold_f1(hm, truth),
                "all_forged_f1": all_forged_f1(truth),
                "seconds": seconds,
            }
        )
    return rows


def _mean(rows: list[Row], key: str) -> float:
    return float(np.mean([float(r[key]) for r in rows])) if rows else float("nan")


def print_tables(rows: list[Row], n_images: int) -> None:
    by_map: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_map[str(r["map"])].append(r)
    print(f"\n## Overall (mean over {n_images} forged images)\n")
    print("| map | n | F1@0.5 | IoU@0.5 | best-thr F1 (oracle) | all-forged F1 |")
    print("|---|---|---|---|---|---|")
    order = sorted(by_map, key=lambda m: (m != "fused", -_mean(by_map[m], "f1")))
    for m in order:
        rs = by_map[m]
        print(
            f"| {m} | {len(rs)} | {_mean(rs, 'f1'):.3f} | {_mean(rs, 'iou'):.3f} | "
            f"{_mean(rs, 'oracle_f1'):.3f} | {_mean(rs, 'all_forged_f1'):.3f} |"
        )
    for name, (f1, iou, oracle, _) in PEERS.items():
        o = f"{oracle:.3f}" if oracle is not None else "n/a"
        print(f"| {name} (recorded) | 34 | {f1:.3f} | {iou:.3f} | {o} | 0.310 |")
    for m in order[:3]:
        print(f"\n### Per source: {m}\n")
        print("| source | n | F1@0.5 | IoU@0.5 | best-thr F1 (oracle) | all-forged F1 |")
        print("|---|---|---|---|---|---|")
        by_source: dict[str, list[Row]] = defaultdict(list)
        for r in by_map[m]:
            by_source[str(r["source"])].append(r)
        for s in sorted(by_source):
            rs = by_source[s]
            print(
                f"| {s} | {len(rs)} | {_mean(rs, 'f1'):.3f} | {_mean(rs, 'iou'):.3f} | "
                f"{_mean(rs, 'oracle_f1'):.3f} | {_mean(rs, 'all_forged_f1'):.3f} |"
            )
    fused = by_map.get("fused", [])
    print(f"\nanalysis time per image (all experts, one thread): {_mean(fused, 'seconds'):.2f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    ap.add_argument("--data", type=Path, default=default)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    manifest = args.data / "manifest.csv"
    if not manifest.is_file():
        print(f"no manifest at {manifest}", file=sys.stderr)
        return 2
    samples = [s for s in load_manifest(manifest, label="tampered") if s.mask]
    rows: list[Row] = []
    with ProcessPoolExecutor(args.jobs) as pool:
        for result in tqdm(pool.map(score_sample, samples), total=len(samples), unit="img"):
            rows.extend(result)
    print_tables(rows, len(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
