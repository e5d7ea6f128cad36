"""Attention-flow view (DAAM) on the tiny fake encoder; one slow test on the real model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forenscope.errors import ModelError
from forenscope.experts.clip_detector import ClipDetector
from forenscope.io.input import ImageInput
from forenscope.learned.daam import (
    DaamExplainer,
    DaamResult,
    accumulate,
    blocks_graph,
    compact_maps,
)
from forenscope.learned.detector import ClipDetectorModel
from forenscope.learned.encoder import ClipEncoder
from forenscope.learned.fake_encoder import build_fake_encoder
from forenscope.learned.heads import LinearHead
from forenscope.models.cache import default_cache_dir
from forenscope.models.registry import CLIP_B16_INT8
from forenscope.models.sources import file_sha256


def ramp_rgb(size: int = 64) -> np.ndarray:
    ramp = np.linspace(0, 255, size, dtype=np.uint8)
    rgb = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], ramp[None, ::-1]), -1)
    return np.ascontiguousarray(rgb)


def image_input(rgb: np.ndarray) -> ImageInput:
    return ImageInput(rgb=rgb, data=rgb.tobytes(), format="PNG", mode="RGB")


def make_head(name: str, encoder: Path, seed: int) -> LinearHead:
    return LinearHead(
        name=name,
        feature="clip",
        classes=("real", "generated"),
        mean=np.zeros(512),
        scale=np.full(512, 0.05),
        weights=np.random.default_rng(seed).normal(size=512),
        bias=0.0,
        calibration={"method": "platt", "a": 0.5, "b": 0.1},
        meta={"encoder_sha256": file_sha256(encoder)},
    )


@pytest.fixture(scope="module")
def fake_blocks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fake_encoder(tmp_path_factory.mktemp("daam") / "fake.onnx", blocks=2)


@pytest.fixture(scope="module")
def fake_plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_fake_encoder(tmp_path_factory.mktemp("plain") / "fake.onnx", blocks=0)


@pytest.fixture(scope="module")
def explainer(fake_blocks: Path) -> DaamExplainer:
    enc = ClipEncoder(fake_blocks, threads=1)
    gen, patch = make_head("g", fake_blocks, 0), make_head("p", fake_blocks, 1)
    return DaamExplainer(enc, gen, patch, threads=1)


def test_block_graph_is_built_once_and_named_by_sha(fake_blocks: Path) -> None:
    import onnx

    sha = file_sha256(fake_blocks)
    variant, names = blocks_graph(fake_blocks, sha)
    assert variant.parent == fake_blocks.parent and sha[:16] in variant.name
    assert names[-1] == "last_hidden_state" and len(names) == 3
    onnx.checker.check_model(str(variant))
    assert names[0] in {o.name for o in onnx.load(str(variant)).graph.output}
    mtime = variant.stat().st_mtime_ns
    assert blocks_graph(fake_blocks, sha) == (variant, names)
    assert variant.stat().st_mtime_ns == mtime  # cached, not rewritten


def test_shapes_and_accumulation(explainer: DaamExplainer) -> None:
    result = explainer.explain(ramp_rgb())
    assert explainer.n_blocks == 3
    assert result.relevance.shape == result.accumulated.shape == (3, 14, 14)
    assert result.cls_score.shape == result.patch_mean.shape == (3,)
    assert np.all((result.accumulated >= 0) & (result.accumulated <= 1))
    total = result.relevance.astype(np.float64).sum(0)
    np.testing.assert_allclose(result.accumulated[-1], total / total.max(), atol=1e-6)
    # the fake blocks rescale channels differently, so the per-block views must differ
    assert not np.allclose(result.relevance[0], result.relevance[1])
    maps = compact_maps(result.accumulated)
    assert len(maps) == 3 and len(maps[0]) == 14 and len(maps[0][0]) == 14
    assert all(round(v, 3) == v for v in maps[-1][0])


def test_last_block_matches_the_detector(explainer: DaamExplainer) -> None:
    model = ClipDetectorModel(explainer.encoder, explainer.generated, patch=explainer.patch)
    rgb = ramp_rgb()
    pred = model.predict([rgb])[0]
    result = explainer.explain(rgb)
    assert pred.grid is not None
    assert result.cls_score[-1] == pytest.approx(pred.p_generated, abs=1e-3)
    assert result.patch_mean[-1] == pytest.approx(float(pred.grid.mean()), abs=1e-5)


def test_accumulate_and_decision_block() -> None:
    assert np.all(accumulate(np.zeros((4, 2, 2))) == 0)  # nothing relevant: zeros, not NaN
    rel = np.zeros((3, 2, 2))
    rel[0, 0, 0], rel[2, 1, 1] = 1.0, 3.0
    acc = accumulate(rel)
    np.testing.assert_allclose(acc[0], np.array([[1.0, 0.0], [0.0, 0.0]]))
    np.testing.assert_allclose(acc[2], np.array([[1 / 3, 0.0], [0.0, 1.0]]))
    maps = np.zeros((4, 2, 2), dtype=np.float32)
    flips = DaamResult(maps, maps, np.zeros(4), np.array([0.9, 0.2, 0.7, 0.8]))
    assert flips.decision_block == 2 and flips.first_block == 0
    steady = DaamResult(maps, maps, np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]))
    assert steady.decision_block == steady.first_block == 0


def test_missing_block_outputs_give_a_clear_reason(fake_plain: Path) -> None:
    enc = ClipEncoder(fake_plain, threads=1)
    head = make_head("g", fake_plain, 0)
    with pytest.raises(ModelError, match="no contiguous per-block outputs"):
        DaamExplainer(enc, head, head)
    assert not list(fake_plain.parent.glob("*.blocks-*.onnx"))


def write_heads(directory: Path, encoder: Path) -> None:
    make_head("clip-generated", encoder, 0).save(directory / "clip-generated.json")


def run_expert(monkeypatch: pytest.MonkeyPatch, encoder: Path, tmp_path: Path) -> dict[str, Any]:
    write_heads(tmp_path / "heads", encoder)
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FORENSCOPE_CLIP_ONNX", str(encoder))
    monkeypatch.setenv("FORENSCOPE_CLIP_HEADS", str(tmp_path / "heads"))
    result = ClipDetector().analyze(image_input(ramp_rgb()))
    assert result.error is None and result.score is not None
    return {"score": result.score, "details": result.details, "evidence": result.evidence}


def test_expert_details_and_score_unchanged(
    fake_blocks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORENSCOPE_CLIP_DAAM", "0")
    plain = run_expert(monkeypatch, fake_blocks, tmp_path)
    assert "daam" not in plain["details"]
    monkeypatch.setenv("FORENSCOPE_CLIP_DAAM", "1")
    out = run_expert(monkeypatch, fake_blocks, tmp_path)
    assert out["score"] == plain["score"]
    daam = np.asarray(out["details"]["daam"])
    assert daam.shape == (3, 14, 14) and daam[-1].max() == pytest.approx(1.0)
    flow = out["details"]["daam_flow"]
    assert flow["blocks"] == 3 and 1 <= flow["decision_block"] <= 3
    lines = [e for e in out["evidence"] if e.kind == "clip.decision_block"]
    assert len(lines) == 1 and f"block {flow['decision_block']} of 3" in lines[0].summary


def test_expert_without_block_outputs_still_scores(
    fake_plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = run_expert(monkeypatch, fake_plain, tmp_path)
    assert "daam" not in out["details"]
    assert "per-block outputs" in out["details"]["daam_unavailable"]
    assert all(e.kind != "clip.decision_block" for e in out["evidence"])


@pytest.mark.slow
def test_real_encoder_blocks_and_timing() -> None:
    """12 blocks from the cached INT8 model; prints the extra time per image on one core."""
    path = default_cache_dir() / "models" / CLIP_B16_INT8.name / CLIP_B16_INT8.filename
    if not path.is_file():
        pytest.skip("real CLIP encoder not cached; run `forenscope models pull`")
    model = ClipDetectorModel.load(path, threads=1)
    explainer = DaamExplainer(model.encoder, model.generated, model.patch, threads=1)
    assert explainer.n_blocks == 12
    rgb = ramp_rgb(256)
    model.predict([rgb])  # warm both sessions
    explainer.explain(rgb)
    t0 = time.perf_counter()
    pred = model.predict([rgb])[0]
    t1 = time.perf_counter()
    result = explainer.explain(rgb)
    t2 = time.perf_counter()
    print(f"\nplain detector {1000 * (t1 - t0):.0f} ms, DAAM extra {1000 * (t2 - t1):.0f} ms")
    assert result.accumulated.shape == (12, 14, 14)
    assert pred.grid is not None
    assert result.patch_mean[-1] == pytest.approx(float(pred.grid.mean()), abs=1e-4)
    # INT8 projection in the graph vs dequantised numpy: close, not bit-equal
    assert result.cls_score[-1] == pytest.approx(pred.p_generated, abs=0.02)
