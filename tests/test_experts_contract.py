"""Every registered expert keeps the contract and JUDGES an input made for it, so none can rot
unseen; the five signal experts also match golden outputs tied to their spec versions."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import make_golden
from forenscope.errors import UnknownExpertError
from forenscope.experts import expert_classes, get_expert, list_experts
from forenscope.experts.base import Expert
from forenscope.forgeries import synthetic_photo
from forenscope.io import load_image
from forenscope.io.input import ImageInput
from forenscope.types import ExpertResult
from judging_inputs import JUDGING_CASES, SIGNAL_CASES, install_fake_clip

EXPECTED = {
    "ela", "noise", "spectrum", "jpeg_artifacts", "copy_move",
    "exif", "generator_metadata", "c2pa", "watermark", "clip_detector", "cnn_baseline",
}  # fmt: skip
ADD_A_CASE = "add one to JUDGING_CASES in tests/judging_inputs.py"


def _encoded(rgb: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def check_contract(expert: Expert, image: ImageInput) -> ExpertResult:
    """Run `expert` twice on `image`; assert the result contract; return the first result."""
    name = expert.spec.name
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
    assert (again.heatmap is None) == (first.heatmap is None)
    if first.heatmap is not None and again.heatmap is not None:
        assert np.array_equal(again.heatmap, first.heatmap)
    ExpertResult.model_validate_json(first.model_dump_json())  # JSON round trip
    return first


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
    """Any image, tiny ones included: a score or an abstention with a reason, never an error."""
    image = load_image(_encoded(synthetic_photo(*size, seed=1), fmt))
    check_contract(get_expert(name), image)


# -- every expert judges --------------------------------------------------------------------
def test_every_expert_has_a_judging_input() -> None:
    missing = sorted(set(list_experts()) - set(JUDGING_CASES))
    assert not missing, f"no judging input for {', '.join(missing)}: {ADD_A_CASE}"
    gone = sorted(set(JUDGING_CASES) - set(list_experts()))
    assert not gone, f"judging inputs for experts that are not registered: {', '.join(gone)}"


@pytest.fixture(scope="module")
def fake_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return install_fake_clip(tmp_path_factory.mktemp("fake-clip"))


@pytest.mark.parametrize("name", list_experts())
def test_expert_judges_its_input(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = JUDGING_CASES.get(name)
    if case is None:
        pytest.fail(f"{name} has no input that makes it judge, so this test cannot see it: "
                    f"{ADD_A_CASE}")  # fmt: skip
    expert = get_expert(name)
    for module in case.modules:
        pytest.importorskip(module)  # the input's builder needs it (CI installs every extra)
    if missing := expert.available():
        pytest.skip(missing)  # not installed here; CI installs every extra
    if "faces" in case.needs:
        request.getfixturevalue("face_models")  # the pulled models (CI pulls them)
    if "clip" in case.needs:
        encoder, heads = request.getfixturevalue("fake_clip")
        monkeypatch.setenv("FORENSCOPE_CLIP_ONNX", str(encoder))
        monkeypatch.setenv("FORENSCOPE_CLIP_HEADS", str(heads))
    result = check_contract(expert, case.image())
    assert result.score is not None, f"{name} abstained on {case.what}: {result.abstain_reason}"


# -- golden outputs of the signal experts --------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SIGNAL_CASES))
def test_signal_expert_matches_its_golden(name: str) -> None:
    make_golden.compare(name, make_golden.compute(name))


def test_no_golden_of_an_old_version_is_left() -> None:
    stale = [p.name for p in make_golden.stale_goldens()]
    assert not stale, f"golden files of no current expert version: {stale}; delete them"


def test_a_version_bump_without_a_golden_says_how_to_regenerate(tmp_path: Path) -> None:
    got = make_golden.compute("ela")
    with pytest.raises(make_golden.GoldenMismatch, match=r"python tests/make_golden.py ela"):
        make_golden.compare("ela", got, tmp_path)  # no golden for the current version here


def test_an_output_change_without_a_version_bump_fails(tmp_path: Path) -> None:
    name = "noise"
    golden = make_golden.Golden.load(make_golden.golden_path(name, make_golden.spec_version(name)))
    assert golden.heatmap is not None and golden.score is not None
    make_golden.compare(name, golden, make_golden.GOLDEN_DIR)  # the golden matches itself
    nudged = golden.heatmap.copy()
    nudged[10, 10] += np.float16(0.05)
    changes = [
        replace(golden, score=golden.score - 0.01),
        replace(golden, heatmap=nudged),
        replace(golden, evidence=golden.evidence[:-1]),
    ]
    for changed in changes:
        with pytest.raises(make_golden.GoldenMismatch, match="without a version bump"):
            make_golden.compare(name, changed, make_golden.GOLDEN_DIR)


def test_make_golden_writes_only_what_is_missing_and_drops_old_versions(tmp_path: Path) -> None:
    (tmp_path / "copy_move-0.0.1.npz").write_bytes(b"old")
    done = make_golden.write(["copy_move"], force=False, directory=tmp_path)
    path = make_golden.golden_path("copy_move", make_golden.spec_version("copy_move"), tmp_path)
    assert path.is_file() and not (tmp_path / "copy_move-0.0.1.npz").exists()
    assert path.stat().st_size < 4096, "goldens must stay tiny"
    assert any("removed copy_move-0.0.1.npz" in line for line in done)
    assert make_golden.write(["copy_move"], force=False, directory=tmp_path)[0].startswith("kept")
    make_golden.compare("copy_move", make_golden.compute("copy_move"), tmp_path)
