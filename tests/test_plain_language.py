"""The wording for non-specialists, on real Reports from the pipeline (tests/report_fixtures.py):
one sentence for the verdict and its certainty, evidence without jargon, where to look, and
the Markdown report opening with that summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from forenscope.io.input import ImageInput
from forenscope.report import render_markdown
from forenscope.report.plain_language import (
    GLOSSARY,
    certainty_words,
    percent,
    plain_point,
    plain_summary,
    plain_verdict,
)
from forenscope.types import Evidence, Report
from report_fixtures import real_reports

# Words that claim a trace was found (an area, a copy, a seam, a mismatch).
FINDING = re.compile(r"\b(One area|appears twice|marks one area|A seam|does not match|differs)")
JARGON = re.compile(r"\b(logit|AUC|DAAM|ELA|CLIP|ViT|sigma|heatmap|P\(|Platt|quantis|DCT|dx=)")


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Report, ImageInput]]:
    return real_reports(tmp_path_factory.mktemp("clip-cache"))


def _sentences(text: str) -> int:
    return len(re.findall(r"[.!?](\s|$)", text))


@pytest.mark.parametrize("outcome", ["tampered", "inconclusive", "ai_generated", "real"])
def test_one_jargon_free_sentence_with_the_certainty(
    reports: dict[str, tuple[Report, ImageInput]], outcome: str
) -> None:
    report, _ = reports[outcome]
    sentence = plain_verdict(report)
    assert _sentences(sentence) == 1, sentence
    assert not JARGON.search(sentence), sentence
    assert percent(report.verdict.probability) in sentence  # the certainty, as a percentage
    summary = plain_summary(report)
    for point in summary.evidence:
        assert not JARGON.search(point.text), point
        assert point.technical  # the expert's own sentence stays one click away
    for line in summary.where + summary.caveats:
        assert not JARGON.search(line), line


def test_each_outcome_reads_differently(reports: dict[str, tuple[Report, ImageInput]]) -> None:
    words = {k: plain_verdict(r) for k, (r, _) in reports.items()}
    assert "edited in places" in words["tampered"]
    assert certainty_words(reports["tampered"][0].verdict.probability) in words["tampered"]
    assert words["inconclusive"].startswith("Not decided, needs review")
    assert "lean towards a real photo" in words["inconclusive"]
    assert "made by AI" in words["ai_generated"] and "file's own records" in words["ai_generated"]
    assert words["real"].startswith("No sign of AI generation or editing")


def test_tampered_names_its_areas_and_the_copy_pair(
    reports: dict[str, tuple[Report, ImageInput]],
) -> None:
    report, _ = reports["tampered"]
    summary = plain_summary(report)
    assert len(report.regions) == 2
    assert [w.split(":")[0] for w in summary.where[:2]] == ["Area 1", "Area 2"]
    assert "Areas 1 and 2 are copy pair 1: one is a copy of the other." in summary.where
    assert any("appears twice" in p.text for p in summary.evidence)
    copy = next(p for p in summary.evidence if "appears twice" in p.text)
    assert copy.expert == "copy_move" and "reappears at" in copy.technical
    # the pipeline's attribution, and the explanation quoting it, agree with the two boxes drawn
    for text in (report.attribution.basis, report.explanation):
        assert "no compact region stands out" not in text
        assert "the fused map marks 2 regions, none dominating" in text


def test_real_verdict_with_marked_areas_says_they_did_not_convince(
    reports: dict[str, tuple[Report, ImageInput]],
) -> None:
    report, _ = reports["inconclusive"]
    assert report.regions, "the fixture is meant to have marked areas"
    where = plain_summary(report).where
    assert where[0].startswith(f"The map marks {len(report.regions)} area")
    assert "do not find them convincing" in where[0]
    caveats = " ".join(plain_summary(report).caveats)
    assert "9 times in 10" in caveats and "not as proof" in caveats


def test_weak_findings_are_not_worded_as_findings(
    reports: dict[str, tuple[Report, ImageInput]],
) -> None:
    """An expert that scored low is said to have found nothing convincing, whatever its
    evidence would mean had it been strong."""
    for report, _ in (r for k, r in reports.items() if k != "ai_generated"):
        scores = {r.expert: r.score for r in report.experts}
        for point in plain_summary(report).evidence:
            score = scores.get(point.expert or "")
            if score is not None and score < 0.5:
                assert not FINDING.search(point.text), point


def test_markdown_opens_with_the_plain_summary(
    reports: dict[str, tuple[Report, ImageInput]],
) -> None:
    for report, _ in reports.values():
        md = render_markdown(report)
        first, second = md.split("\n## ")[1:3]
        assert first.startswith("In plain words\n\n**" + plain_verdict(report).split(" (")[0])
        assert "Technical detail for specialists follows" in second or second.startswith("Verdict")
        assert md.index("## In plain words") < md.index("**Verdict: ")


def test_unknown_kinds_fall_back_without_jargon() -> None:
    text = plain_point(Evidence(kind="someexpert.thing", summary="AUC 0.9, logit 2"))
    assert not JARGON.search(text) and "technical detail" in text
    named = plain_point(Evidence(kind="exif.editor", summary="Software = GIMP", value="GIMP 2.10"))
    assert named == "The file's camera data names editing software: GIMP 2.10."
    score = plain_point(Evidence(kind="clip.generated", summary="P = 0.97", value=0.97))
    assert "97% likely to be AI-made" in score
    assert percent(1.0) == "99%" and percent(0.0) == "1%"  # never a claim of certainty


def test_glossary_explains_the_terms_the_reports_use() -> None:
    for term in ("logit", "AUC", "DAAM", "ELA", "inconclusive", "heatmap"):
        assert GLOSSARY[term] and not GLOSSARY[term].startswith(term)


def test_report_fixture_paths_are_names_not_locations(
    reports: dict[str, tuple[Report, ImageInput]],
) -> None:
    assert all(Path(r.image.path or "").name == r.image.path for r, _ in reports.values())
