"""Copy-move expert: finds the duplicated pair (source and pasted target) of `make_copy_move`.

The expert cannot tell the copy from the original, so it marks both. `make_copy_move`'s mask
covers only the pasted target; the acceptance IoU (>= 0.5 at threshold 0.5) is therefore taken
against the UNION of source and target boxes. Target-only IoU is then bounded by about 0.5 (the
map is twice the target) and is checked separately to be close to that bound. The shifts are
JPEG q95 (the maker's default) and the grid offsets are not multiples of 8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forenscope.eval.datasets import load_manifest, load_mask
from forenscope.eval.metrics import scores_at
from forenscope.experts import get_expert
from forenscope.experts.copy_move import shifted
from forenscope.forgeries import (
    Box,
    encode,
    example_photo,
    make_copy_move,
    mask_iou,
    synthetic_photo,
)
from forenscope.io import load_image
from forenscope.io.input import ImageInput

# Example photo: a textured copy (dandelion head -> grass, lower right) and a copy of smooth,
# out-of-focus background (the bokeh). Synthetic: two positions with different shifts.
CASES = {
    "example-textured": ("example", Box(120, 150, 160, 140), (700, 482)),
    "example-smooth": ("example", Box(500, 500, 150, 120), (803, 550)),
    "synthetic-a": ("synthetic", Box(60, 60, 150, 120), (381, 300)),
    "synthetic-b": ("synthetic", Box(400, 40, 160, 160), (100, 283)),
}


def _base(name: str) -> np.ndarray:
    return example_photo() if name == "example" else synthetic_photo()


def test_spec() -> None:
    spec = get_expert("copy_move").spec
    assert (spec.kind, spec.targets, spec.produces_heatmap) == ("signal", "tampered", True)
    assert spec.requires == []  # numpy/scipy only
    assert spec.reference and "Fridrich" in spec.reference


@pytest.mark.parametrize("case", list(CASES))
def test_localises_source_and_target(case: str) -> None:
    base_name, source, target_xy = CASES[case]
    forgery = make_copy_move(_base(base_name), source, target_xy)
    result = get_expert("copy_move").analyze(load_image(forgery.data))
    assert result.heatmap is not None and result.heatmap.shape == forgery.mask.shape
    pred = result.heatmap >= 0.5
    source_mask = np.zeros_like(forgery.mask)
    source_mask[source.slices()] = True
    assert mask_iou(pred, forgery.mask | source_mask) >= 0.5
    assert mask_iou(pred, forgery.mask) >= 0.4  # the target alone, out of at most ~0.5
    assert result.score is not None and result.score >= 0.5
    # The evidence names the shift vector (up to sign) and both boxes.
    dy, dx = target_xy[1] - source.y, target_xy[0] - source.x
    pair = result.details["pairs"][0]
    assert tuple(pair["shift_dy_dx"]) in {(dy, dx), (-dy, -dx)}
    ev = [e for e in result.evidence if e.kind == "copy_move.pair"]
    assert ev and ev[0].bbox is not None and f"dx={pair['shift_dy_dx'][1]}" in ev[0].summary


@pytest.mark.parametrize("name", ["example", "synthetic"])
def test_untouched_images_stay_quiet(name: str) -> None:
    result = get_expert("copy_move").analyze(load_image(encode(_base(name), quality=92)))
    assert result.score == 0.0
    assert result.heatmap is not None and float((result.heatmap >= 0.5).mean()) == 0.0
    assert result.evidence[0].kind == "copy_move.none"


def test_copy_with_changed_brightness_and_contrast_is_found() -> None:
    # COVERAGE-style "illumination" copy-move: the pasted copy is darker and flatter.
    base = synthetic_photo()
    source, (tx, ty) = Box(60, 60, 150, 120), (381, 300)
    out = base.astype(np.float32)
    out[ty : ty + 120, tx : tx + 150] = base[source.slices()] * 0.8 + 10
    rgb = np.clip(out, 0, 255).astype(np.uint8)
    truth = np.zeros(rgb.shape[:2], bool)
    truth[source.slices()] = True
    truth[ty : ty + 120, tx : tx + 150] = True
    result = get_expert("copy_move").analyze(load_image(encode(rgb, quality=95)))
    assert result.heatmap is not None
    assert mask_iou(result.heatmap >= 0.5, truth) >= 0.5


def test_periodic_texture_is_not_a_copy() -> None:
    # A tiled texture matches itself at its period; that must not be reported as a copy-move.
    rng = np.random.default_rng(0)
    tile = rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)
    rgb = np.tile(tile, (10, 12, 1))
    result = get_expert("copy_move").analyze(load_image(encode(rgb, "PNG")))
    assert result.score == 0.0
    assert result.details["rejected_candidates"] >= 1


def test_shifted_mask_moves_and_crops() -> None:
    m = np.zeros((10, 10), bool)
    m[1:3, 1:3] = True
    out = shifted(m, (5, 7))
    assert out[6:8, 8:10].all() and out.sum() == 4
    assert shifted(m, (-5, 0)).sum() == 0


def test_abstains_on_tiny_and_flat_images() -> None:
    expert = get_expert("copy_move")
    tiny = ImageInput(rgb=np.zeros((40, 40, 3), np.uint8), data=b"", format="PNG", mode="RGB")
    flat = ImageInput(rgb=np.full((200, 300, 3), 200, np.uint8), data=b"", format="PNG", mode="RGB")
    assert expert.analyze(tiny).score is None
    res = expert.analyze(flat)
    assert res.score is None and res.abstain_reason and "textured" in res.abstain_reason


@pytest.mark.data
def test_noso_copy_moves_are_found_and_originals_stay_clean(shared_data: Path) -> None:
    # NoSo: lossless copy-move scenes. Measured: 3 of 5 forged images localised (F1 0.69-0.95,
    # mean 0.50 over 5), no pair on any of the 5 originals.
    expert = get_expert("copy_move")
    manifest = shared_data / "manifest.csv"
    f1 = []
    for s in load_manifest(manifest, source="noso", label="tampered"):
        assert s.mask_file is not None
        result = expert.analyze(load_image(s.file))
        assert result.heatmap is not None
        f1.append(scores_at(result.heatmap, load_mask(s.mask_file)).f1)
    assert sum(v >= 0.3 for v in f1) >= 3
    for s in load_manifest(manifest, source="noso", label="real"):
        assert expert.analyze(load_image(s.file)).score == 0.0, s.path
