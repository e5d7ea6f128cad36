"""False alarms and recall of the five signal experts on the shared images, per group.

    python benchmarks/bench_signal_false_alarms.py [--data ../shared/data] [--experts ela,...]
        [--max-side N] [--limit-per-source N] [--seed 0] [--scores-jsonl /tmp/scores.jsonl]

Images are scored as stored (native resolution, original container), one process, one image at
a time. CIFAKE (32 px) and the AI-generated images are left out: the question is whether real
photos get a tamper vote and whether real tampered images still do. Groups:

- camera reals: untouched camera-like photos of the second batch and the wallpapers
  (metadata-extractor-images, exif-samples, plasma wallpapers, lomiri wallpapers);
- other reals: every other real row (BSDS500, Kodak24, CNNDetection, NoSo, Inpaint-Anything and
  MagicInpainter originals);
- tampered splice / copy-move / other (manual edit, object removal, inpainting).

Per expert and group: n, abstentions, the share with score > 0.5, the mean score, and for the
tampered groups the AUC of the score against the camera reals and against all reals. An
abstaining expert casts no vote, so it counts as score 0 in the share and the AUC.
`--max-side` downsizes larger images before scoring (faster, but it resamples the whole image and
blurs JPEG traces, so the numbers are then not those of the images as stored). Nothing is cached;
`--scores-jsonl` writes the per-image scores to a file of your choice (outside the repository).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from forenscope.eval.classification import auc
from forenscope.eval.datasets import Sample, load_manifest
from forenscope.experts import get_expert
from forenscope.io import load_image
from forenscope.io.input import ImageInput

EXPERTS = ("ela", "noise", "spectrum", "jpeg_artifacts", "copy_move")
CAMERA_SOURCES = ("metadata-extractor-images", "exif-samples", "plasma-")
GROUPS = ("camera reals", "other reals", "tampered splice", "tampered copy-move", "tampered other")
ROOT = Path(__file__).resolve().parents[1]


def group_of(s: Sample) -> str | None:
    if s.source == "cifake" or s.label == "fake":
        return None
    if s.label == "real":
        camera = s.source.startswith(CAMERA_SOURCES) or "lomiri-" in s.source
        return "camera reals" if camera else "other reals"
    if s.generator in ("splice", "copy-move"):
        return f"tampered {s.generator}"
    return "tampered other"


def pick(samples: list[Sample], limit: int | None, seed: int) -> list[tuple[str, Sample]]:
    """(group, sample) pairs; at most `limit` per source, drawn with a fixed seed."""
    by_source: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_source[s.source].append(s)
    rng = random.Random(seed)
    out: list[tuple[str, Sample]] = []
    for source in sorted(by_source):
        rows = by_source[source]
        if limit is not None and len(rows) > limit:
            rows = sorted(rng.sample(rows, limit), key=lambda r: r.path)
        out += [(g, s) for s in rows if (g := group_of(s)) is not None]
    return out


def capped(image: ImageInput, max_side: int | None) -> ImageInput:
    h, w = image.rgb.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return image
    k = max_side / max(h, w)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    rgb = np.asarray(Image.fromarray(image.rgb).resize(size, Image.Resampling.LANCZOS))
    return replace(image, rgb=rgb)  # a new object: its cached luma is recomputed


def score_all(
    rows: list[tuple[str, Sample]], experts: list[str], max_side: int | None, jsonl: Path | None
) -> dict[str, dict[str, list[float | None]]]:
    """scores[expert][group] = one score (None = abstained) per image."""
    scores: dict[str, dict[str, list[float | None]]] = {e: defaultdict(list) for e in experts}
    out = jsonl.open("w", encoding="utf-8") if jsonl else None
    try:
        for group, s in tqdm(rows, desc="images", unit="img", file=sys.stderr):
            image = capped(load_image(s.file), max_side)
            record: dict[str, object] = {"path": s.path, "group": group, "source": s.source}
            for name in experts:
                res = get_expert(name).analyze(image)
                scores[name][group].append(res.score)
                record[name] = res.score
                record[f"{name}_evidence"] = [e.summary for e in res.evidence]
            if out:
                out.write(json.dumps(record) + "\n")
    finally:
        if out:
            out.close()
    return scores


def table(name: str, by_group: dict[str, list[float | None]]) -> list[str]:
    def vals(g: str) -> np.ndarray:
        return np.array([0.0 if v is None else v for v in by_group.get(g, [])], dtype=float)

    camera = vals("camera reals")
    reals = np.r_[camera, vals("other reals")]
    lines = [
        f"\n## {name}\n",
        "| group | n | abstained | score > 0.5 | mean score | AUC vs camera reals | "
        "AUC vs all reals |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in GROUPS:
        raw = by_group.get(g, [])
        if not raw:
            continue
        v = vals(g)
        abst = sum(x is None for x in raw)
        cells = [g, str(v.size), str(abst), f"{np.mean(v > 0.5):.3f}", f"{v.mean():.3f}"]
        if g.startswith("tampered"):
            for neg in (camera, reals):
                y = np.r_[np.ones(v.size), np.zeros(neg.size)]
                cells.append(f"{auc(y, np.r_[v, neg]):.3f}")
        else:
            cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--experts", default=",".join(EXPERTS))
    ap.add_argument("--max-side", type=int, default=None, help="downsize larger images (speed)")
    ap.add_argument("--limit-per-source", type=int, default=None, help="sample N rows per source")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scores-jsonl", type=Path, default=None, help="per-image scores file")
    args = ap.parse_args(argv)
    experts = [e.strip() for e in args.experts.split(",") if e.strip()]
    rows = pick(load_manifest(args.data / "manifest.csv"), args.limit_per_source, args.seed)
    scores = score_all(rows, experts, args.max_side, args.scores_jsonl)
    versions = ", ".join(f"{e} {get_expert(e).spec.version}" for e in experts)
    print("# Signal experts: tamper votes on real photos and recall on tampered images\n")
    print(
        f"{len(rows)} images as stored (max side {args.max_side or 'native'}, "
        f"limit per source {args.limit_per_source or 'none'}); expert versions: {versions}. "
        "Abstention counts as score 0."
    )
    for name in experts:
        print("\n".join(table(name, scores[name])))


if __name__ == "__main__":
    main()
