"""Localisation and speed of the noise, spectrum and copy-move experts, one expert at a time.

    python benchmarks/tune_noise_spectrum_copymove.py [--data ../shared/data] [--experts noise,...]

1. Real tampered images (label == tampered with a mask, 34 images): pixel F1 and IoU of the
   expert's heatmap thresholded at a FIXED 0.5, mean over images, per source and overall, next to
   the all-forged baseline (0.310 overall) and the PhotoHolmes peers (DQ 0.315, Splicebuster
   0.173, Noisesniffer 0.103 F1@0.5). The copy-move expert marks source AND target; on COVERAGE
   it is also scored against the union of the `copy` (source) and `forged` (target) masks. NoSo
   masks mark only the target. An abstaining expert predicts no pixel.
2. Untouched originals of the copy-move sets (NoSo 5): score and flagged share (false alarms).
   For the spectrum expert also the AUC of its global periodicity, fake vs real, on PNG images.
3. Our own forgeries on the shipped photo (forenscope.forgeries), and the time per 1024x768 image
   on one core.
One fixed rule for all images: nothing here is tuned per image or per source.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from forenscope.eval.datasets import load_manifest, load_mask
from forenscope.eval.metrics import all_forged_f1, scores_at
from forenscope.experts import get_expert
from forenscope.forgeries import (
    Box,
    example_photo,
    jpeg_roundtrip,
    make_copy_move,
    make_resampled_region,
    make_splice,
    mask_iou,
    synthetic_photo,
)
from forenscope.fusion import resize_map
from forenscope.io import load_image
from forenscope.io.input import ImageInput

PEERS = "PhotoHolmes F1@0.5: DQ 0.315, Splicebuster 0.173, Noisesniffer 0.103; all-forged 0.310"
ROOT = Path(__file__).resolve().parents[1]


def heat_of(expert: str, image: ImageInput) -> tuple[np.ndarray, float | None, float]:
    res = get_expert(expert).analyze(image)
    hm = res.heatmap if res.heatmap is not None else np.zeros(image.rgb.shape[:2], np.float32)
    return hm, res.score, res.elapsed_s


def coverage_union(mask_file: Path, truth: np.ndarray) -> np.ndarray:
    copy = mask_file.with_name(mask_file.name.replace("forged", "copy"))
    return truth | load_mask(copy) if copy.is_file() else truth


def real_tampered(data: Path, expert: str) -> None:
    rows: dict[str, list[tuple[float, ...]]] = defaultdict(list)
    for s in load_manifest(data / "manifest.csv", label="tampered"):
        if s.mask_file is None:
            continue
        truth = load_mask(s.mask_file)
        hm, score, secs = heat_of(expert, load_image(s.file))
        hm = resize_map(hm, *truth.shape)
        fixed = scores_at(hm, truth, threshold=0.5)
        union = coverage_union(s.mask_file, truth) if "coverage" in s.source else truth
        both = scores_at(hm, union, threshold=0.5)
        row = (fixed.f1, fixed.iou, all_forged_f1(truth), both.f1, both.iou, score or 0.0, secs)
        rows[s.source].append(row)
        rows["overall"].append(row)
    print(f"\n## {expert}: real tampered images, heatmap >= 0.5  ({PEERS})")
    print(
        "| source | n | F1@0.5 | IoU@0.5 | all-forged F1 | F1 src+tgt | IoU src+tgt | score | s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for src in sorted(rows, key=lambda k: (k == "overall", k)):
        m = np.mean(np.array(rows[src]), axis=0)
        print(f"| {src} | {len(rows[src])} | " + " | ".join(f"{v:.3f}" for v in m) + " |")


def untouched(data: Path, expert: str) -> None:
    out = []
    for s in load_manifest(data / "manifest.csv", label="real", source="noso"):
        hm, score, _ = heat_of(expert, load_image(s.file))
        out.append(f"{Path(s.path).name}: score {score}, flagged {float((hm >= 0.5).mean()):.4f}")
    print(f"\n{expert}: untouched NoSo originals -> " + "; ".join(out))


def global_auc(data: Path, per_source: int = 40) -> None:
    """Spectrum's global periodicity: AUC fake vs real on never-JPEG (PNG) images >= 128 px."""
    labels, sig = [], []
    counts: dict[str, int] = defaultdict(int)
    for s in load_manifest(data / "manifest.csv", format="PNG", label={"real", "fake"}):
        if counts[s.source + s.label] >= per_source:
            continue
        image = load_image(s.file)
        if min(image.rgb.shape[:2]) < 128:
            continue
        counts[s.source + s.label] += 1
        res = get_expert("spectrum").analyze(image)
        labels.append(s.label == "fake")
        sig.append(res.details["global_peak"]["significance"])
    y, x = np.array(labels), np.array(sig)
    ranks = rankdata(x)
    auc = (ranks[y].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum())
    fired = float((x[~y] >= 9).mean()), float((x[y] >= 9).mean())
    print(
        f"\nspectrum global periodicity on PNG images: AUC fake vs real {auc:.3f} "
        f"({int(y.sum())} fake, {int((~y).sum())} real: {dict(counts)}); "
        f"score >= 0.5 on {fired[0]:.1%} of real, {fired[1]:.1%} of fake"
    )


def as_input(rgb: np.ndarray, fmt: str) -> ImageInput:
    return ImageInput(rgb=rgb, data=b"", format=fmt, mode="RGB")


def own_forgeries(expert: str) -> None:
    ex, syn = example_photo(), synthetic_photo()
    cases = {
        "noise": [
            make_splice(ex, synthetic_photo(768, 1024, seed=3), Box(600, 450, 240, 200)),
            make_splice(syn, synthetic_photo(seed=4), Box(300, 200, 200, 160)),
        ],
        "spectrum": [
            make_resampled_region(ex, Box(100, 80, 256, 256)),  # textured (dandelion head)
            make_resampled_region(ex, Box(560, 420, 256, 224)),  # smooth bokeh: a known miss
            make_resampled_region(syn, Box(300, 200, 200, 160)),
        ],
        "copy_move": [
            make_copy_move(ex, Box(120, 150, 160, 140), (700, 480)),
            make_copy_move(syn, Box(60, 60, 150, 120), (380, 300)),
        ],
    }[expert]
    for f in cases:
        hm, score, secs = heat_of(expert, load_image(f.data))
        iou = mask_iou(hm >= 0.5, f.mask)
        print(f"{expert}: {f.description}: score {score}, IoU(target) {iou:.3f}")
    for name, rgb in [("example re-saved q92", jpeg_roundtrip(ex, 92)), ("synthetic", syn)]:
        hm, score, secs = heat_of(expert, as_input(rgb, "JPEG"))
        print(f"{expert}: untouched {name}: score {score}, flagged {float((hm >= 0.5).mean()):.4f}")
    times = [heat_of(expert, as_input(ex, "JPEG"))[2] for _ in range(5)]
    print(f"{expert}: 1024x768 time, median of 5: {np.median(times):.3f} s")


def max_of_three(data: Path) -> None:
    """Pixel-wise max of the three maps: what they localise together (no fusion model)."""
    rows: dict[str, list[float]] = defaultdict(list)
    for s in load_manifest(data / "manifest.csv", label="tampered"):
        if s.mask_file is None:
            continue
        truth, image = load_mask(s.mask_file), load_image(s.file)
        maps = [resize_map(heat_of(e, image)[0], *truth.shape) for e in EXPERTS]
        f1 = scores_at(np.maximum.reduce(maps), truth, threshold=0.5).f1
        rows[s.source].append(f1)
        rows["overall"].append(f1)
    print(
        "\nmax of noise/spectrum/copy_move maps, F1@0.5: "
        + ", ".join(
            f"{k} {np.mean(v):.3f}"
            for k, v in sorted(rows.items(), key=lambda kv: kv[0] == "overall")
        )
    )


EXPERTS = ("noise", "spectrum", "copy_move")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--experts", default=",".join(EXPERTS))
    ap.add_argument("--skip-real", action="store_true")
    args = ap.parse_args()
    for expert in args.experts.split(","):
        start = time.perf_counter()
        own_forgeries(expert)
        if not args.skip_real and (args.data / "manifest.csv").is_file():
            real_tampered(args.data, expert)
            untouched(args.data, expert)
            if expert == "spectrum":
                global_auc(args.data)
        print(f"({expert}: {time.perf_counter() - start:.1f} s)")
    if not args.skip_real and (args.data / "manifest.csv").is_file():
        max_of_three(args.data)


if __name__ == "__main__":
    main()
