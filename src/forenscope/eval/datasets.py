"""Manifests in the schema of `../shared/data/manifest.csv`, and their ground-truth masks."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

MANIFEST_COLUMNS = (
    "path", "label", "generator", "family", "scope", "mask", "source", "licence",
    "width", "height", "format", "sha256",
)  # fmt: skip


@dataclass(frozen=True)
class Sample:
    root: Path
    path: str
    label: str
    generator: str
    family: str
    scope: str
    mask: str
    source: str
    format: str
    sha256: str

    @property
    def file(self) -> Path:
        return self.root / self.path

    @property
    def mask_file(self) -> Path | None:
        return self.root / self.mask if self.mask else None


def load_manifest(manifest: Path, **filters: str | set[str]) -> list[Sample]:
    """Rows of a manifest CSV, optionally filtered by column value(s), e.g. label="tampered"."""
    root = manifest.parent
    samples = []
    with manifest.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"path", "label"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{manifest}: missing column(s) {sorted(missing)}")
        for row in reader:
            if not all(_matches(row.get(k, ""), v) for k, v in filters.items()):
                continue
            samples.append(
                Sample(
                    root=root,
                    **{k: row.get(k, "") for k in Sample.__dataclass_fields__ if k != "root"},
                )
            )
    return samples


def _matches(value: str, wanted: str | set[str]) -> bool:
    return value in wanted if isinstance(wanted, set) else value == wanted


def load_mask(path: Path) -> np.ndarray:
    """A ground-truth mask as bool (H, W): white (>= 128) in any channel = manipulated.

    This follows the data README: JPEG masks are thresholded at 128, RGB masks count a pixel
    when any channel is >= 128.
    """
    with Image.open(path) as im:
        arr = np.asarray(im.convert("L") if im.mode in ("1", "L", "P") else im.convert("RGB"))
    white = arr >= 128
    return np.asarray(white.any(axis=-1) if white.ndim == 3 else white, dtype=bool)
