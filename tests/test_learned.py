"""Learned detector: preprocessing, heads, metrics, the expert on a fake encoder, training."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from forenscope.errors import ModelError
from forenscope.eval.classification import auc as roc_auc
from forenscope.eval.classification import ece
from forenscope.experts.clip_detector import ClipDetector
from forenscope.io.input import ImageInput
from forenscope.learned.encoder import LN_EPS, ClipEncoder, cached_projection, read_projection
from forenscope.learned.fake_encoder import build_fake_encoder
from forenscope.learned.heads import LinearHead, load_head
from forenscope.learned.preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    align_image,
    clip_crop,
    preprocess_rgb,
    to_tensor,
)
from forenscope.models.cache import default_cache_dir
from forenscope.models.registry import CLIP_B16_INT8
from forenscope.models.sources import file_sha256
from forenscope.train.cli import train_cli
from manifest_fixtures import write_manifest


@pytest.fixture(scope="module")
def fake_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fake_encoder(tmp_path_factory.mktemp("enc") / "fake.onnx")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_encoder: Path) -> Path:
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FORENSCOPE_CLIP_ONNX", str(fake_encoder))
    for var in ("FORENSCOPE_CLIP_SOURCE", "FORENSCOPE_AUTO_PULL", "FORENSCOPE_CLIP_HEADS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def image_input(rgb: np.ndarray) -> ImageInput:
    return ImageInput(rgb=rgb, data=rgb.tobytes(), format="PNG", mode="RGB")


# -- preprocessing ----------------------------------------------------------------------------
def test_clip_crop_geometry() -> None:
    crop, box = clip_crop(Image.new("RGB", (300, 200)))
    assert crop.size == (224, 224)
    assert box == pytest.approx((50.0, 0.0, 250.0, 200.0), abs=1.0)  # centre square of 200


def test_tensor_values_match_clip_normalisation() -> None:
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 128, 0
    tensor, _ = preprocess_rgb(rgb)
    assert tensor.shape == (1, 3, 224, 224) and tensor.dtype == np.float32
    want = (np.array([255, 128, 0]) / 255.0 - CLIP_MEAN.ravel()) / CLIP_STD.ravel()
    np.testing.assert_allclose(tensor[0, :, 100, 100], want, atol=1e-5)
    with pytest.raises(ValueError):
        preprocess_rgb(rgb.astype(np.float32))


def test_align_image_is_deterministic_jpeg_224() -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (120, 90, 3), dtype=np.uint8))
    a, b = align_image(img), align_image(img)
    assert a.shape == (224, 224, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert to_tensor([Image.fromarray(a)]).shape == (1, 3, 224, 224)


# -- heads and metrics ------------------------------------------------------------------------
def make_head(dim: int = 4, calibration: dict[str, object] | None = None) -> LinearHead:
    return LinearHead(
        name="t",
        feature="f",
        classes=("real", "generated"),
        mean=np.zeros(dim),
        scale=np.ones(dim),
        weights=np.arange(1.0, dim + 1),
        bias=-1.0,
        calibration=calibration or {"method": "platt", "a": 2.0, "b": 0.5},
    )


def test_head_roundtrip_and_calibration(tmp_path: Path) -> None:
    head = make_head()
    head.save(tmp_path / "t.json")
    loaded = load_head("t", tmp_path)
    x = np.array([[0.0, 0, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_allclose(loaded.logit(x), [-1.0, 0.0])
    want = 1 / (1 + np.exp(-(2.0 * np.array([-1.0, 0.0]) + 0.5)))
    np.testing.assert_allclose(loaded.predict_proba(x), want, rtol=1e-6)
    iso = make_head(calibration={"method": "isotonic", "x": [-1.0, 1.0], "y": [0.1, 0.9]})
    np.testing.assert_allclose(iso.predict_proba(x), [0.1, 0.5])
    with pytest.raises(ModelError, match="expects 4 features"):
        head.logit(np.zeros((1, 3)))
    bad = head.to_dict() | {"weights": [0.0] * 4}
    with pytest.raises(ModelError, match="zero"):
        LinearHead.from_dict(bad)


def test_patch_map_prefers_the_composite_head_and_falls_back(tmp_path: Path) -> None:
    from forenscope.learned.detector import PATCH_HEADS, _optional_head

    shipped = _optional_head(PATCH_HEADS, None)
    assert shipped is not None and shipped.name == "clip-patch-composite"
    load_head("clip-patch").save(tmp_path / "clip-patch.json")  # a heads dir without composites
    fallback = _optional_head(PATCH_HEADS, tmp_path)
    assert fallback is not None and fallback.name == "clip-patch"
    assert _optional_head(PATCH_HEADS, tmp_path / "empty") is None


def test_metrics() -> None:
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(y, np.array([1, 1, 1, 1])) == pytest.approx(0.5)
    assert ece(np.array([0, 1] * 50), np.full(100, 0.5)) == pytest.approx(0.0)
    assert ece(np.ones(10), np.zeros(10)) == pytest.approx(1.0)


def test_shipped_heads_are_valid() -> None:
    for name in ("clip-generated", "clip-attribution", "clip-patch", "clip-patch-composite"):
        head = load_head(name)
        assert head.dim == 512 and head.meta["encoder_sha256"] == CLIP_B16_INT8.sha256
        assert head.calibration["method"] in ("platt", "isotonic")
        assert head.meta["metrics"]["auc"] > 0.8


# -- encoder and expert on the fake encoder ---------------------------------------------------
def test_encoder_shapes_and_patch_projection(fake_encoder: Path) -> None:
    enc = ClipEncoder(fake_encoder, threads=1, batch_size=2)
    batch = np.random.default_rng(1).normal(size=(3, 3, 224, 224)).astype(np.float32)
    out = enc.encode(batch, tokens=True)
    assert out.embeds.shape == (3, 512) and out.tokens is not None
    assert out.tokens.shape == (3, 197, 768)
    patches = enc.project_patches(out.tokens)
    assert patches.shape == (3, 196, 512)
    cls_as_patch = out.tokens.copy()
    cls_as_patch[:, 1] = cls_as_patch[:, 0]  # the class token projected = the pooled output
    np.testing.assert_allclose(enc.project_patches(cls_as_patch)[:, 0], out.embeds, atol=1e-4)


def test_lazy_encoder_opens_its_session_on_first_use(fake_encoder: Path) -> None:
    enc = ClipEncoder(fake_encoder, threads=1, lazy=True)
    assert not enc.loaded
    tokens = np.random.default_rng(3).normal(0, 2, (2, 197, 768)).astype(np.float32)
    enc.project_patches(tokens)  # the projection comes from the file, not the session
    assert not enc.loaded
    out = enc.encode(np.zeros((1, 3, 224, 224), np.float32), tokens=True)
    assert enc.loaded and out.embeds.shape == (1, 512)
    assert enc.input_name == "pixel_values" and enc.token_name == "last_hidden_state"


def test_the_projection_is_saved_once_and_read_back_bit_equal_without_onnx(
    fake_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / fake_encoder.name
    model.write_bytes(fake_encoder.read_bytes())
    want = read_projection(model)
    first = cached_projection(model)
    assert len(list(tmp_path.glob("*.projection-*.npz"))) == 1
    monkeypatch.setitem(sys.modules, "onnx", None)  # any `import onnx` now raises ImportError
    again = cached_projection(model)
    for a, b, c in zip(want, first, again, strict=True):
        assert a.dtype == b.dtype == c.dtype == np.float32
        assert np.array_equal(a, b) and np.array_equal(a, c)


def test_project_tokens_matches_the_textbook_form(fake_encoder: Path) -> None:
    """The in-place layer norm and single GEMM give the per-image formula's numbers (bit-equal
    with OpenBLAS here; the tolerance leaves room for another BLAS's blocking)."""
    gamma, beta, proj = read_projection(fake_encoder)
    tokens = np.random.default_rng(4).normal(0, 3, (5, 197, 768)).astype(np.float32)
    mu = tokens.mean(-1, keepdims=True)
    var = ((tokens - mu) ** 2).mean(-1, keepdims=True)
    normed = (tokens - mu) / np.sqrt(var + LN_EPS) * gamma + beta
    want = np.stack([n @ proj for n in normed])
    got = ClipEncoder(fake_encoder, lazy=True).project_tokens(tokens)
    assert got.dtype == np.float32 and got.shape == (5, 197, 512)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def write_heads(directory: Path, encoder: Path) -> None:
    rng = np.random.default_rng(0)
    for name, classes in (
        ("clip-generated", ("real", "generated")),
        ("clip-attribution", ("gan", "diffusion")),
    ):
        head = LinearHead(
            name=name,
            feature="clip",
            classes=classes,
            mean=np.zeros(512),
            scale=np.full(512, 0.05),
            weights=rng.normal(size=512),
            bias=0.0,
            meta={"encoder_sha256": file_sha256(encoder)},
        )
        head.save(directory / f"{name}.json")


def test_expert_on_tiny_image(
    env: Path, fake_encoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_heads(env / "heads", fake_encoder)
    monkeypatch.setenv("FORENSCOPE_CLIP_HEADS", str(env / "heads"))
    rgb = np.random.default_rng(2).integers(0, 255, (40, 60, 3), dtype=np.uint8)
    result = ClipDetector().analyze(image_input(rgb))
    assert result.error is None and result.abstain_reason is None
    assert result.score is not None and 0.0 <= result.score <= 1.0
    assert result.heatmap is not None and result.heatmap.shape == (40, 60)
    assert result.heatmap.dtype == np.float32 and 0 <= result.heatmap.min() <= 1
    assert result.details["method"] in ("gan", "diffusion")
    assert 0.5 <= result.details["method_probability"] <= 1.0
    assert np.array(result.details["patch_grid"]).shape == (14, 14)
    kinds = [e.kind for e in result.evidence]
    assert kinds == ["clip.generated", "clip.method", "clip.patch_max"]
    assert f"{result.score:.2f}" in result.evidence[0].summary


def test_expert_abstains_without_model(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORENSCOPE_CLIP_ONNX")
    result = ClipDetector().analyze(image_input(np.zeros((8, 8, 3), np.uint8)))
    assert result.score is None and result.error is None
    assert "forenscope models pull" in (result.abstain_reason or "")


def test_expert_refuses_heads_of_another_encoder(env: Path) -> None:
    # the shipped heads pin the real encoder's sha256; the fake encoder differs
    result = ClipDetector().analyze(image_input(np.zeros((8, 8, 3), np.uint8)))
    assert result.score is None and "train heads" in (result.abstain_reason or "")


# -- training on a synthetic manifest ---------------------------------------------------------
def synthetic_manifest(root: Path, n: int = 30) -> Path:
    """'fake' images carry a periodic 4-px upsampling pattern and a colour cast; 'real' don't."""
    rng = np.random.default_rng(0)
    images, fake = [], []
    for i in range(2 * n):
        is_fake = i % 2 == 1
        base = rng.normal(120, 30, (1, 1, 3)) + rng.normal(0, 12, (96, 96, 3))
        if is_fake:
            grid = (np.indices((96, 96)).sum(0) % 4 < 2)[..., None] * 25.0
            base = base + grid + np.array([30.0, -10, -20])
        images.append(np.clip(base, 0, 255).astype(np.uint8))
        fake.append(is_fake)
    return write_manifest(root, images, fake)


@pytest.mark.parametrize("detector", ["fredect-generated", "clip-generated", "clip-patch"])
def test_train_beats_chance_on_held_out(env: Path, detector: str) -> None:
    manifest = synthetic_manifest(env / "data")
    out = env / "heads"
    res = CliRunner().invoke(
        train_cli,
        ["--manifest", str(manifest), "--detector", detector, "--out", str(out), "--seed", "1"],
    )
    assert res.exit_code == 0, res.output
    head = json.loads((out / f"{detector}.json").read_text())
    metrics = head["meta"]["metrics"]
    assert metrics["n"] >= 10 and metrics["auc"] >= 0.75  # held-out part, never fitted on
    card = (out / f"{detector}.md").read_text()
    assert "CC0-1.0" in card and f"--detector {detector}" in card and "| auc |" in card
    assert "Research use only" not in card  # CC0 data: no research-only banner
    # image-level heads train with 2 laundered copies per image; the patch heads as stored
    copies = 0 if detector == "clip-patch" else 2
    assert f"--launder-copies {copies}" in head["meta"]["command"]
    assert ("laundered_auc" in metrics) == bool(copies)
    assert ("augmentation" in head["meta"]) == bool(copies)
    if copies:
        assert metrics["laundered_n"] == copies * metrics["n"]  # copies follow their image
        assert "laundered_recall_at_0.5" in card and "Augmentation:" in card


def test_launder_is_seeded_per_file_and_label_blind() -> None:
    from forenscope.train.data import TrainingImage, with_laundered_copies
    from forenscope.train.launder import TRAIN_LAUNDER, copies, launder_bytes

    rng = np.random.default_rng(5)
    img = Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8))
    a, b = (launder_bytes(img, TRAIN_LAUNDER, "ab" * 32) for _ in range(2))
    assert a == b and a[:2] == b"\xff\xd8"  # same seed + file: same JPEG bytes
    specs = copies(3, seed=0)
    outs = [launder_bytes(img, spec, "ab" * 32) for spec in specs]
    assert len(set(outs)) == 3 and [s.copy for s in specs] == [1, 2, 3]
    assert launder_bytes(img, specs[0], "cd" * 32) != outs[0]  # another file, another draw
    for data in outs:
        with Image.open(io.BytesIO(data)) as out:
            assert out.format == "JPEG" and 150 <= out.width <= 300
    sample = TrainingImage(Path("x.png"), "real", "camera", "camera", "s", "CC0-1.0", "ab" * 32)
    views = with_laundered_copies([sample], 2, seed=0)
    assert [v.launder is None for v in views] == [True, False, False]
    assert len({v.key for v in views}) == 3 and {v.group for v in views} == {sample.group}
    # the label is not an input: a fake with the same file gets the same pixels
    fake = TrainingImage(Path("x.png"), "fake", "toygan", "gan", "s", "CC0-1.0", "ab" * 32)
    assert with_laundered_copies([fake], 2, 0)[1].key == views[1].key


@pytest.mark.slow
def test_real_encoder_if_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uses the encoder from the user's default cache when present (never downloads); with
    DAAM on (default) or off, the expert runs the encoder once per image."""
    import onnxruntime as ort

    path = default_cache_dir() / "models" / CLIP_B16_INT8.name / CLIP_B16_INT8.filename
    if not path.is_file():
        pytest.skip("real CLIP encoder not cached; run `forenscope models pull`")
    monkeypatch.setenv("FORENSCOPE_CLIP_ONNX", str(path))
    runs: list[list[str]] = []
    real_run = ort.InferenceSession.run

    def counting_run(self: Any, names: list[str], *args: Any, **kwargs: Any) -> Any:
        runs.append(list(names))
        return real_run(self, names, *args, **kwargs)

    monkeypatch.setattr(ort.InferenceSession, "run", counting_run)
    ramp = np.linspace(0, 255, 256, dtype=np.uint8)
    rgb = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], ramp[None, ::-1]), -1)
    image = image_input(np.ascontiguousarray(rgb))
    result = ClipDetector().analyze(image)
    assert result.error is None and result.score is not None
    assert result.heatmap is not None and result.heatmap.shape == (256, 256)
    assert np.asarray(result.details["daam"]).shape == (12, 14, 14)
    assert len(runs) == 1 and len(runs[0]) == 13  # embeddings + 12 blocks, one run
    monkeypatch.setenv("FORENSCOPE_CLIP_DAAM", "0")
    plain = ClipDetector().analyze(image)
    assert len(runs) == 2 and len(runs[1]) == 2 and "daam" not in plain.details
    assert plain.score == pytest.approx(result.score, abs=1e-6)
    np.testing.assert_allclose(plain.details["patch_grid"], result.details["patch_grid"], atol=2e-3)


def test_baseline_experts_on_tiny_image() -> None:
    from forenscope.experts.clip_detector import FreDectBaseline, GramBaseline

    rgb = np.random.default_rng(3).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    for expert in (FreDectBaseline(), GramBaseline()):
        result = expert.analyze(image_input(rgb))
        assert result.error is None and result.score is not None and 0 <= result.score <= 1
        assert 0 < result.confidence < 1  # weak baseline: confidence from its held-out AUC
        assert "P(generated)" in result.evidence[0].summary
