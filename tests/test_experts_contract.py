"""Every registered expert runs on small synthetic images, so none can rot unseen."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from forenscope.errors import UnknownExpertError
from forenscope.experts import expert_classes, get_expert, list_experts
from forenscope.forgeries import synthetic_photo
from forenscope.io import load_image
from forenscope.types import ExpertResult

EXPECTED = {
    "ela", "noise", "spectrum", "jpeg_artifacts", "copy_move",
    "exif", "generator_metadata", "c2pa", "watermark", "clip_detector", "cnn_baseline",
}  # fmt: skip


def _encoded(rgb: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def test_builtin_experts_are_registered() -> None:
    assert EXPECTED <= set(list_experts())


def test_unknown_expert_suggests_a_name() -> None:
    with pytest.raises(UnknownExpertError, match="did you mean"):
        get_expert("noize")


def test_specs_declare_provenance() -> None:
    for name, cls in expert_classes().items():
        spec = cls.spec
        assert spec.name == name
        assert spec.version and spec.licence and spec.description
        if spec.requires:
            assert spec.extra, f"{name} needs optional modules but names no pip extra"


@pytest.mark.parametrize("name", list_experts())
@pytest.mark.parametrize("fmt,size", [("JPEG", (96, 128)), ("PNG", (200, 160)), ("JPEG", (20, 24))])
def test_expert_contract(name: str, fmt: str, size: tuple[int, int]) -> None:
    image = load_image(_encoded(synthetic_photo(*size, seed=1), fmt))
    expert = get_expert(name)
    first = expert.analyze(image)
    assert isinstance(first, ExpertResult)
    assert first.expert == name and first.version == expert.spec.version
    assert first.error is None, first.error
    if first.score is None:
        assert first.abstain_reason, "an abstaining expert must say why"
    else:
        assert 0.0 <= first.score <= 1.0
    if first.heatmap is not None:
        hm = first.heatmap
        assert hm.ndim == 2 and hm.dtype == np.float32
        assert np.isfinite(hm).all() and hm.min() >= 0.0 and hm.max() <= 1.0
        assert first.has_heatmap
    for ev in first.evidence:
        assert ev.summary.strip()
    again = expert.analyze(image)  # deterministic
    assert again.score == first.score
    assert [e.summary for e in again.evidence] == [e.summary for e in first.evidence]
    ExpertResult.model_validate_json(first.model_dump_json())  # JSON round trip
