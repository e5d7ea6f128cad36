"""Out-of-sample real-vs-fake AUC on the face subset, with and without per-face evidence (issue 7).

    python benchmarks/bench_faces_auc.py [--data ../shared/data] [--out /tmp/x] [--cv]

The shipped CLIP heads were trained on all of ../shared/data, StarGAN included, so scoring the
StarGAN faces with them is in-sample. Here the real-vs-generated head is retrained with the
project's own training code (`forenscope.train.cli.train_detector`, defaults: seed 0, Platt,
C=0.05, no CIFAKE) on every manifest row EXCEPT the 40 StarGAN faces (CNNDetection
`*_stargan_{real,fake}.png`, 20 + 20, CelebA-style 240x240). The filtered manifest and the head
are written under --out (default: a fresh /tmp folder), never into the repository.

Format alignment: every face image is decoded, kept at 240x240 and re-encoded as JPEG q90 4:2:0
without metadata (`forenscope.eval.align.prepare`), the same for both classes.

Methods: (a) whole-image CLIP head, (b) the same head on the eye-levelled face crop of
`face_clip` (`aligned_crop`), (c) mean of (a) and (b), (d) each non-learned face expert,
(e) the default fused analysis (`analyze_image`) with and without the face_* experts, scored as
P(ai_generated) + P(tampered); its CLIP experts use the held-out head (FORENSCOPE_CLIP_HEADS).
AUC is over the judged images only (abstentions are listed), with a seeded stratified bootstrap
95% CI (1000 resamples). `--cv` adds (a)-(c) under 5-fold CV over the StarGAN faces: each fold's
head is trained on all non-StarGAN rows plus the other 4/5 of the StarGAN faces.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from forenscope.io.input import ImageInput

Images = dict[str, "ImageInput"]

ROOT = Path(__file__).resolve().parents[1]
DETECTOR = "clip-generated"
FACE_EXPERTS = ("face_seam", "face_consistency", "face_eye_highlights")
SEED = 0
RESAMPLES = 1000


@dataclass
class Scores:
    """Per image: score or None (abstained), with the abstain reasons counted."""

    values: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, score: float | None, reason: str | None = None) -> None:
        self.values[key] = score
        if score is None:
            # numbers vary per image ("eyes too small (21 px < 30)"): group by the wording
            why = re.sub(r"\d+(\.\d+)?", "#", reason or "abstained")[:80]
            self.reasons[why] = self.reasons.get(why, 0) + 1


def read_rows(data: Path) -> list[dict[str, str]]:
    with open(data / "manifest.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def is_face(row: dict[str, str]) -> bool:
    return "_stargan_" in Path(row["path"]).name


def write_manifest(rows: Sequence[dict[str, str]], data: Path, path: Path) -> Path:
    """A manifest with absolute paths, so it can live outside the data folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({**r, "path": str((data / r["path"]).resolve())})
    return path


def train_head(rows: Sequence[dict[str, str]], data: Path, out: Path) -> dict[str, object]:
    """Fit the clip-generated head on `rows` with the project's trainer; save it in `out`."""
    from forenscope.train.cli import train_detector

    manifest = write_manifest(rows, data, out / "manifest.csv")
    head, metrics, samples = train_detector(
        manifest, DETECTOR, seed=SEED, calibration="platt", c=0.05
    )
    head.save(out / f"{DETECTOR}.json")
    return {**metrics, "n_samples": len(samples)}


def aligned_faces(data: Path, faces: Sequence[dict[str, str]], size: int) -> Images:
    """path -> ImageInput of the format-aligned bytes (240 px JPEG q90, both classes)."""
    from forenscope.eval.align import Preprocess, prepare
    from forenscope.io import load_image

    pre = Preprocess(align="jpeg90", size=size)
    out: Images = {}
    for r in faces:
        raw, _ = prepare((data / r["path"]).read_bytes(), pre, key=r["path"])
        out[r["path"]] = load_image(raw)
    return out


def clip_scores(images: Images, heads: Path | None) -> tuple[Scores, Scores, Scores]:
    """(a) whole image, (b) aligned face crop, (c) their mean (crop abstains -> None).
    `heads` None = the shipped heads."""
    from forenscope.experts.face_clip import MIN_FACE_PX, aligned_crop
    from forenscope.faces.detect import detect_faces
    from forenscope.learned.detector import ClipDetectorModel
    from forenscope.models.sources import encoder_path

    model = ClipDetectorModel.load(encoder_path(), heads_dir=heads)
    whole, crop, mean = Scores(), Scores(), Scores()
    for key, image in images.items():
        rgb = image.rgb
        a = model.predict([rgb], patches=False)[0].p_generated
        whole.add(key, a)
        faces = [f for f in detect_faces(rgb) if min(f.width, f.height) >= MIN_FACE_PX]
        if not faces:
            crop.add(key, None, "no face of >= 48 px found")
            mean.add(key, None, "no face crop")
            continue
        # the most suspicious face speaks for the image, as in face_clip
        b = max(p.p_generated for p in model.predict([aligned_crop(rgb, f) for f in faces], False))
        crop.add(key, b)
        mean.add(key, (a + b) / 2)
    return whole, crop, mean


def expert_scores(images: Images, name: str) -> Scores:
    from forenscope.experts import get_expert

    expert, out = get_expert(name), Scores()
    for key, image in images.items():
        r = expert.analyze(image)
        out.add(key, r.score, r.abstain_reason or (r.error.message if r.error else None))
    return out


def fused_scores(
    images: Images, experts: list[str], probes: Sequence[str] = ()
) -> tuple[Scores, dict[str, Scores]]:
    """P(ai_generated) + P(tampered) of the fused verdict, and the scores of `probes` experts
    inside that run (to check they used the held-out head)."""
    from forenscope.pipeline import analyze_image

    out, seen = Scores(), {n: Scores() for n in probes}
    for key, image in images.items():
        report = analyze_image(image, experts=experts, threads=1)
        p = report.verdict.probabilities
        out.add(key, p["ai_generated"] + p["tampered"])
        for r in report.experts:
            if r.expert in seen:
                seen[r.expert].add(key, r.score, r.abstain_reason)
    return out, seen


def max_gap(a: Scores, b: Scores) -> float:
    """Largest difference between two scorings of the same images (both judged)."""
    gaps = [
        abs(v - w)
        for k, v in a.values.items()
        if v is not None and (w := b.values.get(k)) is not None
    ]
    return max(gaps, default=float("nan"))


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mann-Whitney AUC, fake = positive, ties count half."""
    p, n = pos[:, None], neg[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / max(p.size * n.size, 1))


def bootstrap_ci(pos: np.ndarray, neg: np.ndarray, seed: int = SEED) -> tuple[float, float]:
    """Stratified bootstrap (each class resampled within itself), 2.5 and 97.5 percentiles."""
    rng = np.random.default_rng(seed)
    stats = [auc(rng.choice(pos, pos.size), rng.choice(neg, neg.size)) for _ in range(RESAMPLES)]
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return float(lo), float(hi)


def paired_difference(
    a: Scores, b: Scores, labels: dict[str, str], seed: int = SEED
) -> tuple[float, float, float, int]:
    """AUC(a) - AUC(b) on the images both judged, with a paired stratified bootstrap CI
    (the same resampled images score both methods)."""
    keys = [k for k in a.values if a.values[k] is not None and b.values.get(k) is not None]
    fake = [k for k in keys if labels[k] == "fake"]
    real = [k for k in keys if labels[k] == "real"]

    def diff(f: list[str], r: list[str]) -> float:
        return sum(
            sign * auc(np.array([s.values[k] for k in f]), np.array([s.values[k] for k in r]))
            for sign, s in ((1, a), (-1, b))
        )

    rng = np.random.default_rng(seed)
    stats = [
        diff(list(rng.choice(fake, len(fake))), list(rng.choice(real, len(real))))
        for _ in range(RESAMPLES)
    ]
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return diff(fake, real), float(lo), float(hi), len(keys)


def print_differences(pairs: list[tuple[str, Scores, Scores]], labels: dict[str, str]) -> None:
    print("\n| comparison | n both judged | AUC difference | paired bootstrap 95% CI |")
    print("|---|---|---|---|")
    for name, a, b in pairs:
        d, lo, hi, n = paired_difference(a, b, labels)
        print(f"| {name} | {n} | {d:+.3f} | [{lo:+.3f}, {hi:+.3f}] |")


def table_row(name: str, s: Scores, labels: dict[str, str]) -> str:
    judged = {k: v for k, v in s.values.items() if v is not None}
    pos = np.array([v for k, v in judged.items() if labels[k] == "fake"], dtype=np.float64)
    neg = np.array([v for k, v in judged.items() if labels[k] == "real"], dtype=np.float64)
    n_fake = sum(labels[k] == "fake" for k in s.values)
    judged_txt = f"{len(judged)}/{len(s.values)} ({pos.size}/{n_fake} fake)"
    if pos.size == 0 or neg.size == 0:
        return f"| {name} | {judged_txt} | n/a | n/a | {_reasons(s)} |"
    lo, hi = bootstrap_ci(pos, neg)
    return f"| {name} | {judged_txt} | {auc(pos, neg):.3f} | [{lo:.3f}, {hi:.3f}] | {_reasons(s)} |"


def _reasons(s: Scores) -> str:
    return "; ".join(f"{n}x {why}" for why, n in s.reasons.items()) or "-"


def print_table(title: str, rows: list[tuple[str, Scores]], labels: dict[str, str]) -> None:
    print(f"\n## {title}\n")
    print("| method | n judged | AUC (fake = positive) | bootstrap 95% CI | abstentions |")
    print("|---|---|---|---|---|")
    for name, s in rows:
        print(table_row(name, s, labels))


def cross_validated(
    rows: list[dict[str, str]], data: Path, images: Images, out: Path
) -> list[tuple[str, Scores]]:
    """(a)-(c) with 5 folds over the faces (grouped per file, stratified by label)."""
    from forenscope.train.fit import group_folds

    faces = [r for r in rows if is_face(r)]
    others = [r for r in rows if not is_face(r)]
    y = np.array([r["label"] == "fake" for r in faces], dtype=int)
    merged = (Scores(), Scores(), Scores())
    for k, held in enumerate(group_folds(y, [r["sha256"] for r in faces], SEED)):
        test = [faces[i]["path"] for i in sorted(held)]  # a list: set order varies per run
        train = others + [r for r in faces if r["path"] not in test]
        fold = out / f"cv-fold{k}"
        train_head(train, data, fold)
        scored = clip_scores({p: images[p] for p in test}, fold)
        for acc, part in zip(merged, scored, strict=True):
            acc.values.update(part.values)
            for why, n in part.reasons.items():
                acc.reasons[why] = acc.reasons.get(why, 0) + n
    return [(f"{n}, 5-fold CV", s) for n, s in zip(CLIP_NAMES, merged, strict=True)]


CLIP_NAMES = ("(a) CLIP whole image", "(b) CLIP face crop", "(c) mean of (a) and (b)")


def leave_out_results(images: Images, heads: Path) -> list[tuple[str, Scores]]:
    """(a)-(e) with the held-out head (FORENSCOPE_CLIP_HEADS must already point at it)."""
    from forenscope.pipeline import default_experts

    results = list(zip(CLIP_NAMES, clip_scores(images, heads), strict=True))
    results += [(f"(d) {n}", expert_scores(images, n)) for n in FACE_EXPERTS]
    everything = default_experts()
    without = [n for n in everything if not n.startswith("face_")]
    fused, seen = fused_scores(images, everything, ("clip_detector", "face_clip"))
    results.append(("(e) fused, default experts with face_*", fused))
    results.append(("(e) fused, default experts without face_*", fused_scores(images, without)[0]))
    # the pipeline's CLIP experts must reproduce (a) and (b): proof they used the held-out head
    gap_a = max_gap(results[0][1], seen["clip_detector"])
    gap_b = max_gap(results[1][1], seen["face_clip"])
    print(f"pipeline clip_detector vs (a): max |diff| {gap_a:.2g}; face_clip vs (b): {gap_b:.2g}")
    print(f"fused run used: {', '.join(everything)}")
    return results


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: new /tmp dir)")
    ap.add_argument("--size", type=int, default=240, help="aligned side (240 = native)")
    ap.add_argument("--cv", action="store_true", help="also 5-fold CV over the StarGAN faces")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="forenscope-faces-auc-"))
    rows = read_rows(args.data)
    faces = [r for r in rows if is_face(r)]
    labels = {r["path"]: r["label"] for r in faces}
    images = aligned_faces(args.data, faces, args.size)
    print(f"work folder: {out}")
    print(f"face subset: {len(faces)} images, {sum(v == 'fake' for v in labels.values())} fake; "
          f"aligned to {args.size}x{args.size} JPEG q90 4:2:0, no metadata")  # fmt: skip
    # the shipped heads saw these faces in training: kept only to show the leak's size
    shipped = clip_scores(images, None) if "FORENSCOPE_CLIP_HEADS" not in os.environ else ()
    heads = out / "leave-stargan-out"
    metrics = train_head([r for r in rows if not is_face(r)], args.data, heads)
    print(f"leave-stargan-out head ({DETECTOR}), its own held-out split: {metrics}")
    os.environ["FORENSCOPE_CLIP_HEADS"] = str(heads)  # every CLIP expert loads this head
    results = leave_out_results(images, heads)
    print_table("Leave-stargan-out (the head never saw a StarGAN image)", results, labels)
    by = dict(results)
    print_differences(
        [
            (
                "(c) minus (a): face crop added to the whole image",
                by[CLIP_NAMES[2]],
                by[CLIP_NAMES[0]],
            ),
            (
                "(e) with minus without face_*",
                by["(e) fused, default experts with face_*"],
                by["(e) fused, default experts without face_*"],
            ),
        ],
        labels,
    )
    if shipped:
        ref = [
            (f"{n}, SHIPPED head (in-sample)", sc)
            for n, sc in zip(CLIP_NAMES, shipped, strict=True)
        ]
        print_table("Reference only: shipped head, trained on these 40 faces", ref, labels)
    if args.cv:
        cv = cross_validated(rows, args.data, images, out)
        print_table("5-fold CV over the StarGAN faces (other data + 4/5 of StarGAN)", cv, labels)
        print_differences([("(c) minus (a), 5-fold CV", cv[2][1], cv[0][1])], labels)
    print()


if __name__ == "__main__":
    main()
