"""Attention-flow view (DAAM) on the tiny fake encoder; one slow test on the real model."""

from __future__ import annotations

import csv
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forenscope.errors import MissingDependencyError, ModelError
from forenscope.experts.clip_detector import ClipDetector
from forenscope.io.input import ImageInput
from forenscope.learned.daam import (
    DaamExplainer,
    DaamResult,
    accumulate,
    blocks_graph,
    compact_maps,
)
from forenscope.learned.detector import ClipDetectorModel, DetectorOutput
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


def test_a_built_block_graph_is_reused_without_importing_onnx(
    fake_blocks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = file_sha256(fake_blocks)
    variant, names = blocks_graph(fake_blocks, sha)
    assert variant.with_suffix(".json").is_file()
    monkeypatch.setitem(sys.modules, "onnx", None)  # any `import onnx` now raises ImportError
    assert blocks_graph(fake_blocks, sha) == (variant, names)
    # without the names file the graph must be read again, which needs onnx
    variant.with_suffix(".json").write_text("not json")
    with pytest.raises(MissingDependencyError):
        blocks_graph(fake_blocks, sha)


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


def run_expert(
    monkeypatch: pytest.MonkeyPatch, encoder: Path, tmp_path: Path, rgb: np.ndarray | None = None
) -> dict[str, Any]:
    write_heads(tmp_path / "heads", encoder)
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FORENSCOPE_CLIP_ONNX", str(encoder))
    monkeypatch.setenv("FORENSCOPE_CLIP_HEADS", str(tmp_path / "heads"))
    result = ClipDetector().analyze(image_input(ramp_rgb() if rgb is None else rgb))
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
    assert out["details"]["patch_grid"] == plain["details"]["patch_grid"]
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


# -- one encoder pass for the score, the patch map and DAAM (issue 3) ------------------------
def assert_same(
    one: tuple[DetectorOutput, DaamResult], two: tuple[DetectorOutput, DaamResult]
) -> None:
    """Single-pass and two-pass results agree to float tolerance, field by field."""
    (p1, d1), (p2, d2) = one, two
    assert p1.p_generated == pytest.approx(p2.p_generated, abs=1e-7)
    assert p1.logit == pytest.approx(p2.logit, abs=1e-6)
    assert (p1.p_diffusion is None) == (p2.p_diffusion is None)
    if p1.p_diffusion is not None:
        assert p1.p_diffusion == pytest.approx(p2.p_diffusion, abs=1e-7)
    assert p1.grid is not None and p2.grid is not None
    np.testing.assert_allclose(p1.grid, p2.grid, atol=1e-6)
    for name in ("relevance", "accumulated", "patch_mean", "cls_score"):
        np.testing.assert_allclose(getattr(d1, name), getattr(d2, name), atol=1e-6)


def test_one_pass_equals_two_passes(explainer: DaamExplainer, fake_blocks: Path) -> None:
    attribution = make_head("a", fake_blocks, 2)
    model = ClipDetectorModel(explainer.encoder, explainer.generated, attribution, explainer.patch)
    rgb = np.random.default_rng(5).integers(0, 255, (90, 70, 3), dtype=np.uint8)
    one = explainer.predict_and_explain(model, rgb)
    assert_same(one, (model.predict([rgb])[0], explainer.explain(rgb)))
    assert one[0].p_diffusion is not None  # the attribution head is served too
    # the pass also has the plain graph's outputs (batched: to float rounding, as ORT's
    # kernels may tile a batch of 2 and two runs of 1 differently)
    batch = np.random.default_rng(6).normal(size=(2, 3, 224, 224)).astype(np.float32)
    out, plain = explainer.run(batch), model.encoder.encode(batch, tokens=True)
    assert out.tokens is not None and plain.tokens is not None
    np.testing.assert_allclose(out.embeds, plain.embeds, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.tokens, plain.tokens, rtol=1e-5, atol=1e-5)
    assert out.blocks.shape == (2, 3, 197, 768)


@pytest.fixture
def ort_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts onnxruntime sessions created and `run` calls, over every session."""
    import onnxruntime as ort

    calls: Counter[str] = Counter()
    init, run = ort.InferenceSession.__init__, ort.InferenceSession.run

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        calls["sessions"] += 1
        init(self, *args, **kwargs)

    def counting_run(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["runs"] += 1
        return run(self, *args, **kwargs)

    monkeypatch.setattr(ort.InferenceSession, "__init__", counting_init)
    monkeypatch.setattr(ort.InferenceSession, "run", counting_run)
    return calls


def test_expert_runs_one_session_once_per_image(
    fake_blocks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ort_calls: Counter[str]
) -> None:
    rgbs = [ramp_rgb(), np.random.default_rng(7).integers(0, 255, (50, 80, 3), dtype=np.uint8)]
    outs = [run_expert(monkeypatch, fake_blocks, tmp_path, rgb) for rgb in rgbs]
    assert ort_calls == Counter(sessions=1, runs=2)  # the block graph only, one run per image
    for out in outs:
        assert {"daam", "daam_flow", "patch_grid", "p_generated"} <= set(out["details"])
    assert outs[0]["details"]["patch_grid"] != outs[1]["details"]["patch_grid"]


def test_expert_without_daam_runs_the_plain_graph_once(
    fake_blocks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ort_calls: Counter[str]
) -> None:
    monkeypatch.setenv("FORENSCOPE_CLIP_DAAM", "0")
    out = run_expert(monkeypatch, fake_blocks, tmp_path)
    assert ort_calls == Counter(sessions=1, runs=1)
    assert "daam" not in out["details"] and "daam_unavailable" not in out["details"]
    assert "patch_grid" in out["details"]


def test_expert_fallback_runs_the_plain_graph_once(
    fake_plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ort_calls: Counter[str]
) -> None:
    out = run_expert(monkeypatch, fake_plain, tmp_path)
    assert ort_calls == Counter(sessions=1, runs=1)
    assert "per-block outputs" in out["details"]["daam_unavailable"]


def test_expert_from_threads_builds_one_session(
    fake_blocks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ort_calls: Counter[str]
) -> None:
    write_heads(tmp_path / "heads", fake_blocks)
    monkeypatch.setenv("FORENSCOPE_CLIP_ONNX", str(fake_blocks))
    monkeypatch.setenv("FORENSCOPE_CLIP_HEADS", str(tmp_path / "heads"))
    image = image_input(ramp_rgb())
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: ClipDetector().analyze(image), range(8)))
    assert ort_calls == Counter(sessions=1, runs=8)
    assert all(r.error is None and r.details["daam"] == results[0].details["daam"] for r in results)


def real_photo(shared_data: Path) -> np.ndarray:
    """The first real photograph of at least 256 px in the shared manifest."""
    from PIL import Image

    with open(shared_data / "manifest.csv", newline="") as fh:
        row = next(
            r
            for r in csv.DictReader(fh)
            if r["label"] == "real" and min(int(r["width"]), int(r["height"])) >= 256
        )
    with Image.open(shared_data / row["path"]) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.slow
def test_real_encoder_one_pass_equals_two_passes(shared_data: Path) -> None:
    """Cached INT8 model, real photo: the single pass gives the two passes' numbers; prints
    the time of each on one core."""
    path = default_cache_dir() / "models" / CLIP_B16_INT8.name / CLIP_B16_INT8.filename
    if not path.is_file():
        pytest.skip("real CLIP encoder not cached; run `forenscope models pull`")
    model = ClipDetectorModel.load(path, threads=1)
    explainer = DaamExplainer(model.encoder, model.generated, model.patch, threads=1)
    assert explainer.n_blocks == 12 and explainer.hidden_name == model.encoder.token_name
    rgb = real_photo(shared_data)
    explainer.predict_and_explain(model, rgb)  # warm both sessions and the projection
    two = (model.predict([rgb])[0], explainer.explain(rgb))
    t0 = time.perf_counter()
    two = (model.predict([rgb])[0], explainer.explain(rgb))
    t1 = time.perf_counter()
    one = explainer.predict_and_explain(model, rgb)
    t2 = time.perf_counter()
    print(f"\ntwo passes {1000 * (t1 - t0):.0f} ms, one pass {1000 * (t2 - t1):.0f} ms")
    assert_same(one, two)
    result = one[1]
    assert one[0].grid is not None and result.accumulated.shape == (12, 14, 14)
    assert result.patch_mean[-1] == pytest.approx(float(one[0].grid.mean()), abs=1e-4)
    # INT8 projection in the graph vs dequantised numpy: close, not bit-equal
    assert result.cls_score[-1] == pytest.approx(one[0].p_generated, abs=0.02)


def test_face_crops_are_scored_through_the_same_session(
    fake_blocks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ort_calls: Counter[str]
) -> None:
    from forenscope.experts.clip_detector import score_images

    rgb = np.random.default_rng(8).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    out = run_expert(monkeypatch, fake_blocks, tmp_path, rgb)
    (pred,) = score_images([rgb])  # what face_clip calls for each face crop
    assert ort_calls == Counter(sessions=1, runs=2)  # no second ~200 MB session
    assert pred.grid is None
    assert pred.p_generated == pytest.approx(out["details"]["p_generated"], abs=1e-4)
