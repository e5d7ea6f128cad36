"""Pixel F1 / IoU of every expert's heatmap and of the fused map on the tampered images with masks.

    python benchmarks/bench_localization.py [--data ../shared/data] [--jobs 2] [--reals]

Forged images only (label == tampered with a mask). The fused map is scored twice from the same
expert results: "fused (handset)" (the weighted mean) and "fused (fitted)" (map_fusion.py, fitted
on synthetic forgeries only; these 34 images are a held-out test). For every map it prints:
- F1@0.5 and IoU@0.5: the map thresholded at a FIXED 0.5 (what a user gets);
- best-thr F1 (oracle): the best per-image threshold chosen with the ground truth, an upper
  bound that is not deployable, shown only for context;
- the trivial baseline of flagging every pixel.
Means are over images (overall) and per source. PhotoHolmes figures on the same 34 images come
from ../shared/research/peer-photoholmes.md (a separate run on this kind of machine).

`--reals` adds the false-alarm check on untouched photos that no fitting used (the BSDS500 val
photos outside fit_map_fusion.py's share, the NoSo originals, Kodak24 minus the localizer's
validation photos): the share of pixels >= 0.5 in each fused map and in the cleaned mask.
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
from forenscope.fusion import fuse_heatmaps, localize
from forenscope.io import load_image
from forenscope.pipeline import analyze_image
from forenscope.types import Report

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
    maps: dict[str, np.ndarray | None] = {**_fused_maps(report), **mapping}
    rows = []
    for name, hm in maps.items():
        if hm is None:
            hm = np.zeros(truth.shape, np.float32)
        fixed = scores_at(hm, truth, threshold=0.5)
        ms = _FUSE_MS[name][-1] if name in FUSED else 0.0
        rows.append(
            {
                "ms": ms,
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


FUSED = ("fused (handset)", "fused (fitted)")


def _fused_maps(report: Report) -> dict[str, np.ndarray | None]:
    """Both fused maps from the same expert results, timed."""
    judged = [r for r in report.experts if r.judged]
    h, w = report.image.height, report.image.width
    out: dict[str, np.ndarray | None] = {}
    for name, mode in zip(FUSED, ("handset", "fitted"), strict=True):
        t = time.perf_counter()
        out[name] = fuse_heatmaps(judged, height=h, width=w, mode=mode)
        _FUSE_MS[name].append(1000 * (time.perf_counter() - t))
    return out


_FUSE_MS: dict[str, list[float]] = defaultdict(list)


def score_real(sample: Sample) -> list[Row]:
    """False-alarm rows for an untouched photo: flagged share of each fused map at 0.5."""
    report = analyze_image(load_image(sample.file), threads=1)
    rows: list[Row] = []
    for name, hm in _fused_maps(report).items():
        raw = float(np.mean(hm >= 0.5)) if hm is not None else 0.0
        mask = localize(hm, results=report.experts)[0] if hm is not None else None
        cleaned = float(mask.mean()) if mask is not None else 0.0
        ms = _FUSE_MS[name][-1]
        rows.append({"map": name, "source": sample.source, "raw": raw, "mask": cleaned, "ms": ms})
    return rows


def real_samples(data: Path) -> list[Sample]:
    """Untouched photos no fitting used (see the module docstring)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fit_map_fusion import is_fit_photo

    wanted = {"bsds500-val", "noso", "kodak24"}
    rows = load_manifest(data / "manifest.csv", label="real", source=wanted)
    return [s for s in rows if not is_fit_photo(s.path, s.source)]


def print_reals(rows: list[Row]) -> None:
    print("\n## Untouched photos: share of pixels flagged at 0.5 (false-alarm area)\n")
    print("| source | n | map | pixels >= 0.5 (raw map) | cleaned mask | images >= 1% flagged |")
    print("|---|---|---|---|---|---|")
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        groups[(str(r["source"]), str(r["map"]))].append(r)
        groups[("all", str(r["map"]))].append(r)
    for (source, m), rs in sorted(groups.items(), key=lambda t: (t[0][0] == "all", t[0])):
        alarms = np.mean([float(r["mask"]) >= 0.01 for r in rs])
        print(
            f"| {source} | {len(rs)} | {m} | {100 * _mean(rs, 'raw'):.1f}% | "
            f"{100 * _mean(rs, 'mask'):.1f}% | {100 * alarms:.0f}% |"
        )


def _mean(rows: list[Row], key: str) -> float:
    return float(np.mean([float(r[key]) for r in rows])) if rows else float("nan")


def print_tables(rows: list[Row], n_images: int) -> None:
    by_map: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_map[str(r["map"])].append(r)
    print(f"\n## Overall (mean over {n_images} forged images)\n")
    print("| map | n | F1@0.5 | IoU@0.5 | best-thr F1 (oracle) | all-forged F1 |")
    print("|---|---|---|---|---|---|")
    order = sorted(
        by_map,
        key=lambda m: (
            m not in FUSED,
            FUSED.index(m) if m in FUSED else 0,
            -_mean(by_map[m], "f1"),
        ),
    )
    for m in order:
        rs = by_map[m]
        print(
            f"| {m} | {len(rs)} | {_mean(rs, 'f1'):.3f} | {_mean(rs, 'iou'):.3f} | "
            f"{_mean(rs, 'oracle_f1'):.3f} | {_mean(rs, 'all_forged_f1'):.3f} |"
        )
    for name, (f1, iou, oracle, _) in PEERS.items():
        o = f"{oracle:.3f}" if oracle is not None else "n/a"
        print(f"| {name} (recorded) | 34 | {f1:.3f} | {iou:.3f} | {o} | 0.310 |")
    for m in order[:2]:
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
    fused = by_map.get(FUSED[0], [])
    print(f"\nanalysis time per image (all experts, one thread): {_mean(fused, 'seconds'):.2f} s")
    for name in FUSED:
        ms = [float(r["ms"]) for r in rows if r["map"] == name and "ms" in r]
        if ms:
            print(f"{name}: {np.mean(ms):.1f} ms per image (median {np.median(ms):.1f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    ap.add_argument("--data", type=Path, default=default)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--reals", action="store_true", help="also the false-alarm check")
    ap.add_argument("--only-reals", action="store_true")
    args = ap.parse_args(argv)
    manifest = args.data / "manifest.csv"
    if not manifest.is_file():
        print(f"no manifest at {manifest}", file=sys.stderr)
        return 2
    samples = [s for s in load_manifest(manifest, label="tampered") if s.mask]
    rows: list[Row] = []
    with ProcessPoolExecutor(args.jobs) as pool:
        if not args.only_reals:
            for result in tqdm(pool.map(score_sample, samples), total=len(samples), unit="img"):
                rows.extend(result)
            print_tables(rows, len(samples))
        if args.reals or args.only_reals:
            reals = real_samples(args.data)
            real_rows: list[Row] = []
            for result in tqdm(pool.map(score_real, reals), total=len(reals), unit="img"):
                real_rows.extend(result)
            print_reals(real_rows)
            for name in FUSED:
                ms = [float(r["ms"]) for r in real_rows if r["map"] == name]
                print(f"{name}: {np.mean(ms):.1f} ms per image (median {np.median(ms):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
