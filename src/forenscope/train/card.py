"""Model cards: what a head was trained on (with licences), how well it does, how to rebuild it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..learned.heads import LinearHead
from .data import TrainingImage, licences

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


def research_only(samples: list[TrainingImage]) -> bool:
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


HELD_OUT = "Metrics (held-out 20%, grouped by prompt, never used for fit or calibration)"


@dataclass
class Card:
    """What one model card says; `render` lays every card out the same way."""

    name: str
    summary: str  # what the model is, one paragraph
    samples: list[TrainingImage]
    alignment: str
    metrics: dict[str, Any]
    command: str
    data_notes: list[str] = field(default_factory=list)  # paragraphs under "Training data"
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # before the metrics
    metrics_notes: list[str] = field(default_factory=list)
    reproduce_notes: list[str] = field(default_factory=list)
    limitations: str = LIMITATIONS


def render(card: Card) -> str:
    """The Markdown model card: summary, licence warning, data and licences, metrics, rebuild."""
    lines = [f"# Model card: `{card.name}`", "", card.summary, ""]
    if research_only(card.samples):
        lines += [
            "**Research use only.** At least one training source is non-commercial, "
            "research-only or has no verified licence (table below). Do not use this model "
            "commercially; retrain it on data you may use with the command below.",
            "",
        ]
    lines += ["## Training data", "", f"Format-aligned: {card.alignment}", ""]
    for note in card.data_notes:
        lines += [note, ""]
    counts = Counter((s.source, s.label, s.generator) for s in card.samples)
    lines += ["| source | label | generator | images |", "|---|---|---|---|"]
    lines += [f"| {src} | {lab} | {gen} | {n} |" for (src, lab, gen), n in sorted(counts.items())]
    lines += ["", "| source | licence |", "|---|---|"]
    lines += [f"| {src} | {lic} |" for src, lic in sorted(licences(card.samples).items())]
    for title, paragraphs in card.sections:
        lines += ["", f"## {title}", ""]
        for paragraph in paragraphs:
            lines += [paragraph, ""]
        lines.pop()
    lines += ["", f"## {HELD_OUT}", ""]
    for note in card.metrics_notes:
        lines += [note, ""]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in card.metrics.items()]
    lines += ["", "## Reproduce", "", "```", card.command, "```", ""]
    lines += card.reproduce_notes
    lines += ["", card.limitations, ""]
    return "\n".join(lines)


def render_head_card(
    head: LinearHead, samples: list[TrainingImage], metrics: dict[str, Any], command: str
) -> str:
    """The card of a linear head on frozen features."""
    data_notes = []
    if "augmentation" in head.meta:
        data_notes.append(f"Augmentation: {head.meta['augmentation']}.")
    notes = ["Calibration was fitted on out-of-fold logits of the other 80%."]
    if "laundered_auc" in metrics:
        notes.append(
            "Rows without a prefix: the held-out images as stored (then aligned); `laundered_`: "
            "their laundered training copies (same recipe as the augmentation, never fitted "
            "on). Recall and FPR are at 0.5 on the calibrated probability."
        )
    if head.feature == "clip-patch":
        notes.append(
            "Rows are sampled patch tokens (every 6th of 196 per image), each labelled "
            "with its image's label; the split keeps all patches of an image together."
        )
    if head.feature == "clip-patch-composite":
        notes.append(
            "Rows are patch tokens of composites (a region of a generated image pasted into a "
            "real photo, seeded; `forenscope/train/composites.py`), labelled 1 where the paste "
            "mask covers at least half the patch, plus real-into-real pastes labelled 0 and the "
            "patches of every untouched image with its image's label. It learns where something "
            "was pasted or generated: it also flags about half of a pasted *real* region."
        )
    keys = ("encoder_sha256", "seed", "c", "preprocessing")
    return render(
        Card(
            name=head.name,
            summary=f"Linear head on `{head.feature}` features; P({head.classes[1]}) vs "
            f"{head.classes[0]}, calibration: {head.calibration.get('method')}.",
            samples=samples,
            alignment=str(head.meta.get("alignment")),
            metrics=metrics,
            command=command,
            data_notes=data_notes,
            metrics_notes=notes,
            reproduce_notes=[f"- {k}: `{head.meta[k]}`" for k in keys if k in head.meta],
        )
    )
