"""The MLLM stages inside `analyze` (Report.llm), the renderers' LLM section, `analyze --llm`,
chat grounded on the full report (CLI and service), all against a fake-server PROCESS."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from PIL import Image

import forenscope
from forenscope.forgeries import Box, example_photo, make_jpeg_region
from forenscope.mllm.assess import evidence_items, resolve_citations, verdict_agreement
from forenscope.mllm.config import LLMConfig, PipelineOptions
from forenscope.mllm.fake_server import FakeServerProcess
from forenscope.mllm.narrative import llm_paragraph
from forenscope.report import render_html, render_markdown
from forenscope.types import Report
from forenscope.types.llm import (
    Agreement,
    EvidenceItem,
    LLMAssessment,
    Location,
    Stage1Answer,
    Stage1Result,
    Stage2Answer,
    Stage2Result,
)

FAST = ["ela", "noise", "exif", "jpeg_artifacts"]
PHOTO = Path(forenscope.__file__).parent / "data" / "seeding.jpg"


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fresh response cache per test, so cache-hit counts do not leak between tests."""
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "cache"))


class FakeServer(FakeServerProcess):
    def config(self, **kw: Any) -> LLMConfig:
        # scoring auto: these tests read the fake's log-probs (the default is seed 000's votes)
        base = {"base_url": self.base_url, "model": "fake-vision", "flavor": "openai",
                "backoff_base_s": 0.01, "backoff_max_s": 0.02, "max_retries": 1,
                "pipeline": {"scoring": "auto"}}  # fmt: skip
        return LLMConfig.model_validate({**base, **kw})


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    srv = FakeServer()
    yield srv
    srv.close()


def _bright_photo() -> bytes:
    """The shipped photo made bright: the fake LLM (P(yes) = brightness) says yes to it,
    while the experts still find a real photo."""
    rgb = np.asarray(Image.open(PHOTO).convert("RGB")).astype(np.int16)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb + 110, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def _tampered() -> bytes:
    return make_jpeg_region(example_photo(), Box(640, 96, 256, 192), region_quality=50).data


# -- offline stays as it was ------------------------------------------------------------------
OFFLINE_KEYS = [
    "schema_version", "forenscope_version", "analysis_config", "image", "verdict", "attribution",
    "regions", "experts", "key_evidence", "explanation", "faces", "notes", "timings", "errors",
    "llm",
]  # fmt: skip


def test_offline_json_only_gains_a_trailing_null_llm_field() -> None:
    report = forenscope.analyze(PHOTO, experts=FAST)
    text = report.model_dump_json(indent=2)
    assert list(json.loads(text)) == OFFLINE_KEYS
    assert text.endswith('"errors": [],\n  "llm": null\n}')
    assert "llm_s" not in report.timings and "LLM" not in report.explanation
    assert "LLM analysis" not in render_markdown(report) + render_html(report)


# -- the stages inside analyze -----------------------------------------------------------------
def test_disagreement_is_shown_not_silently_resolved(server: FakeServer) -> None:
    report = forenscope.analyze(_bright_photo(), experts=FAST, llm=server.config())
    assert report.verdict.label == "real", "the experts' verdict must stay"
    a = report.llm
    assert a is not None and a.stage1.status == "ok" and a.stage1.method == "logprobs"
    assert a.stage1.probability is not None and a.stage1.probability > 0.5
    assert a.verdict_agreement == "disagree"
    assert a.agreement and all(not x.agrees for x in a.agreement if x.expert_score < 0.5)
    # stage 2 ran because the LLM said yes, grounded on the expert evidence it was shown
    assert a.stage2 is not None and a.stage2.status == "ok"
    assert [e.id for e in a.evidence_shown] == [
        f"E{i}" for i in range(1, len(a.evidence_shown) + 1)
    ]
    assert a.stage2.evidence_shown == [e.text for e in a.evidence_shown]
    assert [e.id for e in a.cited_evidence] == ["E1"]  # the fake cites E1 when it is listed
    assert a.prompt_versions == {"stage1": "s1-p4-v1", "stage2": "s2-v1"}
    assert "DISAGREES with the experts' verdict (real)" in report.explanation
    assert "It cited evidence E1" in report.explanation
    assert report.timings["llm_s"] > 0 and a.usage.calls == 2
    md = render_markdown(report)
    assert "## LLM analysis" in md and "**disagrees**" in md and "**cited**" in md
    html = render_html(report)
    assert "<h2>LLM analysis</h2>" in html and "<strong>(cited)</strong>" in html


def test_tampered_image_region_words_ground_stage2_and_cache_reruns(server: FakeServer) -> None:
    data = _tampered()
    config = server.config()
    report = forenscope.analyze(data, experts=["ela", "jpeg_artifacts", "noise"], llm=config)
    assert report.verdict.label == "tampered" and report.regions
    a = report.llm
    assert a is not None and a.stage1.probability is not None and a.stage1.probability < 0.5
    assert a.verdict_agreement == "disagree"
    regions = [e for e in a.evidence_shown if e.source == "region"]
    assert regions and regions[0].text == report.regions[0].description
    assert regions[0].text.startswith("Region 1: ")
    assert a.stage2 is not None and a.stage2.answer is not None  # experts' label is not real
    hits = server.hits()
    again = forenscope.analyze(data, experts=["ela", "jpeg_artifacts", "noise"], llm=config)
    assert server.hits() == hits, "the same image and prompts must come from the cache"
    assert again.llm is not None and again.llm.stage1.probability == a.stage1.probability


def test_agreeing_clean_photo_skips_stage2(server: FakeServer) -> None:
    report = forenscope.analyze(PHOTO, experts=FAST, llm=server.config(cache=False))
    a = report.llm
    assert a is not None and a.verdict_agreement == "agree" and a.stage2 is None
    assert a.stage2_skipped == "neither the LLM nor the experts found the image suspicious"
    assert "This agrees with the experts' verdict (real)." in report.explanation


def test_refusals_are_reported_as_refusals(tmp_path: Path) -> None:
    srv = FakeServer("--faults", "refusal:1.0")
    try:
        opts = {"scoring": "votes", "n": 3, "stage2": "always"}
        report = forenscope.analyze(_bright_photo(), experts=FAST,
                                    llm=srv.config(cache=False, pipeline=opts))  # fmt: skip
    finally:
        srv.close()
    a = report.llm
    assert a is not None and a.stage1.status == "refused" and a.stage1.probability is None
    assert a.stage1.refusals == 3 and a.stage1.votes == 0 and a.agreement == []
    assert a.verdict_agreement == "no_llm_answer"
    assert a.stage2 is not None and a.stage2.status == "refused"
    assert (
        "refused to say" in report.explanation and "A refusal is not a vote" in report.explanation
    )
    assert "declined the structured analysis" in report.explanation
    assert "| refusals | 3 (policy) |" in render_markdown(report)


def test_truncated_stage2_is_kept_and_marked(tmp_path: Path) -> None:
    srv = FakeServer("--faults", "truncated:1.0")
    try:
        report = forenscope.analyze(_bright_photo(), experts=FAST, llm=srv.config(cache=False))
    finally:
        srv.close()
    a = report.llm
    assert a is not None and a.stage2 is not None and a.stage2.status == "unparseable"
    assert a.stage2.raw.startswith("{") and "finish_reason=length" in (a.stage2.problem or "")
    assert "could not be read" in report.explanation and a.cited_evidence == []


def test_endpoint_down_is_an_error_value_not_a_crash() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    config = LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=0,
                       cache=False, pipeline=PipelineOptions(stage2="never"))  # fmt: skip
    report = forenscope.analyze(PHOTO, experts=FAST, llm=config)
    assert report.llm is not None and report.llm.stage1.status == "error"
    assert report.llm.stage1.error is not None
    assert report.llm.stage1.error.type == "LLMConnectionError"
    assert "could not be asked" in report.explanation and report.verdict.label == "real"


def test_tools_mode_answers_from_the_pipelines_expert_results(server: FakeServer) -> None:
    config = server.config(cache=False, pipeline={"tools": True, "stage2": "always"})
    report = forenscope.analyze(_bright_photo(), experts=FAST, llm=config)
    a = report.llm
    assert a is not None and a.stage2 is not None and a.stage2.status == "ok"
    assert a.prompt_versions["stage2"] == "s2-tools-v1"
    assert [c.name for c in a.tool_calls] == FAST[:2]  # the fake calls the first two offered
    by_name = {r.expert: r for r in report.experts}
    for call in a.tool_calls:
        assert call.result["score"] == round(by_name[call.name].score or 0.0, 3)
    assert [e.source for e in a.evidence_shown] == ["tool", "tool"]


# -- pure pieces -------------------------------------------------------------------------------
def _s1(p: float | None, status: Literal["ok", "refused"] = "ok") -> Stage1Result:
    return Stage1Result(status=status, probability=p, method="votes", prompt_version="s1-p4-v1",
                        model="m", yes=int((p or 0) >= 0.5), no=int((p or 1) < 0.5))  # fmt: skip


def test_citations_resolve_ids_and_tool_names_and_flag_unknown_ones() -> None:
    shown = [EvidenceItem(id="E1", text="a", source="expert", expert="ela"),
             EvidenceItem(id="E2", text="b", source="region"),
             EvidenceItem(id="noise", text="{}", source="tool", expert="noise")]  # fmt: skip
    cited, unknown = resolve_citations(["[E2]", "e1", "E2", "expert_noise", "E9", " "], shown)
    assert [c.id for c in cited] == ["E2", "E1", "noise"] and unknown == ["E9"]


def test_pipeline_options_are_validated(tmp_path: Path) -> None:
    from forenscope.errors import ConfigError
    from forenscope.mllm.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("base_url: http://127.0.0.1:9/v1\nmodel: m\npipeline:\n  k: 2\n")
    with pytest.raises(ConfigError, match="needs pipeline.pool"):
        load_config(cfg, env={})
    cfg.write_text("base_url: http://127.0.0.1:9/v1\nmodel: m\npipeline:\n  stage2: maybe\n")
    with pytest.raises(ConfigError, match="stage2"):
        load_config(cfg, env={})


def test_verdict_agreement_cases() -> None:
    report = forenscope.analyze(PHOTO, experts=["ela", "noise"])
    assert report.verdict.label == "real"
    assert verdict_agreement(report, _s1(0.2)) == "agree"
    assert verdict_agreement(report, _s1(0.9)) == "disagree"
    assert verdict_agreement(report, _s1(None, "refused")) == "no_llm_answer"
    undecided = forenscope.analyze(PHOTO, experts=["exif"])  # abstains on this photo
    assert undecided.verdict.decided_by == "none"
    assert verdict_agreement(undecided, _s1(0.9)) == "experts_undecided"
    items = evidence_items(report, limit=2)
    assert [i.id for i in items] == ["E1", "E2"] and all(i.source == "expert" for i in items)


def test_llm_text_is_escaped_in_markdown_and_html() -> None:
    report = forenscope.analyze(PHOTO, experts=["ela"])
    evil = "<script>alert(1)</script> [x](javascript:1) | cell"
    answer = Stage2Answer(location=Location(relative=evil, absolute=evil), forged_content=evil,
                          visible_traces=[evil], scope="local", reasoning=evil)  # fmt: skip
    assessment = LLMAssessment(
        model=evil, flavor="generic", prompt_versions={"stage1": "s1"},
        stage1=_s1(0.9).model_copy(update={"samples": [Stage1Answer(text=evil, label="yes")]}),
        stage2=Stage2Result(status="ok", answer=answer, prompt_version="s2", model="m"),
        verdict_agreement="disagree",
        agreement=[Agreement(expert=evil, expert_score=0.1, llm_probability=0.9, agrees=False)],
        evidence_shown=[EvidenceItem(id="E1", text=evil, source="expert")],
    )  # fmt: skip
    report = report.model_copy(update={"llm": assessment})
    report = Report.model_validate_json(report.model_dump_json())  # survives a JSON round trip
    html = render_html(report)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    md = render_markdown(report)
    assert "<script>" not in md and "\\[x\\](javascript:1) \\| cell" in md
    assert llm_paragraph(report).count("DISAGREES") == 1


# -- CLI and chat ------------------------------------------------------------------------------
def _write_config(path: Path, srv: FakeServer, **kw: Any) -> Path:
    path.write_text(json.dumps({"base_url": srv.base_url, "model": "fake-vision",
                                "flavor": "openai", **kw}))  # fmt: skip
    return path


def test_cli_analyze_with_llm_writes_reports_with_the_llm_section(
    server: FakeServer, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from forenscope.cli import main

    img = tmp_path / "bright.jpg"
    img.write_bytes(_bright_photo())
    cfg = tmp_path / "llm.yaml"  # the YAML form `forenscope llm` reads too
    cfg.write_text(f"llm:\n  base_url: {server.base_url}\n  model: fake-vision\n  flavor: openai\n"
                   "  cache: false\n  pipeline:\n    stage2: always\n"
                   "    scoring: logprobs\n")  # fmt: skip
    out = tmp_path / "out"
    args = ["analyze", str(img), "--experts", ",".join(FAST), "--llm", str(cfg), "--json"]
    res = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output  # the experts' verdict (real) decides the exit code
    row = json.loads(next(line for line in res.stdout.splitlines() if line.startswith("{")))
    assert row["llm"]["verdict_agreement"] == "disagree" and row["verdict"]["label"] == "real"
    assert row["llm"]["stage2"]["status"] == "ok"
    md = next(out.rglob("*.md")).read_text()
    assert "## LLM analysis" in md and "DISAGREES" in md
    index = [json.loads(line) for line in (out / "index.jsonl").read_text().splitlines()]
    assert "LLM P(fake)" in index[0]["summary"]
    bad = CliRunner().invoke(main, ["analyze", str(img), "--llm", str(tmp_path / "none.yaml")])
    assert bad.exit_code == 2


def test_chat_cli_grounds_on_the_full_report(server: FakeServer, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from forenscope.llm_cli import chat_cli

    img = tmp_path / "t.jpg"
    img.write_bytes(_tampered())
    audit = tmp_path / "audit.jsonl"
    cfg = _write_config(tmp_path / "llm.json", server, cache=False, audit_log=str(audit))
    hist = tmp_path / "h.json"
    base = [
        str(img),
        "--config",
        str(cfg),
        "--history",
        str(hist),
        "--experts",
        "ela,jpeg_artifacts,noise",
    ]
    for q in ("Where is the edit?", "Why there?"):
        res = CliRunner().invoke(chat_cli, [*base, "-m", q])
        assert res.exit_code == 0, res.output
    saved = json.loads(hist.read_text())
    assert saved["evidence"][0].startswith("Forenscope verdict: tampered")
    assert any(e.startswith("Region 1: ") for e in saved["evidence"])
    assert any(e.startswith("Expert ela: score ") for e in saved["evidence"])
    requests = [json.loads(line)["request"] for line in audit.read_text().splitlines()]
    first = requests[-1]["messages"][1]["content"][0]["text"]
    assert "[E1] Forenscope verdict: tampered" in first
    assert [m["role"] for m in requests[-1]["messages"][3:]] == ["user", "assistant", "user"]


def test_service_chat_uses_the_llm_backend(server: FakeServer, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from forenscope.service import Settings, create_app
    from forenscope.service.chat import LLMChatBackend

    audit = tmp_path / "audit.jsonl"
    backend = LLMChatBackend(server.config(cache=False, audit_log=str(audit)))
    settings = Settings(data_dir=tmp_path / "data", experts=["ela", "noise"])
    with TestClient(create_app(settings, chat_backend=backend)) as client:
        assert client.get("/v1/health").json()["llm_configured"] is True
        up = client.post("/v1/analyze", files={"file": ("t.jpg", _tampered(), "image/jpeg")})
        assert up.status_code == 201, up.text
        url = f"/v1/analyses/{up.json()['id']}/chat"
        for q in ("Where?", "Why?"):
            r = client.post(url, json={"message": q})
            assert r.status_code == 200, r.text
            assert r.json()["reply"] in ("Yes", "No")  # what the fake answers to chat
        assert [m["role"] for m in client.get(url).json()] == ["user", "assistant"] * 2
    last = json.loads(audit.read_text().splitlines()[-1])["request"]["messages"]
    grounding = last[1]["content"]
    assert grounding[0]["text"].count("[E") >= 3 and "Forenscope verdict: " in grounding[0]["text"]
    assert grounding[1]["type"] == "image_url"  # the stored preview goes with it
    assert [m["content"] for m in last[3:] if m["role"] == "user"] == ["Where?", "Why?"]


def test_service_chat_maps_llm_failure_to_502(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from forenscope.service import Settings, create_app
    from forenscope.service.chat import LLMChatBackend

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=0, cache=False)
    settings = Settings(data_dir=tmp_path / "data", experts=["ela"])
    with TestClient(create_app(settings, chat_backend=LLMChatBackend(cfg))) as client:
        up = client.post("/v1/analyze", files={"file": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")})
        r = client.post(f"/v1/analyses/{up.json()['id']}/chat", json={"message": "Why?"})
        assert r.status_code == 502 and "LLM endpoint failed" in r.json()["detail"]
        assert client.get(f"/v1/analyses/{up.json()['id']}/chat").json() == []
