"""A manifest of synthetic CC0 images for the training tests (real = camera, fake = toygan)."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def write_manifest(root: Path, images: Sequence[np.ndarray], fake: Sequence[bool]) -> Path:
    """Save each uint8 image as PNG under root/{real,fake}/ and write root/manifest.csv."""
    rows = []
    for i, (img, is_fake) in enumerate(zip(images, fake, strict=True)):
        rel = f"{'fake' if is_fake else 'real'}/{i}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / rel)
        rows.append(
            {
                "path": rel,
                "label": "fake" if is_fake else "real",
                "generator": "toygan" if is_fake else "camera",
                "family": "gan" if is_fake else "camera",
                "scope": "global" if is_fake else "none",
                "mask": "",
                "source": "synthetic",
                "licence": "CC0-1.0",
                "width": img.shape[1],
                "height": img.shape[0],
                "format": "PNG",
                "sha256": hashlib.sha256((root / rel).read_bytes()).hexdigest(),
            }
        )
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest
