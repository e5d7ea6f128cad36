"""Train the localizer on synthetic forgeries of real photos; select and calibrate on held-out ones.

    python -m forenscope.train.localizer --data ../shared/data --seed 0

Photos: BSDS500 train, Kodak24 and the Debian wallpapers from the manifest (never CIFAKE or
CNNDetection, never the tampered set). A fixed share of them (chosen by a hash of the path) is
held out: their forgeries pick the model, the spatial smoothing and the Platt calibration. BSDS500
val and the NoSo originals are not touched here: the benchmark uses them as unseen real photos.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..localizer.features import image_features
from ..localizer.model import WEIGHTS, Localizer, to_pixels
from ..localizer.trees import export_hgb
from .localizer_synth import make_sample

TRAIN_SOURCES = (
    "bsds500-train",
    "kodak24",
    "debian-lomiri-wallpapers-16.04",
    "debian-lomiri-wallpapers-20.04",
)
MAX_SIDE = 1024  # big wallpapers are downscaled once, so crops still hold scene content
VAL_SHARE = 0.15
CONFIGS: dict[str, dict[str, Any]] = {
    "leaves31": {
        "max_iter": 300,
        "learning_rate": 0.06,
        "max_leaf_nodes": 31,
        "min_samples_leaf": 200,
        "l2_regularization": 1.0,
    },
    "leaves63": {
        "max_iter": 300,
        "learning_rate": 0.06,
        "max_leaf_nodes": 63,
        "min_samples_leaf": 200,
        "l2_regularization": 1.0,
    },
}


@dataclass
class Item:
    x: np.ndarray
    frac: np.ndarray  # manipulated share per block
    grid: tuple[int, int]
    mask: np.ndarray
    kind: str


def load_photos(
    data: Path,
) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]], list[str]]:
    """(train photos, validation photos, licences used) from the manifest's real photos."""
    from ..eval.datasets import load_manifest

    rows = load_manifest(data / "manifest.csv", label="real", source=set(TRAIN_SOURCES))
    train: list[tuple[str, np.ndarray]] = []
    val: list[tuple[str, np.ndarray]] = []
    licences: set[str] = set()
    for s in sorted(rows, key=lambda r: r.path):
        with Image.open(s.file) as f:
            im = f.convert("RGB")
        if max(im.size) > MAX_SIDE:
            k = MAX_SIDE / max(im.size)
            size = (round(im.width * k), round(im.height * k))
            im = im.resize(size, Image.Resampling.LANCZOS)
        rgb = np.asarray(im, dtype=np.uint8)
        is_val = int(hashlib.sha256(s.path.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < VAL_SHARE
        (val if is_val else train).append((s.path, rgb))
        licences.add(f"{s.source}: {s.licence}")
    return train, val, sorted(licences)


def _make_item(task: tuple[np.ndarray, np.ndarray, int]) -> Item:
    photo, donor, seed = task
    s = make_sample(photo, donor, np.random.default_rng(seed))
    x, grid, _ = image_features(s.rgb)
    from ..localizer.features import block_labels

    return Item(x, block_labels(s.mask), grid, s.mask, s.kind)


def build_set(
    photos: Sequence[tuple[str, np.ndarray]], per_photo: int, seed: int, jobs: int
) -> list[Item]:
    """`per_photo` seeded forgeries of every photo; donors are other photos of the same split."""
    rng = np.random.default_rng(seed)
    tasks = []
    for i, (_, photo) in enumerate(photos):
        for _ in range(per_photo):
            j = int(rng.integers(0, len(photos) - 1))
            donor = photos[j + (j >= i)][1] if len(photos) > 1 else photo
            tasks.append((photo, donor, int(rng.integers(0, 2**31))))
    if jobs <= 1:
        return [_make_item(t) for t in tasks]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(_make_item, tasks, chunksize=4))


def _xy(items: Sequence[Item]) -> tuple[np.ndarray, np.ndarray]:
    """Training rows; blocks half-covered by the mask are left out (their label is ambiguous)."""
    x = np.concatenate([it.x for it in items])
    frac = np.concatenate([it.frac for it in items])
    keep = (frac <= 0.25) | (frac >= 0.75)
    return x[keep], (frac[keep] >= 0.5).astype(np.int8)


def fit_platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e4).fit(logits.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def evaluate(model: Localizer, items: Sequence[Item]) -> dict[str, float]:
    """Synthetic validation: pixel F1@0.5 on forged items, false alarms on untouched ones."""
    from ..eval.metrics import best_threshold_f1, scores_at

    f1, oracle, fp_share, alarms = [], [], [], []
    for it in items:
        hm = to_pixels(model.calibrate(model.block_logits(it.x, it.grid)), it.mask.shape)
        if it.mask.any():
            f1.append(scores_at(hm, it.mask).f1)
            oracle.append(best_threshold_f1(hm, it.mask, steps=21))
        else:
            flagged = float((hm >= 0.5).mean())
            fp_share.append(flagged)
            alarms.append(flagged >= 0.01)
    return {
        "f1_at_0.5": float(np.mean(f1)),
        "oracle_f1": float(np.mean(oracle)),
        "untouched_flagged_share": float(np.mean(fp_share)) if fp_share else float("nan"),
        "untouched_false_alarm_rate": float(np.mean(alarms)) if alarms else float("nan"),
        "n_forged": len(f1),
        "n_untouched": len(fp_share),
    }


def fit_select(
    train: Sequence[Item],
    val: Sequence[Item],
    names: list[str],
    seed: int,
    configs: dict[str, dict[str, Any]],
) -> tuple[Localizer, dict[str, Any]]:
    """Fit each config, calibrate on the validation forgeries, keep the best validation F1@0.5."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x, y = _xy(train)
    xv, yv = _xy(val)
    best: tuple[float, Localizer, dict[str, Any]] | None = None
    log: dict[str, Any] = {"train_rows": int(len(y)), "train_positive_share": float(y.mean())}
    for cname, params in configs.items():
        start = time.perf_counter()
        clf = HistGradientBoostingClassifier(early_stopping=False, random_state=seed, **params).fit(
            x, y
        )
        forest = export_hgb(clf)
        for smooth in (0.0, 1.0):
            m0 = Localizer(forest, tuple(names), 1.0, 0.0, smooth, "tmp")
            grid_logits = np.concatenate([m0.block_logits(it.x, it.grid).ravel() for it in val])
            keep = np.concatenate([(it.frac <= 0.25) | (it.frac >= 0.75) for it in val])
            a, b = fit_platt(grid_logits[keep], yv)
            model = Localizer(forest, tuple(names), a, b, smooth, f"{cname}-s{smooth:g}")
            metrics = evaluate(model, val)
            metrics["fit_seconds"] = time.perf_counter() - start
            log[model.version] = metrics
            if best is None or metrics["f1_at_0.5"] > best[0]:
                best = (metrics["f1_at_0.5"], model, metrics)
    assert best is not None
    thr, f1 = val_threshold(best[1], val)
    log.update(selected=best[1].version, val_threshold=thr, val_f1_at_threshold=f1)
    return dataclasses.replace(best[1], val_threshold=thr), log


def val_threshold(model: Localizer, items: Sequence[Item]) -> tuple[float, float]:
    """The threshold (0.05 steps) with the best mean pixel F1 on the forged validation items."""
    from ..eval.metrics import scores_at

    maps = [
        (to_pixels(model.calibrate(model.block_logits(it.x, it.grid)), it.mask.shape), it.mask)
        for it in items
        if it.mask.any()
    ]
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    f1 = [float(np.mean([scores_at(hm, m, threshold=t).f1 for hm, m in maps])) for t in grid]
    return float(grid[int(np.argmax(f1))]), max(f1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-photo", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    args = ap.parse_args(argv)
    start = time.perf_counter()
    train_photos, val_photos, licences = load_photos(args.data)
    train = build_set(train_photos, args.per_photo, args.seed, args.jobs)
    val = build_set(val_photos, 4, args.seed + 1, args.jobs)
    names = image_features(train_photos[0][1])[2]
    model, log = fit_select(train, val, names, args.seed, CONFIGS)
    model.save(args.out)
    log.update(
        seed=args.seed,
        per_photo=args.per_photo,
        train_photos=len(train_photos),
        val_photos=len(val_photos),
        train_images=len(train),
        val_images=len(val),
        licences=licences,
        seconds=time.perf_counter() - start,
    )
    args.out.with_suffix(".json").write_text(json.dumps(log, indent=2, sort_keys=True) + "\n")
    print(json.dumps(log, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
