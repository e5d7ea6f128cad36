"""Manifest rows, task selection and format alignment for training and evaluation.

Format alignment (see ../shared/data/README.md): every image of every class is decoded to RGB,
its shorter side resized to ALIGN_SIZE (bicubic), centre-cropped, and re-encoded in memory as
JPEG q=90 with 4:2:0 chroma, so no class can be told apart by container, size or metadata.

A sample may carry a `Launder` spec (train/launder.py): it is then a seeded laundered copy of
the file (downscaled and JPEG re-saved *before* the alignment), with its own feature-cache key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..learned.preprocess import ALIGN_QUALITY, ALIGN_SIZE, align_image
from .launder import Launder, copies, launder

ALIGN_TAG = f"jpeg{ALIGN_QUALITY}-420-{ALIGN_SIZE}"


@dataclass(frozen=True)
class TrainingImage:
    path: Path
    label: str
    generator: str
    family: str
    source: str
    licence: str
    sha256: str
    launder: Launder | None = None  # None = the file as stored

    @property
    def key(self) -> str:
        """Feature-cache key: the file's sha256, plus the laundering tag for a laundered copy."""
        return self.sha256 if self.launder is None else f"{self.sha256}:{self.launder.tag}"

    @property
    def group(self) -> str:
        """Split unit: the prompt for text-to-image renders, else the file itself."""
        rel = self.path.as_posix()
        if "/fake/imagen/" in f"/{rel}":
            return "prompt:" + self.path.parent.name
        return "file:" + self.sha256


def read_manifest(manifest: Path) -> list[TrainingImage]:
    """The manifest's rows (CSV or JSONL, read by the eval harness's reader) with absolute paths."""
    from ..eval.datasets import load_manifest

    return [
        TrainingImage(
            path=row.file,
            label=row.label,
            generator=row.generator,
            family=row.family,
            source=row.source,
            licence=row.licence,
            sha256=row.sha256,
        )
        for row in load_manifest(manifest)
    ]


def select(
    samples: list[TrainingImage], task: str, include_cifake: bool = False
) -> list[TrainingImage]:
    """Rows usable for `task`: 'generated' (real vs fake) or 'attribution' (gan vs diffusion)."""
    keep = [s for s in samples if include_cifake or s.source != "cifake"]
    if task == "generated":
        return [s for s in keep if s.label in ("real", "fake")]
    if task == "attribution":
        return [s for s in keep if s.label == "fake" and s.family in ("gan", "diffusion")]
    raise ValueError(f"unknown task {task!r}")


def target(sample: TrainingImage, task: str) -> int:
    """1 = generated (task 'generated') or diffusion (task 'attribution')."""
    if task == "generated":
        return int(sample.label == "fake")
    return int(sample.family == "diffusion")


def load_aligned(path: Path, size: int = ALIGN_SIZE) -> np.ndarray:
    with Image.open(path) as img:
        img.load()
        return align_image(img, size)


def load_sample(sample: TrainingImage, size: int = ALIGN_SIZE) -> np.ndarray:
    """The sample's aligned pixels; a laundered copy is laundered first, then aligned."""
    if sample.launder is None:
        return load_aligned(sample.path, size)
    with Image.open(sample.path) as img:
        img.load()
        return align_image(launder(img, sample.launder, sample.sha256), size)


def laundered(samples: list[TrainingImage], spec: Launder) -> list[TrainingImage]:
    """The same rows as laundered copies under `spec`."""
    return [replace(s, launder=spec) for s in samples]


def with_laundered_copies(samples: list[TrainingImage], k: int, seed: int) -> list[TrainingImage]:
    """The rows as stored, followed by k seeded laundered copies of each (training views);
    a copy keeps its file's group, so a split never separates it from its original."""
    out = list(samples)
    for spec in copies(k, seed):
        out += laundered(samples, spec)
    return out


def licences(samples: list[TrainingImage]) -> dict[str, str]:
    """source -> its distinct licence texts (in first-seen order, joined by ' / ') for the
    model card: a source whose rows differ (per-author wallpapers, Midjourney outputs in the
    Kolors repository) lists every one."""
    out: dict[str, list[str]] = {}
    for s in samples:
        seen = out.setdefault(s.source, [])
        if s.licence not in seen:
            seen.append(s.licence)
    return {src: " / ".join(texts) for src, texts in out.items()}


def cifake_split(
    samples: list[TrainingImage], n_per_class: int = 1000
) -> tuple[list[TrainingImage], list[TrainingImage]]:
    """CIFAKE has no split in the manifest: order each class by sha256 (duplicates collapse),
    the first n go to train and the next n to test. Deterministic and content-blind."""
    train: list[TrainingImage] = []
    test: list[TrainingImage] = []
    for label in ("real", "fake"):
        rows = {s.sha256: s for s in samples if s.source == "cifake" and s.label == label}
        ordered = [rows[k] for k in sorted(rows)]
        train += ordered[:n_per_class]
        test += ordered[n_per_class : 2 * n_per_class]
    return train, test
