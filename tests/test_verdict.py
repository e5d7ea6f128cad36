"""The four-outcome verdict: the inconclusive band, the conflict rules, the calibration fit on
synthetic expert outputs, and the new outcome end to end (CLI, JSON, HTML, HTTP API)."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import forenscope.fusion.verdict as verdict_module
from forenscope.cli import EXIT_INCONCLUSIVE, main
from forenscope.eval.classification import ece
from forenscope.forgeries import synthetic_photo
from forenscope.fusion.decision import make_decision
from forenscope.fusion.verdict_model import LABELS, VerdictModel, decide
from forenscope.fusion.verdict_rules import conflicts
from forenscope.train.verdict_fit import (
    class_weights,
    fit_fold,
    probabilities_from_logits,
    thresholds_for,
)
from forenscope.types import Report

EVEN = dict.fromkeys(LABELS, 0.6)


def summary(
    expert: str,
    score: float | None,
    *,
    targets: str = "both",
    stats: dict[str, float] | None = None,
    flags: dict[str, Any] | None = None,
    proves: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "expert": expert,
        "version": "0",
        "targets": targets,
        "score": score,
        "confidence": 1.0,
        "map": stats,
        "proves": proves or [],
        "kinds": [],
        "flags": flags or {},
    }


def quiet() -> dict[str, dict[str, Any]]:
    return {
        "clip_detector": summary("clip_detector", 0.1, targets="ai_generated"),
        "noise": summary("noise", 0.2, targets="tampered", stats={"peak": 0.2, "area": 0.0,
                                                                    "focus": 0.0}),
    }  # fmt: skip


# --- the inconclusive band --------------------------------------------------------------------


def test_decide_needs_the_leading_class_to_reach_its_threshold() -> None:
    p = {"real": 0.55, "ai_generated": 0.3, "tampered": 0.15}
    assert decide(p, EVEN) == "inconclusive"
    assert decide(p, {**EVEN, "real": 0.5}) == "real"
    sure = {"real": 0.05, "ai_generated": 0.9, "tampered": 0.05}
    assert decide(sure, EVEN) == "ai_generated"
    assert decide(sure, {**EVEN, "ai_generated": 0.95}) == "inconclusive"


def test_thresholds_reach_the_target_precision_on_the_data_they_are_chosen_on() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 3000)
    logits = rng.normal(0.0, 1.0, (3000, 3))
    logits[np.arange(3000), y] += rng.uniform(0.0, 3.0, 3000)  # some easy, some hopeless
    p = probabilities_from_logits(logits)
    thresholds = thresholds_for(p, y)
    w = class_weights(y)
    for k, label in enumerate(LABELS):
        chosen = (p.argmax(axis=1) == k) & (p.max(axis=1) >= thresholds[label])
        assert chosen.sum() > 50
        assert w[chosen & (y == k)].sum() / w[chosen].sum() >= 0.9
        # the threshold is the lowest that reaches it: one step lower falls short
        lower = (p.argmax(axis=1) == k) & (p.max(axis=1) >= thresholds[label] - 0.01)
        if thresholds[label] > 0.34:
            assert w[lower & (y == k)].sum() / w[lower].sum() < 0.9


# --- the conflict rules -----------------------------------------------------------------------


def test_quiet_experts_raise_no_conflict() -> None:
    assert conflicts(quiet(), "real") == []
    d = make_decision(quiet(), {"real": 0.8, "ai_generated": 0.1, "tampered": 0.1}, EVEN)
    assert d.label == "real" and d.conflicts == []


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (summary("exif", 0.75, flags={"editor": "Adobe Photoshop CS2"}), "Adobe Photoshop CS2"),
        (summary("clip_detector", 0.95, targets="ai_generated"), "clip_detector"),
        (
            summary(
                "copy_move",
                0.8,
                targets="tampered",
                stats={"peak": 0.9, "area": 0.04, "focus": 0.85},
            ),
            "compact region",
        ),  # fmt: skip
        (summary("c2pa", 0.93, flags={"tamper_after_signing": True}), "after its C2PA"),
    ],
)
def test_strong_conflicting_evidence_never_gives_a_confident_real(
    extra: dict[str, Any], words: str
) -> None:
    summaries = {**quiet(), extra["expert"]: extra}
    d = make_decision(summaries, {"real": 0.9, "ai_generated": 0.05, "tampered": 0.05}, EVEN)
    assert d.label == "inconclusive" and d.leaning == "real"
    assert any(words in c for c in d.conflicts), d.conflicts


def test_a_spread_weak_map_is_not_a_compact_region() -> None:
    weak = summary("noise", 0.7, targets="tampered", stats={"peak": 0.9, "area": 0.4,
                                                              "focus": 0.2})  # fmt: skip
    assert conflicts({**quiet(), "noise": weak}, "real") == []


def test_signed_capture_against_an_ai_leaning_is_a_conflict() -> None:
    capture = summary("c2pa", 0.1, flags={"digital_capture": True})
    summaries = {**quiet(), "c2pa": capture}
    d = make_decision(summaries, {"real": 0.05, "ai_generated": 0.9, "tampered": 0.05}, EVEN)
    assert d.label == "inconclusive" and d.leaning == "ai_generated"
    assert "digitalCapture" in d.conflicts[0]
    assert make_decision(summaries, {"real": 0.9, "ai_generated": 0.05, "tampered": 0.05},
                         EVEN).label == "real"  # fmt: skip


def test_inpainting_metadata_proves_tampered_not_generated() -> None:
    run = summary("generator_metadata", 1.0, targets="ai_generated", proves=["tampered"],
                  flags={"edit": "inpaint", "method": "diffusion"})  # fmt: skip
    d = make_decision({**quiet(), "generator_metadata": run},
                      {"real": 0.2, "ai_generated": 0.7, "tampered": 0.1}, EVEN)  # fmt: skip
    assert d.label == "tampered" and d.decided_by == "provenance"


# --- the calibration fit on synthetic expert outputs --------------------------------------------


def synthetic_sources(n_sources: int = 8, per: int = 120, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Three classes; feature 0 separates generated, feature 1 tampered; each source shifts the
    features a little (a source effect the grouped CV must survive)."""
    rng = np.random.default_rng(seed)
    xs, ys, gs = [], [], []
    for g in range(n_sources):
        y = rng.integers(0, 3, per)
        x = rng.normal(0.0, 1.0, (per, 3)) + rng.normal(0.0, 0.3, 3)
        x[:, 0] += 2.0 * (y == 1)
        x[:, 1] += 2.0 * (y == 2)
        xs.append(x)
        ys.append(y)
        gs.append(np.full(per, f"s{g}"))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


def test_calibration_fit_is_calibrated_on_held_out_sources() -> None:
    x, y, groups = synthetic_sources(per=500)  # enough held-out rows for a 15-bin ECE
    test = groups == "s0"
    fit = fit_fold(x[~test], y[~test], groups[~test])
    assert fit.temperature > 0 and set(fit.thresholds) == set(LABELS)
    p = probabilities_from_logits(fit.logits(x[test]))
    assert np.allclose(p.sum(axis=1), 1.0)
    correct = p.argmax(axis=1) == y[test]
    w = class_weights(y[test])  # the verdict's class mix, as everywhere in the fit
    assert (w * correct).sum() / w.sum() > 0.7
    assert ece(correct, p.max(axis=1), weights=class_weights(y[test])) < 0.06
    # an over-confident copy (logits doubled) is clearly worse calibrated
    sharp = probabilities_from_logits(2.5 * fit.logits(x[test]) * fit.temperature)
    worse = ece(sharp.argmax(axis=1) == y[test], sharp.max(axis=1), weights=class_weights(y[test]))
    assert worse > ece(correct, p.max(axis=1), weights=class_weights(y[test]))


def test_fit_learns_which_feature_points_where() -> None:
    x, y, groups = synthetic_sources(seed=1)
    fit = fit_fold(x, y, groups)
    assert fit.coef[1, 0] > fit.coef[0, 0] and fit.coef[2, 1] > fit.coef[0, 1]


# --- the new outcome end to end ---------------------------------------------------------------


def undecidable(model: VerdictModel | None = None) -> VerdictModel:
    """A model that never reaches its thresholds (1.0): every verdict is inconclusive."""
    coef = np.zeros((3, 1))
    return VerdictModel(
        experts=("ela",), map_experts=(), coef=coef, intercept=np.zeros(3), temperature=1.0,
        thresholds=dict.fromkeys(LABELS, 1.0), required=(), calibrated=True,
    )  # fmt: skip


@pytest.fixture()
def inconclusive(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(verdict_module, "fitted_model", lambda: undecidable())
    yield


def photo_jpeg(path: Path) -> Path:
    Image.fromarray(synthetic_photo(96, 128, seed=3)).save(path, quality=90)
    return path


def test_cli_json_and_html_carry_inconclusive(inconclusive: None, tmp_path: Path) -> None:
    img = photo_jpeg(tmp_path / "photo.jpg")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["analyze", str(img), "--experts", "ela", "--out", str(out)])
    assert result.exit_code == EXIT_INCONCLUSIVE, result.output
    assert "INCONCLUSIVE" in result.output and "1 inconclusive" in result.output
    report = Report.model_validate_json(next(out.rglob("photo.json")).read_text())
    assert report.schema_version == "2.0"
    assert report.verdict.label == "inconclusive" and report.verdict.leaning in LABELS
    assert report.explanation.startswith("Inconclusive, needs review")
    html = next(out.rglob("photo.html")).read_text()
    assert "label-inconclusive" in html and "Inconclusive (needs review)" in html
    md = next(out.rglob("photo.md")).read_text()
    assert "**Verdict: Inconclusive (needs review), leaning" in md
    as_json = CliRunner().invoke(main, ["analyze", str(img), "--experts", "ela", "--json"])
    assert json.loads(as_json.stdout.splitlines()[0])["verdict"]["label"] == "inconclusive"


def test_api_carries_inconclusive(inconclusive: None, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from forenscope.service import Settings, create_app

    buf = io.BytesIO()
    Image.fromarray(synthetic_photo(96, 128, seed=4)).save(buf, "JPEG", quality=90)
    app = create_app(Settings(data_dir=tmp_path, analyze_rate_per_min=0.0, read_rate_per_s=0.0))
    with TestClient(app) as c:
        r = c.post("/v1/analyze", files={"file": ("p.jpg", buf.getvalue(), "image/jpeg")},
                   data={"experts": "ela"})  # fmt: skip
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["label"] == "inconclusive"
        assert Report.model_validate(body["report"]).verdict.label == "inconclusive"
        listed = c.get("/v1/analyses").json()
        assert any(item["label"] == "inconclusive" for item in listed["items"])


def test_a_decided_model_is_not_inconclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    decisive = dataclasses.replace(undecidable(), thresholds=dict.fromkeys(LABELS, 0.0))
    monkeypatch.setattr(verdict_module, "fitted_model", lambda: decisive)
    from forenscope import analyze

    buf = io.BytesIO()
    Image.fromarray(synthetic_photo(96, 128, seed=5)).save(buf, "JPEG", quality=90)
    report = analyze(buf.getvalue(), experts=["ela"])
    assert report.verdict.decided and report.verdict.label == report.verdict.leaning
