"""Noise-residual consistency expert: localises a spliced patch with foreign noise.

Acceptance (issue "Offline forensic analysis", item 3): IoU >= 0.5 of the heatmap thresholded at
0.5 against the forgery's exact mask, on the shipped photo and on the synthetic photo at two box
positions each; an untouched re-saved photo gives a low score and a nearly empty mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forenscope.eval.datasets import load_manifest
from forenscope.experts import get_expert
from forenscope.forgeries import (
    Box,
    encode,
    example_photo,
    make_splice,
    mask_iou,
    synthetic_photo,
)
from forenscope.io import load_image
from forenscope.io.input import ImageInput


def _rgb_input(rgb: np.ndarray) -> ImageInput:
    return ImageInput(rgb=rgb, data=b"", format="PNG", mode="RGB")


def test_spec_is_a_signal_expert_for_tampering() -> None:
    spec = get_expert("noise").spec
    assert (spec.kind, spec.targets, spec.produces_heatmap) == ("signal", "tampered", True)
    assert spec.reference and "Immerkaer" in spec.reference
    assert spec.requires == []


# Example photo: one box over the dandelion head (fine hair texture, the hard case for a noise
# map), one over the out-of-focus grass at the bottom right (smooth bokeh).
EXAMPLE_BOXES = [Box(100, 100, 256, 200), Box(600, 450, 240, 200)]
SYNTHETIC_BOXES = [Box(300, 200, 200, 160), Box(50, 40, 160, 160)]


@pytest.mark.parametrize("box", EXAMPLE_BOXES, ids=["dandelion", "bokeh"])
def test_localises_splice_on_example_photo(box: Box) -> None:
    forgery = make_splice(example_photo(), synthetic_photo(768, 1024, seed=3), box)
    result = get_expert("noise").analyze(load_image(forgery.data))
    assert result.heatmap is not None and result.score is not None
    assert result.heatmap.shape == forgery.mask.shape and result.heatmap.dtype == np.float32
    assert mask_iou(result.heatmap >= 0.5, forgery.mask) >= 0.5
    assert result.score >= 0.5
    regions = [e for e in result.evidence if e.kind == "noise.inconsistent_region"]
    assert regions and regions[0].bbox is not None
    b = regions[0].bbox  # the strongest region's box sits on the pasted patch
    cx, cy = b.x + b.width // 2, b.y + b.height // 2
    assert forgery.mask[cy, cx]


@pytest.mark.parametrize("box", SYNTHETIC_BOXES, ids=["centre", "upper-left"])
def test_localises_splice_on_synthetic_photo(box: Box) -> None:
    base = synthetic_photo()
    forgery = make_splice(base, synthetic_photo(seed=4), box)
    result = get_expert("noise").analyze(load_image(forgery.data))
    assert result.heatmap is not None
    assert mask_iou(result.heatmap >= 0.5, forgery.mask) >= 0.5


def test_self_donor_splice_is_found_too() -> None:
    # The donor is the same photo: only the added noise differs, no colour or content cue.
    box = Box(100, 100, 256, 200)
    forgery = make_splice(example_photo(), example_photo(), box, donor_xy=(380, 300))
    result = get_expert("noise").analyze(load_image(forgery.data))
    assert result.heatmap is not None
    assert mask_iou(result.heatmap >= 0.5, forgery.mask) >= 0.5


@pytest.mark.parametrize("name", ["example", "synthetic"])
def test_untouched_images_stay_quiet(name: str) -> None:
    rgb = example_photo() if name == "example" else synthetic_photo()
    result = get_expert("noise").analyze(load_image(encode(rgb, quality=92)))
    assert result.score is not None and result.score < 0.2
    assert result.heatmap is not None and float((result.heatmap >= 0.5).mean()) < 0.01
    assert result.evidence[0].kind == "noise.model"


def test_abstains_on_tiny_and_flat_images() -> None:
    expert = get_expert("noise")
    tiny = expert.analyze(_rgb_input(np.zeros((40, 40, 3), np.uint8)))
    flat = expert.analyze(_rgb_input(np.full((300, 400, 3), 120, np.uint8)))
    assert tiny.score is None and tiny.abstain_reason and "small" in tiny.abstain_reason
    assert flat.score is None and flat.abstain_reason and "flat" in flat.abstain_reason
    assert tiny.error is None and flat.error is None


@pytest.mark.data
def test_untouched_noso_originals_flag_little(shared_data: Path) -> None:
    expert = get_expert("noise")
    for sample in load_manifest(shared_data / "manifest.csv", source="noso", label="real"):
        result = expert.analyze(load_image(sample.file))
        assert result.heatmap is not None
        assert float((result.heatmap >= 0.5).mean()) < 0.02, sample.path
