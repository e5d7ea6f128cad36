"""Fusion rules on hand-built expert results (no real expert is run)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

import forenscope.fusion.verdict as fusion_module
from forenscope.fusion import map_fitted as map_fusion
from forenscope.fusion.decision import PROVENANCE_PROBABILITY
from forenscope.fusion.maps import compact_region_dominates, fuse_heatmaps
from forenscope.fusion.summary import summarise_all
from forenscope.fusion.verdict import (
    PRIOR,
    fitted_model,
    fuse,
    handset_probabilities,
)
from forenscope.fusion.verdict_model import (
    LABELS,
    WEIGHTS_FILE,
    VerdictModel,
    features,
    shipped_model,
)
from forenscope.types import ErrorInfo, Evidence, ExpertResult, Target

H, W = 120, 160


def expert(
    name: str,
    targets: Target,
    score: float | None,
    *,
    confidence: float = 1.0,
    evidence: list[Evidence] | None = None,
    heatmap: np.ndarray | None = None,
    details: dict[str, object] | None = None,
    error: ErrorInfo | None = None,
) -> ExpertResult:
    return ExpertResult(
        expert=name,
        version="0",
        targets=targets,
        score=score,
        confidence=confidence,
        abstain_reason=None if score is not None else "cannot judge",
        evidence=evidence or [Evidence(kind=f"{name}.fact", summary=f"{name} saw something")],
        heatmap=heatmap,
        has_heatmap=heatmap is not None,
        details=details or {},
        error=error,
    )


def blob_map(height: int = H, width: int = W, box: tuple[int, int, int, int] = (10, 10, 40, 50)):
    y0, x0, y1, x1 = box
    m = np.full((height, width), 0.1, dtype=np.float32)
    m[y0:y1, x0:x1] = 0.95
    return m


def assert_distribution(probabilities: dict[str, float]) -> None:
    assert set(probabilities) == {"real", "ai_generated", "tampered"}
    assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-9)
    assert all(0.0 <= p <= 1.0 for p in probabilities.values())


def test_abstainers_and_errors_never_vote() -> None:
    base = [expert("copy_move", "tampered", 0.9), expert("spectrum", "ai_generated", 0.2)]
    noisy = [
        *base,
        expert("c2pa_manifest", "both", None),
        expert(
            "ela",
            "both",
            0.99,
            error=ErrorInfo(type="ValueError", message="boom"),
            evidence=[Evidence(kind="x", summary="fake proof", proves="ai_generated")],
        ),
    ]
    clean, extra = fuse(base, height=H, width=W), fuse(noisy, height=H, width=W)
    assert extra.verdict == clean.verdict
    assert set(extra.contributions) == {"copy_move", "spectrum"}
    assert all(ev.summary != "fake proof" for ev in extra.key_evidence)


def test_nobody_judged_gives_prior_and_says_so() -> None:
    fused = fuse(
        [expert("ela", "both", None), expert("noise", "tampered", None)], height=H, width=W
    )
    assert fused.verdict.decided_by == "none"
    assert fused.verdict.label == "inconclusive" and fused.verdict.leaning == "real"
    assert fused.verdict.probabilities == pytest.approx(PRIOR)
    assert fused.verdict.calibrated is False
    assert fused.heatmap is None and fused.key_evidence == []
    assert "no expert" in fused.attribution.basis


def test_provenance_dominates_expert_votes() -> None:
    proof = Evidence(
        kind="generator.parameters",
        summary="PNG text chunk 'parameters' names sampler 'Euler a'",
        proves="ai_generated",
    )
    results = [
        expert("ela", "both", 0.05),
        expert("noise", "tampered", 0.05),
        expert("spectrum", "ai_generated", 0.03),
        expert("generator_metadata", "ai_generated", 1.0, evidence=[proof]),
    ]
    fused = fuse(results, height=H, width=W)
    assert fused.verdict.label == "ai_generated"
    assert fused.verdict.decided_by == "provenance"
    assert fused.verdict.probability == pytest.approx(PROVENANCE_PROBABILITY)
    assert fused.key_evidence[0] == proof
    assert_distribution(fused.verdict.probabilities)


@pytest.mark.parametrize("seed", range(12))
def test_probabilities_form_a_distribution(seed: int) -> None:
    rng = np.random.default_rng(seed)
    targets: list[Target] = ["ai_generated", "tampered", "both"]
    results = [
        expert(f"e{i}", targets[int(rng.integers(3))], float(rng.random()), confidence=rng.random())
        for i in range(int(rng.integers(1, 7)))
    ]
    verdict = fuse(results, height=H, width=W).verdict
    assert_distribution(verdict.probabilities)
    assert verdict.probability == verdict.probabilities[verdict.leaning]
    assert verdict.leaning == max(verdict.probabilities, key=lambda k: verdict.probabilities[k])
    assert verdict.label in (verdict.leaning, "inconclusive")


def test_strong_tamper_expert_wins_over_quiet_global_experts() -> None:
    results = [
        expert("copy_move", "tampered", 0.95, heatmap=blob_map()),
        expert("ela", "both", 0.3),
        expert("noise", "tampered", 0.35),
        expert("spectrum", "ai_generated", 0.2),
    ]
    fused = fuse(results, height=H, width=W)
    assert fused.verdict.label == "tampered"
    assert fused.verdict.decided_by == "experts"
    assert fused.verdict.probabilities["tampered"] > 0.6
    assert fused.attribution.scope == "local"
    assert fused.key_evidence[0].kind == "copy_move.fact"
    assert fused.contributions["copy_move"] > 0 > fused.contributions["spectrum"]


def test_silent_tamper_detector_does_not_cancel_a_firing_one() -> None:
    # each tamper detector looks for one kind of trace: silence is weaker than a detection
    results = [
        expert("jpeg_artifacts", "tampered", 1.0),
        expert("noise", "tampered", 0.0),
        expert("ela", "tampered", 0.5),
    ]
    fused = fuse(results, height=H, width=W)
    assert fused.verdict.label == "tampered"
    assert fused.contributions["jpeg_artifacts"] > -fused.contributions["noise"] > 0


def test_agreement_adds_evidence() -> None:
    one = fuse([expert("a", "tampered", 0.8)], height=H, width=W).verdict
    two = fuse([expert("a", "tampered", 0.8), expert("b", "tampered", 0.8)], height=H, width=W)
    assert two.verdict.probabilities["tampered"] > one.probabilities["tampered"]


def test_strong_generation_expert_gives_ai_generated_and_method() -> None:
    results = [
        expert("clip_probe", "ai_generated", 0.93, details={"method": "diffusion"}),
        expert("noise", "tampered", 0.2),
    ]
    fused = fuse(results, height=H, width=W)
    assert fused.verdict.label == "ai_generated"
    assert fused.attribution.method == "diffusion"
    assert fused.attribution.scope == "global"
    assert "clip_probe" in fused.attribution.basis


def test_method_vote_weighs_score_and_method_probability() -> None:
    results = [
        expert(
            "clip_detector",
            "ai_generated",
            0.9,
            details={"method": "gan", "method_probability": 0.55},
        ),
        expert(
            "other",
            "ai_generated",
            0.9,
            details={"method": "diffusion", "method_probability": 0.95},
        ),
        expert("quiet", "ai_generated", 0.2, details={"method": "gan"}),  # found nothing: no vote
    ]
    attribution = fuse(results, height=H, width=W).attribution
    assert attribution.method == "diffusion"
    assert "other" in attribution.basis and "quiet" not in attribution.basis


def test_clean_scores_give_real_and_no_scope() -> None:
    results = [expert("ela", "both", 0.1), expert("spectrum", "ai_generated", 0.15)]
    fused = fuse(results, height=H, width=W)
    assert fused.verdict.label == "real"
    assert fused.verdict.probabilities["real"] > PRIOR["real"] + 0.1
    assert fused.attribution.scope == "none"


def test_higher_score_raises_tamper_probability() -> None:
    probs = [
        fuse(
            [expert("noise", "tampered", s), expert("ela", "both", 0.4)], height=H, width=W
        ).verdict.probabilities["tampered"]
        for s in (0.1, 0.5, 0.7, 0.9)
    ]
    assert probs == sorted(probs) and probs[-1] > probs[0] + 0.3


def test_fused_map_follows_the_confident_expert_and_ignores_flat_noise() -> None:
    rng = np.random.default_rng(0)
    noise = rng.uniform(0.0, 0.3, size=(60, 80)).astype(np.float32)
    results = [
        expert("copy_move", "tampered", 0.9, heatmap=blob_map(60, 80, (5, 5, 20, 25))),
        expert("noise", "tampered", 0.3, heatmap=noise),
        expert("spectrum", "ai_generated", 0.9, heatmap=np.ones((60, 80), np.float32)),
    ]
    heatmap = fuse(results, height=H, width=W).heatmap
    assert heatmap is not None and heatmap.shape == (H, W) and heatmap.dtype == np.float32
    # the blob (rows 10-40, cols 10-50 at image size) is hot; the rest stays cold
    assert heatmap[15:35, 15:45].mean() > 0.6
    outside = heatmap.copy()
    outside[5:45, 5:55] = 0
    assert outside.max() < 0.3


def test_maps_of_clean_verdict_experts_stay_low() -> None:
    results = [expert("ela", "both", 0.1, heatmap=blob_map())]
    heatmap = fuse(results, height=H, width=W).heatmap
    assert heatmap is not None and heatmap.max() < 0.5


def test_only_tamper_experts_feed_the_map() -> None:
    results = [expert("spectrum", "ai_generated", 0.9, heatmap=blob_map())]
    assert fuse(results, height=H, width=W).heatmap is None


def test_compact_region_detection() -> None:
    assert compact_region_dominates(blob_map(box=(10, 10, 40, 50)) - 0.1)
    assert not compact_region_dominates(np.full((H, W), 0.9, np.float32))
    assert not compact_region_dominates(np.zeros((H, W), np.float32))


# --- fitted verdict (verdict_model.py) --------------------------------------------------------

TOY_EXPERTS = ("copy_move", "spectrum", "c2pa")


def toy_model(*, temperature: float = 1.0, required: tuple[str, ...] = ()) -> VerdictModel:
    # rows: real, ai_generated, tampered; one feature per expert: its clipped logit (0 = abstained)
    coef = np.zeros((3, 3))
    coef[2, 0] = 1.5  # copy_move's logit pushes "tampered"
    coef[1, 1] = 1.0  # spectrum's logit pushes "ai_generated"
    return VerdictModel(
        experts=TOY_EXPERTS,
        map_experts=(),
        coef=coef,
        intercept=np.array([0.5, 0.0, 0.0]),
        temperature=temperature,
        thresholds={"real": 0.6, "ai_generated": 0.6, "tampered": 0.6},
        required=required,
        calibrated=True,
    )


def toy_results(copy_move: float | None, spectrum: float | None) -> list[ExpertResult]:
    return [
        expert("copy_move", "tampered", copy_move),
        expert("spectrum", "ai_generated", spectrum),
        expert("c2pa", "both", None),
    ]


def test_features_read_abstention_as_no_opinion() -> None:
    x = features(summarise_all(toy_results(0.98, None)), TOY_EXPERTS, ())
    assert math.isclose(x[0], math.log(0.98 / 0.02)) and x[1] == 0.0 and x[2] == 0.0
    half = features(summarise_all(toy_results(0.98, 0.5)), TOY_EXPERTS, ())
    assert half[1] == 0.0  # a judged 0.5 is as neutral as an abstention: no format indicator


def test_fitted_model_gives_calibrated_probabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    model = toy_model()
    monkeypatch.setattr(fusion_module, "fitted_model", lambda: model)
    fused = fuse(toy_results(0.95, 0.1), height=H, width=W)
    assert fused.verdict.calibrated and fused.verdict.label == "tampered"
    assert_distribution(fused.verdict.probabilities)
    expected = model.probabilities(summarise_all(toy_results(0.95, 0.1)))
    assert fused.verdict.probabilities == pytest.approx(expected)
    assert fused.contributions["copy_move"] > 0 > fused.contributions["spectrum"]


def test_below_its_threshold_the_verdict_is_inconclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    model = dataclasses.replace(toy_model(), thresholds=dict.fromkeys(LABELS, 0.99))
    monkeypatch.setattr(fusion_module, "fitted_model", lambda: model)
    verdict = fuse(toy_results(0.95, 0.1), height=H, width=W).verdict
    assert verdict.label == "inconclusive" and not verdict.decided
    assert verdict.leaning == "tampered" and verdict.probability < 0.99


def test_model_is_not_extrapolated_when_a_required_expert_abstains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = toy_model(required=("spectrum",))
    monkeypatch.setattr(fusion_module, "fitted_model", lambda: model)
    assert fuse(toy_results(0.95, 0.1), height=H, width=W).verdict.calibrated
    unseen = toy_results(0.95, None)  # spectrum judged every training image
    fused = fuse(unseen, height=H, width=W)
    assert not fused.verdict.calibrated
    assert fused.verdict.probabilities == pytest.approx(handset_probabilities(unseen))


def test_temperature_softens_without_changing_the_leaning() -> None:
    sharp, soft = toy_model(), toy_model(temperature=3.0)
    summaries = summarise_all(toy_results(0.9, 0.2))
    p, q = sharp.probabilities(summaries), soft.probabilities(summaries)
    assert max(p, key=lambda c: p[c]) == max(q, key=lambda c: q[c])
    assert max(q.values()) < max(p.values())


def test_provenance_still_overrides_the_fitted_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fusion_module, "fitted_model", toy_model)
    proof = Evidence(kind="c2pa.ai", summary="C2PA claims AI generation", proves="ai_generated")
    results = [*toy_results(0.98, 0.02)[:2], expert("c2pa", "both", 0.99, evidence=[proof])]
    fused = fuse(results, height=H, width=W)
    assert fused.verdict.decided_by == "provenance" and fused.verdict.label == "ai_generated"
    assert fused.verdict.probability == PROVENANCE_PROBABILITY
    assert not fused.verdict.calibrated  # a proof is not a calibrated probability


def test_weights_round_trip_and_malformed_weights_are_refused() -> None:
    model = toy_model()
    again = VerdictModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again.experts == model.experts and np.allclose(again.coef, model.coef)
    broken = {**model.to_dict(), "coef": [[0.0]]}
    with pytest.raises(ValueError):
        VerdictModel.from_dict(broken)
    with pytest.raises(ValueError):
        VerdictModel.from_dict({**model.to_dict(), "thresholds": {"real": 0.5}})


def test_fitted_verdict_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORENSCOPE_FUSION", raising=False)
    assert fitted_model() is shipped_model()
    monkeypatch.setenv("FORENSCOPE_FUSION", "handset")
    assert fitted_model() is None


def test_shipped_weights_are_well_formed() -> None:
    shipped_model.cache_clear()
    model = shipped_model()
    assert model is not None, "fusion/weights/verdict.json must ship with the package"
    data = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert "leave-one-source-out" in data["validation"]["protocol"]
    assert model.temperature > 0 and np.isfinite(model.coef).all()
    assert "clip_detector" in model.required
    assert all(0.34 <= t <= 1.0 for t in model.thresholds.values())


# --- fitted fused map (fusion/map_fitted.py) ---------------------------------------------

MAP_KEYS = {"version", "experts", "features", "coef", "intercept", "map_side", "smooth_share"}


def test_map_fusion_weights_load_with_expected_keys() -> None:
    map_fusion.load_model.cache_clear()
    model = map_fusion.load_model()
    assert model is not None, "weights/map_fitted.json must ship with the package"
    data = json.loads(map_fusion.WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert MAP_KEYS <= set(data)
    assert "median flagged <= 1%" in data["bias_rule"] and data["recipe"]["budget_groups"]
    assert data["features"] == map_fusion.feature_names(model.experts)
    assert {"copy_move", "learned_localizer"} <= set(model.experts)
    assert np.isfinite(model.coef).all() and math.isfinite(model.intercept)


def test_malformed_map_weights_are_refused() -> None:
    data = json.loads(map_fusion.WEIGHTS_FILE.read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match="other features"):
        map_fusion.MapFusionModel.from_dict({**data, "features": data["features"][:-1]})
    with pytest.raises(ValueError, match="shape"):
        map_fusion.MapFusionModel.from_dict({**data, "coef": data["coef"][:-1]})
    with pytest.raises(ValueError, match="map_side"):
        map_fusion.MapFusionModel.from_dict({**data, "map_side": 4})


def test_map_mode_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    results = [expert("copy_move", "tampered", 0.9, heatmap=blob_map())]
    handset = fuse_heatmaps(results, height=H, width=W, mode="handset")
    fitted = fuse_heatmaps(results, height=H, width=W, mode="fitted")
    assert handset is not None and fitted is not None and not np.allclose(handset, fitted)
    monkeypatch.setenv(map_fusion.MODE_ENV, "handset")
    assert np.array_equal(fuse(results, height=H, width=W).heatmap, handset)
    monkeypatch.setenv(map_fusion.MODE_ENV, "fitted")
    assert np.array_equal(fuse(results, height=H, width=W).heatmap, fitted)
    monkeypatch.setenv(map_fusion.MODE_ENV, "no-such-mode")
    assert map_fusion.map_mode() == map_fusion.DEFAULT_MODE


def test_fitted_map_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(map_fusion.MODE_ENV, raising=False)
    assert map_fusion.map_mode() == "handset"
    results = [expert("copy_move", "tampered", 0.9, heatmap=blob_map())]
    default = fuse(results, height=H, width=W).heatmap
    assert np.array_equal(default, fuse_heatmaps(results, height=H, width=W, mode="handset"))


def test_fitted_map_equals_the_stacked_features_it_was_fitted_on() -> None:
    """Inference folds the linear score per expert; it must match the fitting features."""
    model = map_fusion.load_model()
    assert model is not None
    rng = np.random.default_rng(5)
    shape = (48, 64)
    inputs = [
        map_fusion.MapInput(name, float(rng.uniform(0.05, 0.95)), blob_map(60, 80) * rng.uniform())
        for name in model.experts[:4]
    ]
    normalised = map_fusion.normalised_maps(inputs, shape)
    scores = {m.expert: m.score for m in inputs}
    handset = rng.uniform(0, 1, shape).astype(np.float32)
    stacked = map_fusion.pixel_features(
        normalised, scores, handset, model.experts, model.smooth_share
    )
    folded = map_fusion.linear_score(model, normalised, scores, handset)
    expected = np.tensordot(model.coef, stacked, axes=1) + model.intercept
    np.testing.assert_allclose(folded, expected, rtol=1e-4, atol=1e-4)


def test_fitted_map_falls_back_to_handset_without_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    results = [expert("copy_move", "tampered", 0.9, heatmap=blob_map())]
    monkeypatch.setattr(map_fusion, "load_model", lambda: None)
    fitted = fuse_heatmaps(results, height=H, width=W, mode="fitted")
    assert np.array_equal(fitted, fuse_heatmaps(results, height=H, width=W, mode="handset"))
    unknown = [expert("someone_else", "tampered", 0.9, heatmap=blob_map())]
    assert fuse_heatmaps(unknown, height=H, width=W, mode="fitted") is not None


def test_fitted_map_stays_dark_when_the_experts_judge_the_image_clean() -> None:
    rng = np.random.default_rng(3)
    results = [
        expert(name, "tampered", 0.1, heatmap=rng.uniform(0, 0.4, (60, 80)).astype(np.float32))
        for name in ("copy_move", "ela", "jpeg_artifacts", "learned_localizer", "noise")
    ]
    heatmap = fuse_heatmaps(results, height=H, width=W, mode="fitted")
    assert heatmap is not None and heatmap.shape == (H, W) and heatmap.dtype == np.float32
    assert float(np.mean(heatmap >= 0.5)) < 0.01
