"""Real Reports from the real pipeline for the report tests: one per outcome the reports word
differently, built once per test process.

- "tampered": a copy-move forgery of the shipped photo (tampered, two regions, one pair);
- "inconclusive": a synthetic photo (needs review, leaning real, with marked regions);
- "ai_generated": a PNG whose A1111 parameters chunk proves generation (provenance);
- "real": the same synthetic photo judged by the signal and metadata experts alone (real).

The CLIP detector takes part (it decides the first two), so the pulled encoder is linked into
the test's cache; without it the outcomes differ and the tests skip with the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from forenscope.forgeries import Box, encode, example_photo, make_copy_move, synthetic_photo
from forenscope.io import load_image
from forenscope.io.input import ImageInput
from forenscope.types import Report
from provenance_fixtures import A1111_RUNS, natural_rgb, png_bytes

SIGNAL_AND_METADATA = [
    "copy_move", "ela", "noise", "jpeg_artifacts", "spectrum", "exif", "generator_metadata",
]  # fmt: skip
EXPECTED = {"tampered": "tampered", "inconclusive": "inconclusive", "ai_generated": "ai_generated",
            "real": "real"}  # fmt: skip
_BUILT: dict[str, tuple[Report, ImageInput]] = {}


def _inputs() -> dict[str, tuple[bytes, str, list[str] | None]]:
    photo = example_photo()[100:484, 0:512]
    synth = encode(synthetic_photo(256, 320), quality=90)
    return {
        "tampered": (make_copy_move(photo, Box(60, 40, 70, 70), (330, 220)).data, "cm.jpg", None),
        "inconclusive": (synth, "synthetic.jpg", None),
        "ai_generated": (
            png_bytes(natural_rgb(128, 128), {"parameters": A1111_RUNS["txt2img"]}),
            "castle.png",
            SIGNAL_AND_METADATA,
        ),
        "real": (synth, "synthetic.jpg", SIGNAL_AND_METADATA),
    }


def real_reports(tmp_root: Path) -> dict[str, tuple[Report, ImageInput]]:
    """{outcome: (report, image)}; skips when the CLIP encoder is not pulled."""
    if _BUILT:
        return _BUILT
    from forenscope.config import ENV
    from forenscope.models.cache import default_cache_dir
    from forenscope.models.registry import CLIP_B16_INT8
    from forenscope.pipeline import analyze_image

    encoder = default_cache_dir() / "models" / CLIP_B16_INT8.name / CLIP_B16_INT8.filename
    if not encoder.is_file():
        pytest.skip("real CLIP encoder not cached; run `forenscope models pull`")
    linked = tmp_root / "models" / CLIP_B16_INT8.name
    linked.mkdir(parents=True, exist_ok=True)
    if not (linked / CLIP_B16_INT8.filename).exists():
        os.symlink(encoder, linked / CLIP_B16_INT8.filename)
    built = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FORENSCOPE_CACHE_DIR", str(tmp_root))
        for var in ENV.values():
            mp.delenv(var, raising=False)  # the shipped settings, whatever the shell says
        for outcome, (data, name, experts) in _inputs().items():
            image = load_image(data)
            image.path = name
            report = analyze_image(image, experts=experts)
            assert report.verdict.label == EXPECTED[outcome], (outcome, report.verdict)
            built[outcome] = (report, image)
    _BUILT.update(built)
    return _BUILT
