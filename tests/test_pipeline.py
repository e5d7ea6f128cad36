"""End to end through the public API on the shipped photo and forgeries of it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import forenscope
from forenscope.errors import ImageDecodeError
from forenscope.forgeries import EXAMPLE_PHOTO, Box, example_photo, make_jpeg_region, mask_iou
from forenscope.types import Report


def test_real_photo_is_judged_real_with_every_field() -> None:
    report = forenscope.analyze(EXAMPLE_PHOTO)
    assert report.verdict.label == "real"
    assert abs(sum(report.verdict.probabilities.values()) - 1.0) < 1e-6
    assert report.image.width == 1024 and report.image.height == 768
    assert report.explanation
    names = {r.expert for r in report.experts}
    assert {"ela", "jpeg_artifacts", "noise", "exif"} <= names
    Report.model_validate_json(report.model_dump_json())


def test_forgery_is_found_and_located() -> None:
    box = Box(640, 96, 256, 192)
    forgery = make_jpeg_region(example_photo(), box, region_quality=50)
    report = forenscope.analyze(forgery.data)
    assert report.verdict.label == "tampered"
    assert report.regions, "a tampered verdict must point somewhere"
    assert report.fused_mask is not None
    assert mask_iou(report.fused_mask, forgery.mask) >= 0.5
    top = report.regions[0]
    assert "upper" in top.relative_position and "right" in top.relative_position


def test_bytes_that_are_not_an_image_raise_a_clear_error() -> None:
    with pytest.raises(ImageDecodeError):
        forenscope.analyze(b"%PDF-1.4 not an image")


def test_report_json_is_plain_json(tmp_path: Path) -> None:
    report = forenscope.analyze(EXAMPLE_PHOTO, experts=["ela", "exif"])
    data = json.loads(report.model_dump_json())
    assert "fused_heatmap" not in data and data["image"]["sha256"]
    assert {e["expert"] for e in data["experts"]} == {"ela", "exif"}
    assert np.isfinite(data["verdict"]["probability"])
