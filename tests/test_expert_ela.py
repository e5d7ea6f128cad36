"""ELA: texture-normalised error level map; quiet on untouched photos, lights up pasted areas."""

from __future__ import annotations

import re

import numpy as np
import pytest

from expert_fixtures import photo_fixture, synth_fixture  # noqa: F401  (fixtures)
from forenscope.experts import list_experts
from forenscope.experts.ela import ElaExpert
from forenscope.forgeries import EXAMPLE_PHOTO, Box, encode, make_jpeg_region, mask_iou
from forenscope.io import load_image

EXPERT = ElaExpert()


def test_registered_with_full_spec() -> None:
    assert "ela" in list_experts()
    spec = ElaExpert.spec
    assert (spec.kind, spec.targets, spec.produces_heatmap) == ("signal", "tampered", True)
    assert spec.reference


def test_untouched_photo_is_quiet(photo: np.ndarray, synth: np.ndarray) -> None:
    for base in (photo, synth):
        result = EXPERT.analyze(load_image(encode(base, quality=90)))
        assert result.score is not None and result.score < 0.25
        assert result.heatmap is not None and (result.heatmap >= 0.5).mean() < 0.01


def test_shipped_photo_claims_no_hotspot() -> None:
    # Its flat bright corner once gave "re-saves with more error (mean z +4.3)": a z-score built
    # on errors under half a grey level, which nobody could see on the ELA image.
    result = EXPERT.analyze(load_image(EXAMPLE_PHOTO.read_bytes()))
    hot = next(e for e in result.evidence if e.kind == "ela.hotspot")
    assert hot.bbox is None and result.score == 0.0


@pytest.mark.parametrize(("x", "y", "w", "h"), [(106, 80, 160, 120), (320, 240, 213, 160)])
def test_aligned_low_quality_region_on_synthetic_photo(
    synth: np.ndarray, x: int, y: int, w: int, h: int
) -> None:
    forgery = make_jpeg_region(synth, Box(x, y, w, h), region_quality=55, final_quality=92)
    result = EXPERT.analyze(load_image(forgery.data))
    assert result.heatmap is not None and result.heatmap.shape == forgery.mask.shape
    assert result.heatmap.dtype == np.float32
    assert mask_iou(result.heatmap >= 0.5, forgery.mask) >= 0.5
    untouched = EXPERT.analyze(load_image(encode(synth, quality=92)))
    assert result.score is not None and untouched.score is not None
    assert result.score > untouched.score + 0.3
    hot = next(e for e in result.evidence if e.kind == "ela.hotspot")
    assert hot.bbox is not None and "less error" in hot.summary
    # The sentence shows the two error levels that differ, and by how much.
    found = re.search(
        r"([\d.]+) vs ([\d.]+) grey levels per pixel \(([\d.]+)x, ([+-][\d.]+)", hot.summary
    )
    assert found, hot.summary
    inside, usual, ratio, diff = (float(v) for v in found.groups())
    assert inside < usual and usual - inside >= 0.5
    assert ratio == pytest.approx(inside / usual, abs=0.02)
    assert diff == pytest.approx(inside - usual, abs=0.011)


def test_aligned_low_quality_region_on_textured_part_of_photo(photo: np.ndarray) -> None:
    # On the shipped photo ELA finds the region on the textured dandelion (IoU about 0.58)
    # but not on the blurred background; the JPEG expert is the one that localizes those.
    forgery = make_jpeg_region(photo, Box(170, 128, 256, 192), region_quality=55, final_quality=92)
    result = EXPERT.analyze(load_image(forgery.data))
    assert result.heatmap is not None
    assert mask_iou(result.heatmap >= 0.5, forgery.mask) >= 0.5


def test_abstains_on_tiny_image(synth: np.ndarray) -> None:
    result = EXPERT.analyze(load_image(encode(synth[:48, :48], "PNG")))
    assert result.score is None and "64 px" in (result.abstain_reason or "")
