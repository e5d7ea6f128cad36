"""Is the CLIP patch map a localizer for partly generated images? (issue 3)

    python benchmarks/bench_patch_map.py [--data ../shared/data] [--fused-per-gen 5]

Composites (src/forenscope/train/composites.py): a rectangle or blob (10-40% of the area) of a
generated image (label fake, CIFAKE excluded) pasted into a real photo, both 256x256, half with
a feathered seam; made in memory. Held-out design, one fold per generator g (leave one
generator out AND a disjoint fifth of the real photos): the test composites paste g into real
photos of fold r(g); every head scored on them was fitted without generator g and without any
photo of fold r(g) (neither as an untouched real, nor as a composite's base, nor as a control).

Maps scored on the encoder's view (mask cropped/resized like the image, 224 px; the 14x14 map
upsampled bilinearly):
  shipped  the shipped clip-patch head (it saw EVERY generator and every real photo: optimistic)
  a-fold   the same recipe (image label on every patch) refitted per fold: the fair number
  b-fold   a patch head fitted per fold ON COMPOSITES with patch labels (mask share >= 0.5),
           plus real-into-real controls (all 0) and the untouched/generated images
  all      the trivial all-forged map
F1@0.5 / IoU@0.5 threshold the calibrated map at a FIXED 0.5; oracle F1 picks the best threshold
per image with the truth (an upper bound, not deployable). Controls (a real photo pasted into a
real photo) and untouched photos give the false-alarm side. The fused map of
`forenscope.pipeline.analyze_image` (its experts, then `fuse_heatmaps` in the default mode and in
each other mode) and every expert map are scored on a subset (--fused-per-gen per generator) at
the composite's full size. Encoder features and fitted folds are cached under --cache (tmp);
first run about 25 min on 2 busy cores (encoding 1222 images ~8 min, 14 folds ~14 min).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forenscope.eval.classification import auc as roc_auc
from forenscope.eval.metrics import all_forged_f1, best_threshold_f1, scores_at
from forenscope.fusion import resize_map
from forenscope.io import ImageInput
from forenscope.learned.detector import ClipDetectorModel
from forenscope.learned.heads import LinearHead, load_head
from forenscope.models.sources import encoder_path
from forenscope.train.composites import (
    Composite,
    composite_rows,
    encode_images,
    fit_to_size,
    generator_folds,
    mask_to_crop,
    plan_pairs,
    real_folds,
    render,
)
from forenscope.train.data import TrainingImage, read_manifest, select
from forenscope.train.features import clip_normalise, extract
from forenscope.train.fit import train_and_calibrate

SIZE = 256
MAPS = ("shipped", "a-fold", "b-fold", "all")
Row = dict[str, float | str]


@dataclass
class Data:
    reals: list[TrainingImage]
    donors: list[TrainingImage]
    comps: list[Composite]
    c_emb: np.ndarray  # (N, 512) unit embeddings of the composites
    c_patch: np.ndarray  # (N, 196, 512) unit patch embeddings
    r_emb: np.ndarray  # the untouched reals brought to SIZE the same way
    r_patch: np.ndarray
    w_patch: np.ndarray  # (M, 33, 512) cached clip-patch rows of reals + donors (training recipe)
    w_emb: np.ndarray  # (M, 512) cached clip rows


def load_data(
    data: Path, seed: int, per_donor: int, controls: int, model: ClipDetectorModel, cache: Path
) -> Data:
    samples = select(read_manifest(data / "manifest.csv"), "generated")
    reals = [s for s in samples if s.label == "real"]
    donors = [s for s in samples if s.label == "fake" and s.generator != "unknown"]
    pairs = plan_pairs(reals, donors, seed=seed, per_donor=per_donor, controls_per_fold=controls)
    key = hashlib.sha256(
        repr(
            (seed, per_donor, controls, SIZE, [p.real.sha256 + p.donor.sha256 for p in pairs])
        ).encode()
    ).hexdigest()[:16]
    path = cache / f"patch-map-{key}.npz"
    t = time.perf_counter()
    comps = [render(p, SIZE) for p in pairs]
    print(f"rendered {len(comps)} composites in {time.perf_counter() - t:.1f} s")
    if path.is_file():
        with np.load(path) as z:
            enc = {k: z[k] for k in z.files}
        print(f"encoder features from the cache {path}")
    else:
        t = time.perf_counter()
        c_emb, c_patch = encode_images([c.image for c in comps], model.encoder)
        r_imgs = []
        for s in reals:
            from PIL import Image

            with Image.open(s.path) as im:
                r_imgs.append(fit_to_size(im, (SIZE, SIZE)))
        r_emb, r_patch = encode_images(r_imgs, model.encoder)
        n, sec = len(comps) + len(reals), time.perf_counter() - t
        print(f"encoded {n} images in {sec:.1f} s ({n / sec:.1f} img/s)")
        enc = {
            "c_emb": c_emb,
            "c_patch": c_patch.astype(np.float16),
            "r_emb": r_emb,
            "r_patch": r_patch.astype(np.float16),
        }
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, **enc)
    whole = reals + donors
    flat = extract(whole, "clip-patch", encoder=model.encoder).astype(np.float64)
    w_patch = clip_normalise(flat.reshape(len(whole), -1, 512))  # per patch, as train/cli.py
    w_emb = clip_normalise(extract(whole, "clip", encoder=model.encoder).astype(np.float64))
    return Data(
        reals,
        donors,
        comps,
        enc["c_emb"].astype(np.float64),
        enc["c_patch"].astype(np.float32),
        enc["r_emb"].astype(np.float64),
        enc["r_patch"].astype(np.float32),
        w_patch,
        w_emb,
    )


def fit(x: np.ndarray, y: np.ndarray, groups: list[str], name: str) -> LinearHead:
    """The shipped recipe (train/fit.py): logistic C=0.05, Platt on out-of-fold logits."""
    head, _ = train_and_calibrate(
        x,
        y,
        groups,
        name=name,
        feature="clip-patch",
        classes=("real", "generated"),
        seed=0,
        calibration="platt",
        c=0.05,
    )
    return head


def grids(head: LinearHead, patches: np.ndarray) -> np.ndarray:
    n, p, dim = patches.shape
    side = int(round(np.sqrt(p)))
    return head.predict_proba(patches.reshape(n * p, dim).astype(np.float64)).reshape(n, side, side)


def flagged(grid: np.ndarray, region: np.ndarray | None = None) -> float:
    """Share of crop pixels (or of `region`'s pixels) where the upsampled map is >= 0.5."""
    hit = resize_map(grid, 224, 224) >= 0.5
    return float(hit[region].mean()) if region is not None else float(hit.mean())


@dataclass
class Fold:
    gen: str
    loc: list[Row]  # one row per (test composite, map)
    alarms: list[Row]  # false alarms on controls / untouched reals
    image: Row  # image-level AUCs
    maps: dict[int, dict[str, np.ndarray]]  # composite index -> map name -> grid


def run_fold(
    d: Data, g: str, f: int, rfold: dict[str, int], model: ClipDetectorModel, per_image: int
) -> Fold:
    whole = d.reals + d.donors
    keep = [
        i
        for i, s in enumerate(whole)
        if (rfold[s.sha256] != f if s.label == "real" else s.generator != g)
    ]
    y_w = np.array([int(whole[i].label == "fake") for i in keep])
    per = d.w_patch.shape[1]
    xa = d.w_patch[keep].reshape(-1, 512)
    ya, ga = np.repeat(y_w, per), [whole[i].group for i in keep for _ in range(per)]
    head_a = fit(xa, ya, ga, "a-fold")
    ctrl = [c.generator == "camera" for c in d.comps]
    train = [
        i
        for i, c in enumerate(d.comps)
        if c.generator != g and rfold[c.real] != f and not (ctrl[i] and rfold[c.donor] == f)
    ]
    xc, yc, gc = composite_rows([d.comps[i] for i in train], d.c_patch[train], per_image)
    head_b = fit(np.concatenate([xc, xa]), np.concatenate([yc, ya]), gc + ga, "b-fold")
    head_img = fit(d.w_emb[keep], y_w, [whole[i].group for i in keep], "image-fold")
    # the image-label head by name: the detector now prefers the composite-trained head, which
    # saw every composite of this benchmark's recipe and would be in-sample here
    heads = {"shipped": load_head("clip-patch"), "a-fold": head_a, "b-fold": head_b}

    test = [i for i, c in enumerate(d.comps) if c.generator == g and rfold[c.real] == f]
    ctest = [i for i, c in enumerate(d.comps) if ctrl[i] and rfold[c.real] == f]
    rtest = [i for i, s in enumerate(d.reals) if rfold[s.sha256] == f]
    maps: dict[int, dict[str, np.ndarray]] = defaultdict(dict)
    for name, head in heads.items():
        for i, grid in zip(test + ctest, grids(head, d.c_patch[test + ctest]), strict=True):
            maps[i][name] = grid
    loc = [score_composite(d.comps[i], maps[i], g) for i in test]
    alarms: list[Row] = [
        {
            "map": m,
            "kind": "control",
            "region": flagged(maps[i][m], mask_to_crop(d.comps[i].mask) >= 0.5),
            "image": flagged(maps[i][m]),
        }
        for i in ctest
        for m in heads
    ]
    r_top = np.array([])
    for name, head in heads.items():
        r_grids = grids(head, d.r_patch[rtest])
        alarms += [{"map": name, "kind": "untouched", "image": flagged(x)} for x in r_grids]
        if name == "b-fold":
            r_top = np.array([top_mean(x) for x in r_grids])
    c_top = np.array([top_mean(maps[i]["b-fold"]) for i in test])
    image = image_aucs(d, g, (test, ctest, rtest), model, head_img, (c_top, r_top))
    return Fold(g, [r for rows in loc for r in rows], alarms, image, {i: maps[i] for i in test})


def score_composite(c: Composite, maps: dict[str, np.ndarray], g: str) -> list[Row]:
    """F1/IoU@0.5, oracle F1, and the flagged share inside / outside the pasted region."""
    truth = mask_to_crop(c.mask) >= 0.5
    rows: list[Row] = []
    for name, grid in maps.items():
        s = scores_at(grid, truth, threshold=0.5)
        inside, outside = flagged(grid, truth), flagged(grid, ~truth)
        oracle = best_threshold_f1(grid, truth)
        rows.append(
            {
                "gen": g,
                "map": name,
                "f1": s.f1,
                "iou": s.iou,
                "oracle": oracle,
                "in": inside,
                "out": outside,
            }
        )
    f1 = all_forged_f1(truth)
    rows.append(
        {
            "gen": g,
            "map": "all",
            "f1": f1,
            "iou": float(truth.mean()),
            "oracle": f1,
            "in": 1.0,
            "out": 1.0,
        }
    )
    return rows


def top_mean(grid: np.ndarray) -> float:
    """Image score from a map: mean of its top 10% patches."""
    flat = np.sort(grid.ravel())
    return float(flat[-max(1, len(flat) // 10) :].mean())


def image_aucs(
    d: Data,
    g: str,
    idx: tuple[list[int], list[int], list[int]],
    model: ClipDetectorModel,
    head_img: LinearHead,
    b_scores: tuple[np.ndarray, np.ndarray],
) -> Row:
    """AUC of the composites (and controls) against the untouched photos of the held-out fold."""
    test, ctest, rtest = idx
    ship = model.generated.predict_proba
    fold = head_img.predict_proba
    neg = fold(d.r_emb[rtest])
    y = np.r_[np.ones(len(test)), np.zeros(len(rtest))]
    yc = np.r_[np.ones(len(ctest)), np.zeros(len(rtest))]
    fakes = [len(d.reals) + i for i, s in enumerate(d.donors) if s.generator == g]
    full = fold(d.w_emb[fakes + rtest])  # whole-image features as cached (training recipe)
    return {
        "gen": g,
        "shipped": roc_auc(y, np.r_[ship(d.c_emb[test]), ship(d.r_emb[rtest])]),
        "fold": roc_auc(y, np.r_[fold(d.c_emb[test]), neg]),
        "b_map_top10": roc_auc(y, np.r_[b_scores[0], b_scores[1]]),
        "fold_full_fakes": roc_auc(np.r_[np.ones(len(fakes)), np.zeros(len(rtest))], full),
        "fold_controls": roc_auc(yc, np.r_[fold(d.c_emb[ctest]), neg]),
        "p_comp": float(fold(d.c_emb[test]).mean()),
        "p_real": float(neg.mean()),
    }


def run_fused(d: Data, folds: list[Fold], per_gen: int) -> list[Row]:
    """analyze_image on the first `per_gen` test composites of each generator (lossless PNG)."""
    from PIL import Image

    from forenscope.io import load_image

    rows: list[Row] = []
    for fold in folds:
        for i in sorted(fold.maps)[:per_gen]:
            c = d.comps[i]
            buf = io.BytesIO()
            Image.fromarray(c.image).save(buf, format="PNG")
            t = time.perf_counter()
            maps = fused_maps(load_image(buf.getvalue()))
            sec = time.perf_counter() - t
            for name, hm in maps.items():
                hm = np.zeros(c.mask.shape, np.float32) if hm is None else hm
                s = scores_at(hm, c.mask)
                rows.append(
                    {
                        "gen": fold.gen,
                        "map": name,
                        "f1": s.f1,
                        "iou": s.iou,
                        "oracle": best_threshold_f1(hm, c.mask),
                        "sec": sec,
                    }
                )
            truth = mask_to_crop(c.mask) >= 0.5
            for name in ("shipped", "b-fold"):
                s = scores_at(fold.maps[i][name], truth)
                rows.append(
                    {
                        "gen": fold.gen,
                        "map": f"{name} (crop)",
                        "f1": s.f1,
                        "iou": s.iou,
                        "oracle": best_threshold_f1(fold.maps[i][name], truth),
                        "sec": 0.0,
                    }
                )
            rows.append(
                {
                    "gen": fold.gen,
                    "map": "all",
                    "f1": all_forged_f1(c.mask),
                    "iou": float(c.mask.mean()),
                    "oracle": all_forged_f1(c.mask),
                    "sec": 0.0,
                }
            )
    return rows


def fused_maps(image: ImageInput) -> dict[str, np.ndarray | None]:
    """The fused map as `analyze_image` makes it (default mode), plus each mode and each
    expert's map from the same expert run; a mode that fails is reported, not fatal."""
    from forenscope.fusion import fuse_heatmaps
    from forenscope.fusion.map_fitted import map_mode
    from forenscope.pipeline import run_experts

    results = run_experts(image, None, threads=1)
    judged = [r for r in results if r.judged]
    out: dict[str, np.ndarray | None] = {}
    for mode in dict.fromkeys([map_mode(), "fitted", "handset"]):
        name = f"fused ({mode}{', default' if mode == map_mode() else ''})"
        try:
            out[name] = fuse_heatmaps(judged, height=image.height, width=image.width, mode=mode)
        except ValueError as exc:  # another helper may be changing the fitted weights
            FAILED.setdefault(name, str(exc))
    out |= {f"expert:{r.expert}": r.heatmap for r in results if r.heatmap is not None}
    return out


FAILED: dict[str, str] = {}


def mean(rows: list[Row], key: str) -> float:
    return float(np.mean([float(r[key]) for r in rows])) if rows else float("nan")


def metric_table(rows: list[Row], key: str, title: str, maps: list[str]) -> None:
    """Generators x maps; 'mean' = mean over generators, 'pooled' = mean over composites."""
    by: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        by[(str(r["gen"]), str(r["map"]))].append(r)
    gens = sorted({str(r["gen"]) for r in rows})
    print(f"\n### {title}\n")
    print("| generator | n | " + " | ".join(maps) + " |")
    print("|---|---|" + "---|" * len(maps))
    for g in gens:
        vals = " | ".join(f"{mean(by[(g, m)], key):.3f}" for m in maps)
        print(f"| {g} | {len(by[(g, maps[0])])} | {vals} |")
    per_gen = " | ".join(f"**{np.mean([mean(by[(g, m)], key) for g in gens]):.3f}**" for m in maps)
    print(f"| **mean over generators** | {len(gens)} | {per_gen} |")
    pooled = " | ".join(f"{mean([r for r in rows if r['map'] == m], key):.3f}" for m in maps)
    n = len([r for r in rows if r["map"] == maps[0]])
    print(f"| pooled over composites | {n} | {pooled} |")


def alarm_table(folds: list[Fold]) -> None:
    rows = [a for f in folds for a in f.alarms]
    loc = {m: [r for f in folds for r in f.loc if r["map"] == m] for m in MAPS[:3]}
    print("\n### False alarms at 0.5 (share of pixels of the 224 px crop flagged)\n")
    print("| map | untouched photos | real-into-real controls: pasted region | controls: image |")
    print("|---|---|---|---|")
    for m in MAPS[:3]:
        un = [r for r in rows if r["map"] == m and r["kind"] == "untouched"]
        ct = [r for r in rows if r["map"] == m and r["kind"] == "control"]
        un_s = f"{mean(un, 'image'):.3f} (n={len(un)})"
        ct_s = f"{mean(ct, 'region'):.3f} (n={len(ct)})"
        print(f"| {m} | {un_s} | {ct_s} | {mean(ct, 'image'):.3f} |")
    print("\n| map | generated composites: pasted region flagged | composites: rest flagged |")
    print("|---|---|---|")
    for m in MAPS[:3]:
        print(f"| {m} | {mean(loc[m], 'in'):.3f} | {mean(loc[m], 'out'):.3f} |")


def image_table(folds: list[Fold]) -> None:
    keys = [
        "shipped",
        "fold",
        "b_map_top10",
        "fold_full_fakes",
        "fold_controls",
        "p_comp",
        "p_real",
    ]
    print("\n### Image level: AUC of composites vs the untouched photos of the held-out fold\n")
    print(
        "shipped = shipped clip-generated head (saw everything); fold = same recipe refitted per "
        "fold; b_map_top10 = mean of the top 10% patches of the b-fold map; fold_full_fakes = "
        "whole generated images of g (reference); fold_controls = real-into-real controls; "
        "p_* = mean fold P(generated)\n"
    )
    print("| generator | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for f in folds:
        print(f"| {f.gen} | " + " | ".join(f"{float(f.image[k]):.3f}" for k in keys) + " |")
    means = " | ".join(f"**{np.nanmean([float(f.image[k]) for f in folds]):.3f}**" for k in keys)
    print(f"| **mean** | {means} |")


def cached_folds(args: argparse.Namespace, compute: Callable[[], list[Fold]]) -> list[Fold]:
    """The fitted folds are pickled next to the features (tmp), so a rerun skips the fits."""
    key = repr((args.data, args.seed, args.per_donor, args.controls, args.per_image, SIZE))
    path = args.cache / f"folds-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pkl"
    if path.is_file():
        print(f"folds from the cache {path}")
        with open(path, "rb") as fh:
            folds: list[Fold] = pickle.load(fh)
        return folds
    folds = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(folds, fh)
    return folds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    ap.add_argument("--data", type=Path, default=default)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-donor", type=int, default=2, help="composites per generated image")
    ap.add_argument("--controls", type=int, default=40, help="real-into-real per real fold")
    ap.add_argument("--per-image", type=int, default=49, help="patches per composite to fit on")
    ap.add_argument("--fused-per-gen", type=int, default=5, help="0 = skip analyze_image")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/forenscope-bench-patch-map"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    model = ClipDetectorModel.load(encoder_path(), threads=args.threads)
    d = load_data(args.data, args.seed, args.per_donor, args.controls, model, args.cache)
    rfold = real_folds(d.reals, 5, args.seed)
    gfold = generator_folds(d.donors, 5)
    t = time.perf_counter()
    gens = sorted(gfold)
    folds = cached_folds(
        args, lambda: [run_fold(d, g, gfold[g], rfold, model, args.per_image) for g in gens]
    )
    print(f"fitted and scored {len(folds)} folds in {time.perf_counter() - t:.1f} s")
    loc = [r for f in folds for r in f.loc]
    n_ctrl = sum(c.generator == "camera" for c in d.comps)
    print(
        f"\n## Held-out composites: {len(loc) // len(MAPS)} test composites of "
        f"{len(d.comps) - n_ctrl} "
        f"(+{n_ctrl} real-into-real controls), {len(folds)} folds (leave one generator out x "
        f"held-out fifth of the real photos), seed {args.seed}"
    )
    for key, title in (
        ("f1", "Pixel F1@0.5"),
        ("iou", "IoU@0.5"),
        ("oracle", "Oracle (best-threshold) F1"),
    ):
        metric_table(loc, key, title, list(MAPS))
    alarm_table(folds)
    image_table(folds)
    if args.fused_per_gen:
        t = time.perf_counter()
        fused = run_fused(d, folds, args.fused_per_gen)
        names = sorted({str(r["map"]) for r in fused}, key=lambda m: (not m.startswith("fused"), m))
        n = len([r for r in fused if r["map"] == "all"])
        print(
            f"\n## analyze_image on a subset: n = {n} test composites ({args.fused_per_gen} per "
            f"generator), {time.perf_counter() - t:.0f} s, PNG input, maps at full 256 px "
            "(CLIP maps on their 224 crop = the same square)"
        )
        for key, title in (("f1", "F1@0.5"), ("iou", "IoU@0.5"), ("oracle", "Oracle F1")):
            by = [r for r in fused]
            print(f"\n### {title} (subset)\n")
            print("| map | " + title + " |\n|---|---|")
            for m in names:
                print(f"| {m} | {mean([r for r in by if r['map'] == m], key):.3f} |")
    for name, err in FAILED.items():
        print(f"{name} failed: {err}")
    print(f"\ntotal runtime {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
