"""Model cards: what a head was trained on (with licences), how well it does, how to rebuild it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..learned.heads import LinearHead
from .data import Sample, licences

NON_COMMERCIAL_HINTS = (
    "non-commercial",
    "nc-",
    "nc ",
    "research",
    "unverified",
    "no licence",
    "unknown",
    "not verified",
    "terms vary",
)


def research_only(samples: list[Sample]) -> bool:
    """True when any source is non-commercial, research-only or of unclear licence."""
    return any(
        any(h in lic.lower() for h in NON_COMMERCIAL_HINTS) for lic in licences(samples).values()
    )


LIMITATIONS = (
    "Limitations: small training set (hundreds of images). The 2024 generators (Kolors, SDXL, "
    "Midjourney v6, Hunyuan-DiT, FLUX.1-dev, CogView4) have 3-16 images each, mostly README "
    "showcase outputs (Kolors: portraits, cats and dogs), so the held-out figures for them rest "
    "on a handful of images; GAN images are mostly CNNDetection (LSUN/ImageNet content) and "
    "there are no modern GANs, so attribution partly reflects content and age. Per-generator "
    "leave-one-out figures are in BENCHMARKS.md (learned detection)."
)


def render_card(
    head: LinearHead, samples: list[Sample], metrics: dict[str, Any], command: str
) -> str:
    counts = Counter((s.source, s.label, s.generator) for s in samples)
    lines = [
        f"# Model card: `{head.name}`",
        "",
        f"Linear head on `{head.feature}` features; P({head.classes[1]}) vs {head.classes[0]}, "
        f"calibration: {head.calibration.get('method')}.",
        "",
    ]
    if research_only(samples):
        lines += [
            "**Research use only.** At least one training source is non-commercial, "
            "research-only or has no verified licence (table below). Do not use this head "
            "commercially; retrain it on data you may use with the command below.",
            "",
        ]
    lines += [
        "## Training data",
        "",
        "Format-aligned: " + str(head.meta.get("alignment")),
        "",
    ]
    if "augmentation" in head.meta:
        lines += [f"Augmentation: {head.meta['augmentation']}.", ""]
    lines += [
        "| source | label | generator | images |",
        "|---|---|---|---|",
    ]
    lines += [f"| {src} | {lab} | {gen} | {n} |" for (src, lab, gen), n in sorted(counts.items())]
    lines += ["", "| source | licence |", "|---|---|"]
    lines += [f"| {src} | {lic} |" for src, lic in sorted(licences(samples).items())]
    lines += ["", "## Metrics (held-out 20%, grouped by prompt, never used for fit or calibration)"]
    lines += ["", "Calibration was fitted on out-of-fold logits of the other 80%.", ""]
    if "laundered_auc" in metrics:
        lines += [
            "Rows without a prefix: the held-out images as stored (then aligned); `laundered_`: "
            "their laundered training copies (same recipe as the augmentation, never fitted "
            "on). Recall and FPR are at 0.5 on the calibrated probability.",
            "",
        ]
    if head.feature == "clip-patch":
        lines += [
            "Rows are sampled patch tokens (every 6th of 196 per image), each labelled "
            "with its image's label; the split keeps all patches of an image together.",
            "",
        ]
    if head.feature == "clip-patch-composite":
        lines += [
            "Rows are patch tokens of composites (a region of a generated image pasted into a "
            "real photo, seeded; `forenscope/train/composites.py`), labelled 1 where the paste "
            "mask covers at least half the patch, plus real-into-real pastes labelled 0 and the "
            "patches of every untouched image with its image's label. It learns where something "
            "was pasted or generated: it also flags about half of a pasted *real* region.",
            "",
        ]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in metrics.items()]
    lines += ["", "## Reproduce", "", "```", command, "```", ""]
    for key in ("encoder_sha256", "seed", "c", "preprocessing"):
        if key in head.meta:
            lines.append(f"- {key}: `{head.meta[key]}`")
    lines += ["", LIMITATIONS, ""]
    return "\n".join(lines)
