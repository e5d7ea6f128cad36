"""CNNSpot-style baseline: shipped ONNX inference, training on a synthetic manifest, the CLI."""

from __future__ import annotations

import json
import shutil
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from forenscope.errors import MissingDependencyError, ModelError
from forenscope.eval.classification import auc as roc_auc
from forenscope.experts.cnn_baseline import CnnBaseline
from forenscope.io.input import ImageInput
from forenscope.learned.cnn import CNN_NAME, CnnModel, CnnSidecar, calibrate_logit
from forenscope.learned.heads import HEADS_PACKAGE
from forenscope.learned.preprocess import align_image
from forenscope.train.cli import train_cli
from manifest_fixtures import write_manifest


def shipped_dir(tmp_path: Path) -> Path:
    """A copy of the shipped .onnx + .json, so a test may tamper with it."""
    src = resources.files(HEADS_PACKAGE)
    for ext in ("onnx", "json"):
        with resources.as_file(src.joinpath(f"{CNN_NAME}.{ext}")) as f:
            shutil.copy(f, tmp_path / f"{CNN_NAME}.{ext}")
    return tmp_path


def image_input(rgb: np.ndarray) -> ImageInput:
    return ImageInput(rgb=rgb, data=rgb.tobytes(), format="PNG", mode="RGB")


# -- inference of the shipped model (onnxruntime only) ----------------------------------------
def test_shipped_model_loads_and_scores_tiny_images() -> None:
    model = CnnModel.load()
    assert model.sidecar.calibration["method"] == "platt"
    assert 0.5 < model.sidecar.meta["metrics"]["auc"] <= 1.0
    rng = np.random.default_rng(0)
    rgbs = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) for _ in range(2)]
    rgbs[1] = np.full((40, 24, 3), 128, np.uint8)  # a flat image scores differently
    both = model.predict(rgbs)
    one_by_one = np.concatenate([model.predict([r]) for r in rgbs])
    assert both.shape == (2,) and np.all((both >= 0) & (both <= 1))
    assert np.allclose(both, one_by_one, atol=1e-6)
    assert abs(both[0] - both[1]) > 1e-4
    z = model.logits(np.stack([align_image(Image.fromarray(r)) for r in rgbs]))
    assert np.allclose(calibrate_logit(z, model.sidecar.calibration), both)


def test_tampered_hash_is_refused(tmp_path: Path) -> None:
    directory = shipped_dir(tmp_path)
    CnnModel.load(directory=directory)  # intact copy loads
    side = directory / f"{CNN_NAME}.json"
    data = json.loads(side.read_text())
    data["onnx_sha256"] = "0" * 64
    side.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="sha256"):
        CnnModel.load(directory=directory)


def test_sidecar_roundtrip_and_malformed() -> None:
    side = CnnSidecar("x", "x.onnx", "ab" * 32, calibration={"method": "platt", "a": 2, "b": -1})
    again = CnnSidecar.from_dict(json.loads(json.dumps(side.to_dict())))
    assert again == side
    with pytest.raises(ModelError):
        CnnSidecar.from_dict({"name": "x"})
    assert calibrate_logit(np.array([0.5]), side.calibration)[0] == pytest.approx(0.5)


def test_expert_scores_and_abstains(monkeypatch: pytest.MonkeyPatch) -> None:
    expert = CnnBaseline()
    assert expert.spec.default is False
    rgb = np.random.default_rng(3).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    result = expert.analyze(image_input(rgb))
    assert result.error is None and result.score is not None and 0 <= result.score <= 1
    assert 0 < result.confidence < 1
    assert "P(generated)" in result.evidence[0].summary and "CNN" in result.evidence[0].summary
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    missing = expert.analyze(image_input(rgb))
    assert missing.score is None and "onnxruntime" in (missing.abstain_reason or "")
    with pytest.raises(MissingDependencyError):
        CnnModel.load()


# -- training (torch) -------------------------------------------------------------------------
def synthetic_images(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """'generated': smooth texture with a periodic 2x-upsampling pattern and a warm cast;
    'real': camera-like white noise on a flat colour. Labels alternate."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(n):
        fake = i % 2 == 1
        base = rng.normal(120, 25, (1, 1, 3)) + rng.normal(0, 10, (size, size, 3))
        if fake:
            low = rng.normal(0, 14, (size // 2, size // 2, 3)).repeat(2, 0).repeat(2, 1)
            base = base * 0.3 + 0.7 * base.mean() + low + np.array([18.0, 0, -18])
        images.append(np.clip(base, 0, 255).astype(np.uint8))
        labels.append(int(fake))
    return np.stack(images), np.array(labels)


def test_fit_beats_chance_and_onnx_matches_torch(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from forenscope.train.cnn import CnnConfig, fit_cnn

    x, y = synthetic_images(64, 64, seed=0)
    cfg = CnnConfig(widths=(8, 16, 32), crop=48, epochs=5, batch=16, seed=1)
    fitted = fit_cnn(x[:40], y[:40], cfg)
    z = fitted.logits(x[40:])
    assert roc_auc(y[40:], z) > 0.7  # never seen images
    short = CnnConfig(widths=(8, 16, 32), crop=48, epochs=1, batch=8, seed=2)
    a, b = (fit_cnn(x[:16], y[:16], short).logits(x[40:]) for _ in range(2))
    assert np.array_equal(a, b)  # seeded and deterministic
    onnx_path = tmp_path / "m.onnx"
    fitted.export_onnx(onnx_path, 64)
    from forenscope.models.cache import file_sha256

    model = CnnModel(onnx_path, CnnSidecar("m", "m.onnx", file_sha256(onnx_path), 64))
    ort_z = model.logits(x[40:])  # several batches: dynamic batch axis
    assert np.allclose(ort_z, z, atol=1e-3 * max(1.0, float(np.abs(z).max())))


def synthetic_manifest(root: Path, n: int = 40) -> Path:
    x, y = synthetic_images(n, 96, seed=5)
    return write_manifest(root, list(x), [bool(v) for v in y])


def test_train_cli_writes_onnx_sidecar_and_card(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    manifest = synthetic_manifest(tmp_path / "data")
    out = tmp_path / "heads"
    args = ["--manifest", str(manifest), "--detector", "cnn-generated", "--out", str(out)]
    res = CliRunner().invoke(train_cli, [*args, "--seed", "1", "--epochs", "1"])
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} == {f"{CNN_NAME}.{e}" for e in ("onnx", "json", "md")}
    model = CnnModel.load(directory=out)  # the hash in the sidecar matches
    meta = model.sidecar.meta
    assert meta["metrics"]["n"] >= 6 and meta["metrics"]["n_train"] >= 20
    assert meta["onnx_vs_torch_max_abs_logit_diff"] < 1e-3
    card = (out / f"{CNN_NAME}.md").read_text()
    assert "CC0-1.0" in card and "--detector cnn-generated" in card and "| auc |" in card
    assert "--epochs 1" in card and "Research use only" not in card
