"""The LLM tier on clips (issue 17), against the project's fake OpenAI-compatible server (no
network): stage 2 sees a numbered keyframe sheet and the clip's evidence as E-lines, and a chat
about the clip is grounded on the temporal findings with their frames and seconds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from forenscope.cli import main
from forenscope.mllm.config import LLMConfig
from forenscope.mllm.fake_server import FakeServerProcess
from forenscope.types import BBox, TemporalFinding
from forenscope.video.analyze import analyze_video
from forenscope.video.llm import ask, chat_files, clip_grounding, keyframes, with_llm
from video_fixtures import SPAN, pasted_clip

pytest.importorskip("av", reason="PyAV is a core dependency of the video extra")


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServerProcess]:
    srv = FakeServerProcess()
    yield srv
    srv.close()


def config_file(path: Path, srv: FakeServerProcess, audit: Path) -> Path:
    path.write_text(json.dumps({"base_url": srv.base_url, "model": "fake-vision",
                                "flavor": "openai", "cache": False,
                                "audit_log": str(audit)}))  # fmt: skip
    return path


def requests(audit: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line)["request"] for line in audit.read_text().splitlines()]


def first_text(request: dict) -> str:  # type: ignore[type-arg]
    user = next(m for m in request["messages"] if m["role"] == "user")
    return "".join(p.get("text", "") for p in user["content"] if isinstance(p, dict))


def test_video_llm_stage2_sees_keyframes_and_temporal_e_lines_and_chat_answers(
    server: FakeServerProcess, tmp_path: Path
) -> None:
    clip = pasted_clip(tmp_path / "paste.mp4")
    audit = tmp_path / "audit.jsonl"
    cfg = config_file(tmp_path / "llm.json", server, audit)
    out = tmp_path / "out"
    question = "When does the patch appear?"
    args = ["video", str(clip), "--budget", "4", "--experts", "ela", "--json", "--out", str(out),
            "--llm", str(cfg), "--ask", question]  # fmt: skip
    res = CliRunner().invoke(main, args)
    assert res.exit_code in (0, 1, 4), res.output
    doc = json.loads(next(ln for ln in res.stdout.splitlines() if ln.startswith("{")))
    llm = doc["llm"]
    assert llm["stage2"]["status"] == "ok" and llm["model"] == "fake-vision"
    assert len(llm["keyframes"]) == 4 and llm["keyframes"] == sorted(llm["keyframes"])
    lines = llm["evidence_shown"]
    assert lines[0].startswith("The image is a sheet of 4 keyframe(s) of one clip (160x120")
    assert lines[1].startswith("Clip verdict (an uncalibrated aggregation")
    span = next(ln for ln in lines if ln.startswith("Temporal (local_span): "))
    first, last = (int(x) for x in span.split("frames ")[1].split(" ")[0].split("-"))
    assert abs(first - SPAN[0]) <= 3 and abs(last - SPAN[1]) <= 3 and " s)" in span
    assert llm["cited_evidence"] == ["E1"]  # the fake cites E1 when it is shown E1
    assert "An LLM (fake-vision), shown keyframes" in doc["explanation"]
    md = next(out.rglob("*.md")).read_text()
    assert "## LLM (stage 2 on keyframes)" in md and "- E3: Panel 1, frame" in md
    assert "LLM (stage 2 on keyframes)" in next(out.rglob("*.html")).read_text()
    # the stage-2 request: one image (the sheet), the E-lines numbered in its text
    sent = requests(audit)
    stage2 = sent[0]
    assert images_sent(stage2) == 1
    assert f"[E1] {lines[0]}" in json.dumps(stage2)
    # the chat: asked with the same grounding, answered, history kept for `forenscope chat`
    chat = sent[-1]
    assert chat["messages"][-1] == {"role": "user", "content": question}
    assert f"[E{lines.index(span) + 1}] {span}" in first_text(chat)
    assert f"Q: {question}" in res.stdout and "\nA: " in res.stdout
    assert "go on with: forenscope chat " in res.stderr
    history_file = next((tmp_path / "cache" / "chats").glob("*.chat.json"))
    history = json.loads(history_file.read_text())
    assert history["turns"][0]["content"] == question and span in history["evidence"]
    # `forenscope chat SHEET --history H`, as the command suggests, goes on with that grounding
    sheet = history_file.with_name(history_file.name.replace(".chat.json", ".keyframes.png"))
    more = CliRunner().invoke(main, ["chat", str(sheet), "--config", str(cfg), "--history",
                                     str(history_file), "-m", "And where?"])  # fmt: skip
    assert more.exit_code == 0, more.output
    resumed = requests(audit)[-1]
    assert [m["role"] for m in resumed["messages"][3:]] == ["user", "assistant", "user"]
    assert f"[E{lines.index(span) + 1}] {span}" in first_text(resumed)
    # `forenscope chat CLIP` finds the same conversation by the clip's content: no analysis
    sent_before = len(requests(audit))
    clip_chat = CliRunner().invoke(main, ["chat", str(clip), "--config", str(cfg), "-m",
                                          "Which panel shows it?"])  # fmt: skip
    assert clip_chat.exit_code == 0, clip_chat.output
    assert f"conversation kept in {history_file}" in clip_chat.stderr
    assert len(requests(audit)) == sent_before + 1  # the chat call alone, no stage 2
    assert [m["role"] for m in requests(audit)[-1]["messages"][3:]] == [
        "user", "assistant", "user", "assistant", "user"]  # fmt: skip


def test_chat_tells_when_the_face_changes(server: FakeServerProcess, tmp_path: Path) -> None:
    """A face_change finding (as face_tracks.check_jumps writes it) reaches the chat's
    grounding with its frames and seconds, and the question is answered."""
    audit = tmp_path / "audit.jsonl"
    config = LLMConfig.model_validate_json(config_file(tmp_path / "c.json", server, audit)
                                           .read_text())  # fmt: skip
    report = analyze_video(pasted_clip(tmp_path / "c.mp4"), budget=2, experts=["ela"])
    change = TemporalFinding(
        kind="face_change", frame_start=15, frame_end=25, time_start_s=0.6, time_end_s=1.0,
        bbox=BBox(x=10, y=10, width=30, height=30), strength=1.4, face_track=1,
        summary="Face 1, frames 15-25 (0.60-1.00 s): the face_consistency check goes from "
        "0.10 to 0.80 (the face stops matching what that check expects of a camera face)",
    )  # fmt: skip
    report = report.model_copy(update={"temporal": [*report.temporal, change]})
    assert f"Temporal (face_change): {change.summary}" in clip_grounding(report)
    answers = ask(report, config, ["When does the face change?"])
    assert len(answers) == 1 and answers[0]
    assert "frames 15-25 (0.60-1.00 s)" in first_text(requests(audit)[-1])
    history, sheet = chat_files(report)
    assert history.is_file() and sheet.is_file()


def test_a_refusing_llm_is_recorded_not_raised(tmp_path: Path) -> None:
    report = analyze_video(pasted_clip(tmp_path / "r.mp4"), budget=2, experts=["ela"])
    with FakeServerProcess("--faults", "refusal:1.0") as srv:
        config = LLMConfig.model_validate({"base_url": srv.base_url, "model": "fake-vision",
                                           "flavor": "openai", "cache": False})  # fmt: skip
        out = with_llm(report, config)
    assert out.llm is not None and out.llm.stage2.status == "refused"
    assert out.llm.keyframes == [fr.index for fr in keyframes(report)]
    assert "it gave no usable analysis" in out.explanation
    assert out.verdict == report.verdict  # the clip verdict stays the experts'


def test_analyze_runs_the_llm_on_a_clip_too(server: FakeServerProcess, tmp_path: Path) -> None:
    clip = pasted_clip(tmp_path / "a.mp4")
    cfg = config_file(tmp_path / "llm.json", server, tmp_path / "audit.jsonl")
    res = CliRunner().invoke(main, ["analyze", str(clip), "--experts", "ela", "--json",
                                    "--llm", str(cfg)])  # fmt: skip
    doc = json.loads(next(ln for ln in res.stdout.splitlines() if ln.startswith("{")))
    assert doc["clip"]["frames"] == 40 and doc["llm"]["stage2"]["status"] == "ok"


def images_sent(request: dict) -> int:  # type: ignore[type-arg]
    return sum(p.get("type") == "image_url" for m in request["messages"]
               if isinstance(m["content"], list) for p in m["content"])  # fmt: skip


def test_chat_on_a_clip_is_grounded_on_its_keyframes_and_temporal_evidence(
    server: FakeServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`forenscope chat CLIP` analyses the clip offline (no stage 2), shows the LLM its keyframe
    sheet with the temporal E-lines, keeps the conversation and resumes it without analysing
    again; --report grounds on a saved clip report (keyframes decoded again from the clip)."""
    clip = pasted_clip(tmp_path / "paste.mp4")
    audit = tmp_path / "audit.jsonl"
    cfg = str(config_file(tmp_path / "llm.json", server, audit))
    first = CliRunner().invoke(main, ["chat", str(clip), "--config", cfg, "--experts", "ela",
                                      "-m", "When does the patch appear?"])  # fmt: skip
    assert first.exit_code == 0, first.output
    sent = requests(audit)
    assert len(sent) == 1 and images_sent(sent[0]) == 1
    grounding = first_text(sent[0])
    span = next(ln for ln in grounding.splitlines() if "Temporal (local_span): " in ln)
    start = int(span.split("frames ")[1].split("-")[0])
    assert abs(start - SPAN[0]) <= 3 and "The image is a sheet of" in grounding
    history = next((tmp_path / "cache" / "chats").glob("paste-*.chat.json"))
    assert history.with_name(history.name.replace(".chat.json", ".keyframes.png")).is_file()

    def no_analysis(*_a: object, **_k: object) -> None:
        raise AssertionError("a resumed chat must not analyse the clip again")

    monkeypatch.setattr("forenscope.video.analyze.analyze_video", no_analysis)
    again = CliRunner().invoke(main, ["chat", str(clip), "--config", cfg, "-m", "Where?"])
    assert again.exit_code == 0, again.output
    assert [m["role"] for m in requests(audit)[-1]["messages"][3:]] == [
        "user", "assistant", "user"]  # fmt: skip
    # a saved clip report grounds a new conversation; its keyframes are decoded from the clip
    out = tmp_path / "out"
    CliRunner().invoke(main, ["video", str(clip), "--budget", "3", "--experts", "ela", "--out",
                              str(out), "--format", "json"])  # fmt: skip
    saved = next(out.rglob("*.json"))
    new_history = tmp_path / "saved.chat.json"
    res = CliRunner().invoke(
        main,
        [
            "chat",
            str(clip),
            "--config",
            cfg,
            "--report",
            str(saved),
            "--history",
            str(new_history),
            "-m",
            "Which frames?",
        ],
    )
    assert res.exit_code == 0, res.output
    request = requests(audit)[-1]
    assert images_sent(request) == 1 and "sheet of 3 keyframe(s)" in first_text(request)
    assert json.loads(new_history.read_text())["turns"][0]["content"] == "Which frames?"
    # the report of another clip is refused with a clear error
    other = pasted_clip(tmp_path / "other.mp4", "warp")
    bad = CliRunner().invoke(main, ["chat", str(other), "--config", cfg, "--report", str(saved),
                                    "-m", "?"])  # fmt: skip
    assert bad.exit_code == 1 and "the report is of another file" in bad.output
