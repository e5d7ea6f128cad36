"""`forenscope demo`: the shipped CC0 photo and a tampered copy of it, analysed end to end."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from .batch import INDEX_NAME, analyze_batch
from .forgeries import EXAMPLE_PHOTO, Box, example_photo, make_jpeg_region, mask_iou

# The pasted region: upper right, over the sunlit background (where a forger would add an object).
DEMO_BOX = Box(x=640, y=96, width=256, height=192)


def make_demo_inputs(folder: Path) -> tuple[Path, Path, Path]:
    """Copy the photo, and write a tampered copy plus its ground-truth mask, into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    original = folder / "seeding.jpg"
    shutil.copyfile(EXAMPLE_PHOTO, original)
    forgery = make_jpeg_region(example_photo(), DEMO_BOX, region_quality=50, final_quality=92)
    tampered = folder / "seeding-tampered.jpg"
    tampered.write_bytes(forgery.data)
    mask_path = folder / "seeding-tampered.mask.png"
    Image.fromarray(forgery.mask.astype(np.uint8) * 255).save(mask_path)
    return original, tampered, mask_path


def run_demo(out_dir: Path) -> Iterator[str]:
    """Yield human-readable lines while analysing both images."""
    original, tampered, mask_path = make_demo_inputs(out_dir / "inputs")
    yield f"inputs: {original} (CC0 photo) and {tampered} (a region re-saved at JPEG quality 50)"
    truth = np.asarray(Image.open(mask_path)) > 127
    reports = out_dir / "reports"
    (reports / INDEX_NAME).unlink(missing_ok=True)  # the demo always analyses afresh
    for outcome in analyze_batch([original, tampered], out_dir=reports):
        yield f"{outcome.path}: {outcome.status.upper()}: {outcome.summary}"
        if outcome.status == "error":
            continue
        for kind, path in sorted(outcome.outputs.items()):
            yield f"  {kind}: {path}"
        predicted = outcome.outputs.get("mask")
        if predicted and Path(outcome.path) == tampered:
            iou = mask_iou(np.asarray(Image.open(predicted)) > 127, truth)
            yield f"  IoU of the fused mask with the true mask: {iou:.2f}"
