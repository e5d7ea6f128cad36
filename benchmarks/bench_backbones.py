"""Second frozen backbone: CLIP ViT-B/16 vs DINOv2 ViT-S/14 vs both (issue 11, item 5).

    python benchmarks/bench_backbones.py [--data ../shared/data] [--c 0.05] [--seed 0]
                                         [--skip-speed] [--skip-localization] [--speed-only]

Needs both encoders cached (`forenscope models pull` and `forenscope models pull
dinov2-vit-s14-int8`). Everything runs on one thread (onnxruntime, BLAS). Features are cached
under the user cache (~/.cache/forenscope/features), never in the repository.

1. Real vs generated, leave-one-generator-out: exactly bench_learned.py's protocol and code
   (train on every other generator + 4/5 of the real photos, variants held out together, test
   on the held-out generator vs the other 1/5; the shipped recipe: 2 laundered training copies
   per image, logistic head C 0.05, Platt on grouped out-of-fold logits; AUC and recall at the
   shipped 0.5 per held-out generator, false-positive rate on the held-out reals, each as stored
   and on the seeded laundered copy). Features: clip = unit image embedding (512, as shipped);
   dinov2 = class token + mean patch token (768); clip+dinov2 = both concatenated; format-only
   = the container cues of bench_learned.py.
2. Localization of pasted generated regions on composites (train/composites.py, the recipe of
   bench_patch_map.py's composite head, one fold per generator): patch heads on each backbone's
   tokens (CLIP 14 x 14 projected patches, DINOv2 16 x 16 patch tokens), the mean of the two
   maps, and as a control the mean of two CLIP heads (another patch draw and calibration split:
   what averaging alone gives); F1 / IoU at 0.5, oracle F1, share flagged outside the pasted
   region; then the same
   heads fitted on every composite, on the real AI inpaintings with masks (LaMa, SD-2) and on
   untouched camera photos (flagged area).
3. Speed and memory: ms per image of each bare encoder on ready tensors, one thread, batch 1 and
   16; resident memory added by opening each session and running a batch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from forenscope.eval.metrics import all_forged_f1, best_threshold_f1, resize_map, scores_at
from forenscope.learned.dino_encoder import DinoEncoder, dino_tensor
from forenscope.learned.encoder import ClipEncoder
from forenscope.learned.heads import LinearHead
from forenscope.learned.preprocess import align_image, to_tensor
from forenscope.models.cache import cache_dir
from forenscope.models.sources import dino_path, encoder_path, file_sha256
from forenscope.train.cli import LAUNDER_COPIES, features_for
from forenscope.train.composites import (
    Composite,
    generator_folds,
    mask_to_crop,
    patch_coverage,
    plan_pairs,
    real_folds,
    render,
)
from forenscope.train.data import (
    ALIGN_TAG,
    TrainingImage,
    load_aligned,
    load_sample,
    read_manifest,
    select,
)
from forenscope.train.features import FeatureCache
from forenscope.train.fit import train_and_calibrate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_learned import (
    MIN_IMAGES,
    FoldScores,
    Method,
    all_views,
    format_features,
    held_out_unit,
    logo,
    print_logo,
)

ROOT = Path(__file__).resolve().parents[1]
PATCH_STRIDE = 6  # whole-image patch rows for the patch heads, as train/features.py
COMPOSITE_SIZE = 256
GRIDS = {"clip": 14, "dino": 16}  # patch grid of each backbone at 224 px
CONTROL = "clip+clip (two CLIP heads, mean map)"
CAMERA_SOURCES = ("metadata-extractor-images", "exif-samples")  # straight-from-camera JPEGs
INPAINTERS = ("big-lama", "sd2-inpainting")  # the real AI inpaintings with masks
HELD_SOURCES = (*CAMERA_SOURCES, "inpaint-anything", "magicinpainter")
LOCALIZATION_VERSION = "3"  # in the cache key of the per-fold results: bump when the fit changes


class Backbones:
    """Both encoders on one thread, opened on first use; their file hashes tag the caches."""

    def __init__(self) -> None:
        self.clip_path, self.dino_path = encoder_path(), dino_path()
        self._clip: ClipEncoder | None = None
        self._dino: DinoEncoder | None = None

    @property
    def clip(self) -> ClipEncoder:
        if self._clip is None:
            self._clip = ClipEncoder(self.clip_path, threads=1)
        return self._clip

    @property
    def dino(self) -> DinoEncoder:
        if self._dino is None:
            self._dino = DinoEncoder(self.dino_path, threads=1)
        return self._dino

    def tag(self, name: str) -> str:
        path = self.clip_path if name == "clip" else self.dino_path
        return file_sha256(path)[:12]

    def encode(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Aligned uint8 224 px crops -> image features and every patch token of both."""
        clip = self.clip.encode(to_tensor([Image.fromarray(i) for i in images]), tokens=True)
        assert clip.tokens is not None
        return {
            "clip-patch": unit(self.clip.project_patches(clip.tokens)),
            **self.dino_rows(images),
        }

    def dino_rows(self, images: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        dino = self.dino.encode(dino_tensor(list(images)))
        return {
            "dino": np.concatenate([dino.cls, dino.patches.mean(1)], axis=1),
            "dino-patch": dino.patches,
        }


def unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12), np.float32)


def cached_rows(
    samples: list[TrainingImage],
    names: list[str],
    bb: Backbones,
    encode: Callable[[list[np.ndarray]], dict[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """(N, D) rows per feature name for `samples` (stored or laundered views), cached by the
    sample's key; whole-image patch features keep every PATCH_STRIDE-th patch."""
    caches = {
        n: FeatureCache(
            cache_dir()
            / "features"
            / f"bench-backbones-{n}-{ALIGN_TAG}-{bb.tag(n.split('-')[0])}.npz"
        )
        for n in names
    }
    todo = list(
        {s.key: s for s in samples if any(s.key not in c.rows for c in caches.values())}.values()
    )
    t = time.perf_counter()
    try:
        for start in range(0, len(todo), 16):
            chunk = todo[start : start + 16]
            out = encode([load_sample(s) for s in chunk])
            for n in names:
                rows = out[n][:, ::PATCH_STRIDE].reshape(len(chunk), -1) if "patch" in n else out[n]
                for s, row in zip(chunk, rows, strict=True):
                    caches[n].rows[s.key] = row.astype(np.float32)
            print(
                f"\r{'+'.join(names)}: {start + len(chunk)}/{len(todo)} encoded",
                end="",
                file=sys.stderr,
                flush=True,
            )
    finally:
        for c in caches.values():
            c.save()
    if todo:
        print(f" ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    return {n: np.stack([c.rows[s.key] for s in samples]) for n, c in caches.items()}


# -- 1. image verdict, leave one generator out ---------------------------------------------------
def verdict(samples: list[TrainingImage], bb: Backbones, c: float) -> None:
    k = LAUNDER_COPIES
    views = all_views(samples, k)
    clip = features_for(views, "clip", True)
    dino = cached_rows(views, ["dino"], bb, bb.dino_rows)["dino"].astype(np.float64)
    methods = [
        Method("clip (shipped)", clip, launder=True, c=c),
        Method("dinov2", dino, launder=True, c=c),
        Method("clip+dinov2", np.concatenate([clip, dino], axis=1), launder=True, c=c),
        Method("format-only", format_features(views), launder=False, c=c),
    ]
    t = time.perf_counter()
    scores = logo(samples, methods, k)
    print(
        f"# Backbones for the image verdict ({len(samples)} images; LOGO of bench_learned.py, "
        f"{len(methods)} methods, {time.perf_counter() - t:.0f} s)"
    )
    print_logo(samples, scores, [m.name for m in methods])
    paired(samples, scores, "clip (shipped)", ["dinov2", "clip+dinov2"])


def paired(
    samples: list[TrainingImage], scores: dict[str, FoldScores], base: str, others: list[str]
) -> None:
    """Per held-out generator (n >= MIN_IMAGES), each method against the shipped CLIP head:
    on how many it is better, the mean difference, and that mean without its largest gain
    (one small generator can carry a mean of 18)."""
    counts: dict[str, int] = defaultdict(int)
    for s in samples:
        if s.label == "fake":
            counts[held_out_unit(s.generator)] += 1
    units = sorted(u for u, n in counts.items() if n >= MIN_IMAGES)
    print(f"\n## Paired against {base}, per held-out generator ({len(units)}, n>={MIN_IMAGES})\n")
    print(
        "| method | metric | better on (stored / laundered) | mean difference | "
        "without the largest gain |"
    )
    print("|---|---|---|---|---|")
    for name in others:
        for metric in ("auc", "recall"):
            cells = []
            for view in (0, 1):
                d = np.array(
                    [
                        getattr(scores[name], metric)[u][view]
                        - getattr(scores[base], metric)[u][view]
                        for u in units
                    ]
                )
                cells.append((int((d > 0).sum()), d.mean(), np.delete(d, d.argmax()).mean()))
            print(
                f"| {name} | {metric} | {cells[0][0]} / {cells[1][0]} of {len(units)} | "
                f"{cells[0][1]:+.3f} / {cells[1][1]:+.3f} | "
                f"{cells[0][2]:+.3f} / {cells[1][2]:+.3f} |"
            )


# -- 2. localization on composites --------------------------------------------------------------
def encode_composites(comps: list[Composite], bb: Backbones, key: str) -> dict[str, np.ndarray]:
    """Every patch of every composite for both backbones (float16 cache: ~300 MB)."""
    path = cache_dir() / "features" / f"bench-backbones-composites-{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    out: dict[str, list[np.ndarray]] = defaultdict(list)
    t = time.perf_counter()
    for start in range(0, len(comps), 16):
        # the pixels the detector would see: aligned exactly like any input
        imgs = [align_image(Image.fromarray(c.image)) for c in comps[start : start + 16]]
        enc = bb.encode(imgs)
        out["clip"].append(enc["clip-patch"].astype(np.float16))
        out["dino"].append(enc["dino-patch"].astype(np.float16))
        print(f"\rcomposites: {start + len(imgs)}/{len(comps)} encoded", end="", flush=True)
    print(f" ({time.perf_counter() - t:.0f} s)")
    arrays = {k: np.concatenate(v) for k, v in out.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def grid_labels(c: Composite, grid: int) -> np.ndarray:
    return np.asarray(patch_coverage(c.mask, grid) >= 0.5).ravel()


LocRow = dict[str, Any]  # one test composite under one map: gen, f1, iou, oracle, out


def localization(
    samples: list[TrainingImage],
    clean: dict[str, np.ndarray],
    bb: Backbones,
    data: Path,
    seed: int,
    c: float,
) -> None:
    reals = [s for s in samples if s.label == "real"]
    donors = [s for s in samples if s.label == "fake" and s.generator != "unknown"]
    pairs = plan_pairs(reals, donors, seed=seed, per_donor=2, controls_per_fold=40)
    key = hashlib.sha256(
        repr((seed, COMPOSITE_SIZE, [p.real.sha256 + p.donor.sha256 for p in pairs])).encode()
        + (bb.tag("clip") + bb.tag("dino")).encode()
    ).hexdigest()[:16]
    comps = [render(p, COMPOSITE_SIZE) for p in pairs]
    n_controls = sum(comp.generator == "camera" for comp in comps)
    # the per-fold fits take ~30 min on 2 busy cores: their per-composite scores are cached
    done = (
        cache_dir()
        / "features"
        / f"bench-backbones-localization-v{LOCALIZATION_VERSION}-{key}-c{c:g}.json"
    )
    if done.is_file():
        saved = json.loads(done.read_text())
    else:
        saved = localization_folds(samples, clean, bb, seed, c, reals, donors, comps, key)
        done.write_text(json.dumps(saved))
    rows: dict[str, list[LocRow]] = saved["rows"]
    alarms: dict[str, list[float]] = saved["alarms"]
    gens = sorted({str(r["gen"]) for r in rows["clip"]})
    print(
        f"\n## Localization of pasted generated regions ({len(comps)} composites incl. "
        f"{n_controls} real-into-real controls; {len(rows['clip'])} held-out test composites; "
        f"mean over the {len(gens)} held-out generators)\n"
    )
    print(
        "| map | F1@0.5 | IoU@0.5 | oracle F1 | flagged outside the pasted region | "
        "flagged on real-into-real controls |"
    )
    print("|---|---|---|---|---|---|")
    for name, rs in rows.items():
        alarm = f"{np.mean(alarms[name]):.1%}" if alarms.get(name) else ""
        print(
            f"| {name} | {gen_mean(rs, 'f1'):.3f} | {gen_mean(rs, 'iou'):.3f} | "
            f"{gen_mean(rs, 'oracle'):.3f} | {gen_mean(rs, 'out'):.1%} | {alarm} |"
        )
    print("\nPaired, F1@0.5 per held-out generator and over composites (bootstrap 95% CI):\n")
    for a, b in (
        ("clip+dino (mean map)", "clip"),
        ("dino", "clip"),
        (CONTROL, "clip"),
        ("clip+dino (mean map)", CONTROL),
    ):
        fa, fb = per_gen(rows[a], "f1"), per_gen(rows[b], "f1")
        wins = sum(fa[g] > fb[g] for g in gens)
        diff = np.array([ra["f1"] - rb["f1"] for ra, rb in zip(rows[a], rows[b], strict=True)])
        boot = np.random.default_rng(seed).choice(diff, (2000, len(diff))).mean(1)
        lo, hi = np.percentile(boot, [2.5, 97.5])
        print(
            f"* {a} vs {b}: better on {wins} of {len(gens)} generators; mean difference per "
            f"composite {diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]"
        )
    transfer(samples, clean, bb, comps, encode_composites(comps, bb, key), data, seed, c)


def per_gen(rows: list[LocRow], key: str) -> dict[str, float]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        out[str(r["gen"])].append(float(r[key]))
    return {g: float(np.mean(v)) for g, v in out.items()}


def gen_mean(rows: list[LocRow], key: str) -> float:
    """Mean over generators of the mean over their test composites (each generator counts once)."""
    return float(np.mean(list(per_gen(rows, key).values())))


def localization_folds(
    samples: list[TrainingImage],
    clean: dict[str, np.ndarray],
    bb: Backbones,
    seed: int,
    c: float,
    reals: list[TrainingImage],
    donors: list[TrainingImage],
    comps: list[Composite],
    key: str,
) -> dict[str, Any]:
    """One fold per generator g: patch heads fitted without g and without the real photos of
    g's fold (as bench_patch_map.py's composite head), scored on g's composites."""
    enc = encode_composites(comps, bb, key)
    rfold, gfold = real_folds(reals, 5, seed), generator_folds(donors)
    index = {s.sha256: i for i, s in enumerate(samples)}
    control = np.array([comp.generator == "camera" for comp in comps])
    rows: dict[str, list[LocRow]] = defaultdict(list)
    alarms: dict[str, list[float]] = defaultdict(list)
    t = time.perf_counter()
    for g in sorted(gfold):
        f = gfold[g]
        train = [
            i
            for i, comp in enumerate(comps)
            if comp.generator != g
            and rfold[comp.real] != f
            and not (control[i] and rfold[comp.donor] == f)
        ]
        whole = [
            index[s.sha256]
            for s in reals + donors
            if (rfold[s.sha256] != f if s.label == "real" else s.generator != g)
        ]
        test = [i for i, comp in enumerate(comps) if comp.generator == g and rfold[comp.real] == f]
        ctest = [i for i, comp in enumerate(comps) if control[i] and rfold[comp.real] == f]
        maps: dict[str, np.ndarray] = {}
        for name, grid in GRIDS.items():
            head = fit_patch_head(name, comps, enc[name], train, clean, samples, whole, seed, c)
            sel = test + ctest
            p = head.predict_proba(enc[name][sel].reshape(-1, enc[name].shape[-1]).astype(float))
            maps[name] = resize_map_batch(p.reshape(len(sel), grid, grid))
        maps["clip+dino (mean map)"] = (maps["clip"] + maps["dino"]) / 2
        # control: two CLIP heads (other patch draw and calibration folds), to tell a gain of
        # DINOv2's features from a gain of averaging any two maps
        sel = test + ctest
        twin = fit_patch_head("clip", comps, enc["clip"], train, clean, samples, whole, seed + 1, c)
        p = twin.predict_proba(enc["clip"][sel].reshape(-1, enc["clip"].shape[-1]).astype(float))
        maps[CONTROL] = (maps["clip"] + resize_map_batch(p.reshape(len(sel), 14, 14))) / 2
        truths = [mask_to_crop(comps[i].mask) >= 0.5 for i in test]
        for name, m in maps.items():
            for k, truth in enumerate(truths):
                s = scores_at(m[k], truth)
                rows[name].append(
                    {
                        "gen": g,
                        "f1": s.f1,
                        "iou": s.iou,
                        "oracle": best_threshold_f1(m[k], truth),
                        "out": float(np.mean(m[k][~truth] >= 0.5)),
                    }
                )
            alarms[name] += [float(np.mean(m[len(test) + k] >= 0.5)) for k in range(len(ctest))]
        for truth in truths:
            f1 = all_forged_f1(truth)
            rows["flag every pixel"].append(
                {"gen": g, "f1": f1, "iou": float(truth.mean()), "oracle": f1, "out": 1.0}
            )
        print(
            f"\rlocalization: fold {g} done ({time.perf_counter() - t:.0f} s)", end="", flush=True
        )
    print()
    return {"rows": rows, "alarms": alarms}


def transfer(
    samples: list[TrainingImage],
    whole_rows: dict[str, np.ndarray],
    bb: Backbones,
    comps: list[Composite],
    enc: dict[str, np.ndarray],
    data: Path,
    seed: int,
    c: float,
) -> None:
    """Heads fitted on every composite whose photos are not camera photos or inpainting
    originals, scored on the real AI inpaintings with masks and on the untouched camera photos."""
    from forenscope.eval.datasets import load_manifest, load_mask

    held = {s.sha256 for s in samples if s.source in HELD_SOURCES}
    train = [i for i, comp in enumerate(comps) if comp.real not in held and comp.donor not in held]
    whole = [i for i, s in enumerate(samples) if s.sha256 not in held]
    fills = [
        r
        for r in load_manifest(data / "manifest.csv")
        if r.generator in INPAINTERS and r.mask_file is not None
    ]
    cams = [s for s in samples if s.source in CAMERA_SOURCES]
    images = [load_aligned(r.file) for r in fills] + [load_aligned(s.path) for s in cams]
    truths = [mask_to_crop(load_mask(r.mask_file).astype(np.float32)) >= 0.5 for r in fills]  # type: ignore[arg-type]
    tokens = {"clip": [], "dino": []}  # type: dict[str, list[np.ndarray]]
    for start in range(0, len(images), 16):
        out = bb.encode(images[start : start + 16])
        tokens["clip"].append(out["clip-patch"])
        tokens["dino"].append(out["dino-patch"])
    maps: dict[str, np.ndarray] = {}
    for name, grid in GRIDS.items():
        head = fit_patch_head(name, comps, enc[name], train, whole_rows, samples, whole, seed, c)
        x = np.concatenate(tokens[name])
        p = head.predict_proba(x.reshape(-1, x.shape[-1]).astype(np.float64))
        maps[name] = resize_map_batch(p.reshape(len(images), grid, grid))
    maps["clip+dino (mean map)"] = (maps["clip"] + maps["dino"]) / 2
    twin = fit_patch_head(
        "clip", comps, enc["clip"], train, whole_rows, samples, whole, seed + 1, c
    )
    x = np.concatenate(tokens["clip"])
    p = twin.predict_proba(x.reshape(-1, x.shape[-1]).astype(np.float64))
    maps[CONTROL] = (maps["clip"] + resize_map_batch(p.reshape(len(images), 14, 14))) / 2
    n = len(fills)
    print(
        f"\n## The same patch heads fitted on {len(train)} composites (no camera photo or "
        f"inpainting original in them), on {n} real AI inpaintings with masks "
        f"({', '.join(INPAINTERS)}) and {len(cams)} untouched camera photos\n"
    )
    print(
        "| map | inpaintings: F1@0.5 | oracle F1 | flagged inside the mask | outside | "
        "camera photos: median flagged area | photos over 1% |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, m in maps.items():
        f1 = [scores_at(m[k], t).f1 for k, t in enumerate(truths)]
        oracle = [best_threshold_f1(m[k], t) for k, t in enumerate(truths)]
        inside = [float(np.mean(m[k][t] >= 0.5)) for k, t in enumerate(truths)]
        outside = [float(np.mean(m[k][~t] >= 0.5)) for k, t in enumerate(truths)]
        area = np.array([float(np.mean(m[n + k] >= 0.5)) for k in range(len(cams))])
        print(
            f"| {name} | {np.mean(f1):.3f} | {np.mean(oracle):.3f} | {np.mean(inside):.1%} | "
            f"{np.mean(outside):.1%} | {np.median(area):.1%} | {np.mean(area > 0.01):.0%} |"
        )
    f1 = [all_forged_f1(t) for t in truths]
    print(
        f"| flag every pixel | {np.mean(f1):.3f} | {np.mean(f1):.3f} | 100% | 100% | 100% | 100% |"
    )


def fit_patch_head(
    name: str,
    comps: list[Composite],
    patches: np.ndarray,
    train: list[int],
    whole_rows: dict[str, np.ndarray],
    samples: list[TrainingImage],
    whole: list[int],
    seed: int,
    c: float,
) -> LinearHead:
    """bench_patch_map.py's composite head on one backbone: 49 random patches of each training
    composite labelled by the mask, plus every 6th patch of the whole untouched (0) and
    generated (1) images; Platt-calibrated on grouped out-of-fold logits."""
    grid, dim = GRIDS[name], patches.shape[-1]
    rng = np.random.default_rng(seed)
    per_image = 49
    xs, ys, gs = [], [], []
    for i in train:
        lab = grid_labels(comps[i], grid)
        pick = rng.choice(len(lab), size=per_image, replace=False)
        xs.append(patches[i][pick].astype(np.float64))
        ys.append(lab[pick].astype(int))
        gs += ["file:" + comps[i].real] * per_image
    wp = whole_rows[f"{name}-patch"][whole].reshape(len(whole), -1, dim).astype(np.float64)
    per = wp.shape[1]
    xs.append(wp.reshape(-1, dim))
    ys.append(np.repeat([int(samples[i].label == "fake") for i in whole], per))
    gs += [samples[i].group for i in whole for _ in range(per)]
    head, _ = train_and_calibrate(
        np.concatenate(xs),
        np.concatenate(ys),
        gs,
        name=f"{name}-composite",
        feature=name,
        classes=("real", "generated"),
        seed=seed,
        calibration="platt",
        c=c,
    )
    return head


def resize_map_batch(grids: np.ndarray) -> np.ndarray:
    """(N, g, g) probability grids -> (N, 224, 224), bilinear as the detector upsamples."""
    return np.stack([resize_map(g, 224, 224) for g in grids])


# -- 3. speed -------------------------------------------------------------------------------------
def speed(samples: list[TrainingImage], bb: Backbones, n: int = 16, rounds: int = 3) -> None:
    imgs = [load_aligned(s.path) for s in samples[:: max(1, len(samples) // n)][:n]]
    clip_x = to_tensor([Image.fromarray(i) for i in imgs])
    dino_x = dino_tensor(imgs)
    bb.clip.encode(clip_x[:1])  # warm-up: session creation, first-run allocations
    bb.dino.tokens(dino_x[:1])
    runs: dict[str, Callable[[int], object]] = {
        "clip": lambda b: [bb.clip.encode(clip_x[i : i + b]) for i in range(0, n, b)],
        "dino": lambda b: [bb.dino.tokens(dino_x[i : i + b]) for i in range(0, n, b)],
    }
    best: dict[tuple[str, int], float] = defaultdict(lambda: float("inf"))
    cpu: dict[tuple[str, int], float] = defaultdict(lambda: float("inf"))
    for _ in range(rounds):  # interleaved, best of each: robust to a busy machine
        for batch in (1, 16):
            bb.clip.batch_size = bb.dino.batch_size = batch
            for name, run in runs.items():
                t, c = time.perf_counter(), time.process_time()
                run(batch)
                best[name, batch] = min(best[name, batch], (time.perf_counter() - t) / n * 1e3)
                cpu[name, batch] = min(cpu[name, batch], (time.process_time() - c) / n * 1e3)
    load = os.getloadavg()[0]
    print(
        f"\n## Speed (bare encoders on ready tensors, 1 thread, {n} images, best of {rounds} "
        f"interleaved rounds; load average {load:.1f} on {os.cpu_count()} CPUs)\n"
    )
    print("| encoder | file | ms/image batch 1 (wall) | batch 16 (wall) | batch 16 (CPU) |")
    print("|---|---|---|---|---|")
    sizes = {"clip": bb.clip_path.stat().st_size, "dino": bb.dino_path.stat().st_size}
    for name in runs:
        print(
            f"| {name} | {sizes[name] / 1e6:.1f} MB | {best[name, 1]:.0f} | "
            f"{best[name, 16]:.0f} | {cpu[name, 16]:.0f} |"
        )
    both = [sum(d[k, b] for k in runs) for d, b in ((best, 1), (best, 16), (cpu, 16))]
    print(
        f"| clip+dino (two passes) | {sum(sizes.values()) / 1e6:.1f} MB | {both[0]:.0f} | "
        f"{both[1]:.0f} | {both[2]:.0f} |"
    )
    print(
        "\nResident memory added by one encoder (fresh process each: peak RSS after opening the "
        "session and encoding 16 images at batch 16, minus the peak after the imports):\n"
    )
    print("| encoder | added peak RSS |")
    print("|---|---|")
    for name in runs:
        print(f"| {name} | {memory(name):.0f} MB |")


MEMORY_PROBE = """
import sys
import numpy as np
from forenscope.learned.dino_encoder import DinoEncoder
from forenscope.learned.encoder import ClipEncoder
from forenscope.models.sources import encoder_path


def peak_kib():  # VmHWM starts afresh at exec; ru_maxrss would carry the parent's peak over
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


before = peak_kib()
x = np.random.default_rng(0).normal(0, 1, (16, 3, 224, 224)).astype(np.float32)
if sys.argv[1] == "clip":
    ClipEncoder(encoder_path(), threads=1, batch_size=16).encode(x)
else:
    DinoEncoder(threads=1, batch_size=16).tokens(x)
print(peak_kib() - before)
"""


def memory(name: str) -> float:
    """MB of peak RSS one encoder adds in a fresh process (Linux /proc VmHWM, in KiB)."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, name], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--c", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-verdict", action="store_true")
    ap.add_argument("--skip-localization", action="store_true")
    ap.add_argument("--speed-only", action="store_true")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # BLAS on one thread too: 2 cores are shared
    samples = select(read_manifest(args.data / "manifest.csv"), "generated")  # no CIFAKE
    bb = Backbones()
    if args.speed_only:
        speed(samples, bb)
        return
    if not args.skip_verdict:
        verdict(samples, bb, args.c)
    if not args.skip_localization:
        whole = cached_rows(samples, ["clip-patch", "dino-patch"], bb, bb.encode)
        localization(samples, whole, bb, args.data, args.seed, args.c)
    if not args.skip_speed:
        speed(samples, bb)


if __name__ == "__main__":
    main()
