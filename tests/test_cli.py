"""The command line: batch analysis, exit codes, bad files, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from forenscope.batch import INDEX_NAME, read_index
from forenscope.cli import EXIT_CLEAN, EXIT_ERRORS, EXIT_SUSPICIOUS, EXIT_USAGE, main
from forenscope.forgeries import Box, example_photo, make_jpeg_region, synthetic_photo
from forenscope.types import Report


def _write_jpeg(path: Path, rgb: np.ndarray, quality: int = 90) -> Path:
    Image.fromarray(rgb).save(path, quality=quality)
    return path


def test_experts_command_lists_every_expert() -> None:
    result = CliRunner().invoke(main, ["experts", "--json"])
    assert result.exit_code == 0, result.output
    names = {row["name"] for row in json.loads(result.output)}
    assert {"ela", "noise", "exif", "c2pa"} <= names


def test_unknown_expert_is_a_usage_error(tmp_path: Path) -> None:
    img = _write_jpeg(tmp_path / "a.jpg", synthetic_photo(64, 64))
    result = CliRunner().invoke(main, ["analyze", str(img), "--experts", "elaa"])
    assert result.exit_code == EXIT_USAGE
    assert "did you mean" in result.output


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "nope.jpg")])
    assert result.exit_code == EXIT_USAGE
    assert "no such file" in result.output


def test_batch_goes_on_past_bad_files(tmp_path: Path) -> None:
    good = _write_jpeg(tmp_path / "good.jpg", synthetic_photo(120, 160))
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.png").write_text("<html>not an image</html>")
    (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["analyze", str(tmp_path), "--out", str(out), "--json"])
    assert result.exit_code == EXIT_ERRORS, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 4
    index = read_index(out)
    assert len(index) == 4
    by_name = {Path(rec["path"]).name: rec for rec in index.values()}
    for bad in ("empty.jpg", "text.png", "cut.jpg"):
        assert by_name[bad]["status"] == "error"
        assert by_name[bad]["error"]["message"]
    assert by_name["good.jpg"]["status"] in ("clean", "suspicious", "inconclusive")
    assert Path(by_name["good.jpg"]["outputs"]["html"]).is_file()


def test_exit_code_reports_suspicious(tmp_path: Path) -> None:
    photo = _write_jpeg(tmp_path / "photo.jpg", example_photo(), quality=92)
    forged = make_jpeg_region(example_photo(), Box(640, 96, 256, 192), region_quality=50)
    (tmp_path / "forged.jpg").write_bytes(forged.data)
    clean = CliRunner().invoke(main, ["analyze", str(photo)])
    assert clean.exit_code == EXIT_CLEAN, clean.output
    dirty = CliRunner().invoke(main, ["analyze", str(tmp_path / "forged.jpg")])
    assert dirty.exit_code == EXIT_SUSPICIOUS, dirty.output


@pytest.mark.slow
def test_killed_run_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(10):
        _write_jpeg(folder / f"img{i:02d}.jpg", synthetic_photo(600, 800, seed=i))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "forenscope", "analyze", str(folder), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index = out / INDEX_NAME
    deadline = time.time() + 120
    while time.time() < deadline:
        if index.exists() and len(index.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(read_index(out))
    assert 3 <= done_before < 10, "the kill must land mid-run for this test to mean anything"
    subprocess.run(cmd, check=False, capture_output=True, timeout=300)
    records = []
    for line in index.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by the kill is redone, as read_index does
    names = sorted(Path(rec["path"]).name for rec in records)
    assert names == [f"img{i:02d}.jpg" for i in range(10)], "each file exactly once"


def test_batch_of_hostile_and_unusual_files(tmp_path: Path) -> None:
    """The issue's list: a clear per-file error or a real analysis each; the batch ends."""
    import io_fixtures as fx

    folder = tmp_path / "in"
    folder.mkdir()
    made = {
        "error": [
            fx.write_zero_byte(folder),
            fx.write_truncated_jpeg(folder),
            fx.write_text_as_jpg(folder),
            fx.write_png_claiming(folder, 30000, 30000),
        ],
        "analysed": [
            fx.write_tiff16_grey(folder, np.linspace(0, 65535, 64 * 64).reshape(64, 64)),
            fx.write_cmyk_jpeg(folder),
            fx.write_animated_gif(folder, [(255, 0, 0), (0, 255, 0), (0, 0, 255)]),
            fx.write_palette_png_transparent(folder),
        ],
    }
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["analyze", str(folder), "--out", str(out)])
    assert result.exit_code == EXIT_ERRORS, result.output
    records = {Path(rec["path"]).name: rec for rec in read_index(out).values()}
    assert len(records) == 8
    for path in made["error"]:
        rec = records[path.name]
        assert rec["status"] == "error", rec
        assert path.name in rec["error"]["message"], "the message must name the file"
    for path in made["analysed"]:
        assert records[path.name]["status"] in ("clean", "suspicious", "inconclusive"), records[
            path.name
        ]
    too_big = records[made["error"][3].name]["error"]
    assert too_big["type"] == "ImageTooLargeError"


# --- issue 13, item 6: the CLI fixes -----------------------------------------------------------


def _ai_png(path: Path, seed: int = 0) -> Path:
    """A PNG whose A1111 parameters chunk proves generation (provenance decides: suspicious)."""
    from provenance_fixtures import A1111_RUNS, natural_rgb, png_bytes

    path.write_bytes(
        png_bytes(natural_rgb(64, 64, seed=seed), {"parameters": A1111_RUNS["txt2img"]})
    )
    return path


def test_resumed_run_counts_and_exits_on_every_result(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    _ai_png(folder / "ai.png")
    out = tmp_path / "out"
    args = ["analyze", str(folder), "--out", str(out), "--experts", "generator_metadata"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == EXIT_SUSPICIOUS, first.output
    # a new file no expert can judge: alone it would exit 4 (inconclusive)
    Image.fromarray(synthetic_photo(64, 64)).save(folder / "plain.png")
    second = CliRunner().invoke(main, args)
    assert second.exit_code == EXIT_SUSPICIOUS, second.output  # the earlier AI image counts
    assert [line.split(":")[0] for line in second.stdout.splitlines()] == [
        str(folder / "plain.png")
    ]  # only the new file is analysed and printed
    assert "1 suspicious, 1 inconclusive" in second.stderr
    assert "(1 of them done by an earlier run)" in second.stderr
    third = CliRunner().invoke(main, args)  # nothing left to do: still the batch's status
    assert third.exit_code == EXIT_SUSPICIOUS, third.output
    assert "1 suspicious, 1 inconclusive" in third.stderr and "(2 of them" in third.stderr


def test_empty_folder_or_unmatched_glob_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no image here")
    result = CliRunner().invoke(main, ["analyze", str(empty)])
    assert result.exit_code == EXIT_USAGE
    assert f"warning: no image file in {empty}" in result.stderr
    assert "nothing to analyse" in result.stderr
    result = CliRunner().invoke(main, ["analyze", str(tmp_path / "*.webp")])
    assert result.exit_code == EXIT_USAGE and "no file matches" in result.stderr
    # an empty folder next to real input is only a warning
    _ai_png(tmp_path / "ai.png")
    result = CliRunner().invoke(
        main, ["analyze", str(empty), str(tmp_path / "ai.png"), "--experts", "generator_metadata"]
    )
    assert result.exit_code == EXIT_SUSPICIOUS, result.output
    assert f"warning: no image file in {empty}" in result.stderr


def test_models_list_includes_the_face_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forenscope.models.faces import FACE_MESH, FACE_MODELS

    monkeypatch.setenv("FORENSCOPE_FACE_MODELS_DIR", str(tmp_path))
    (tmp_path / FACE_MESH.filename).write_bytes(b"not the pinned file")
    result = CliRunner().invoke(main, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert set(FACE_MODELS) <= set(rows)
    assert rows[FACE_MESH.name]["sha256"] == FACE_MESH.sha256
    assert rows[FACE_MESH.name]["cached"] is None  # present but not the pinned file
    text = CliRunner().invoke(main, ["models", "list"]).output
    assert "mediapipe-face-landmark\n" in text and "Apache-2.0" in text


def test_runtime_chatter_is_dropped_and_other_stderr_kept(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from forenscope.faces.tflite import RUNTIME_CHATTER, drop_native_stderr

    with drop_native_stderr(RUNTIME_CHATTER):
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"a real warning\n")
    assert capfd.readouterr().err == "a real warning\n"


def test_loading_a_face_model_prints_nothing(face_models: Path) -> None:
    code = (
        "from forenscope.faces.tflite import TFLiteModel\n"
        "from forenscope.models.faces import FACE_MESH, model_path\n"
        "TFLiteModel(model_path(FACE_MESH)); print('loaded')\n"
    )
    env = {**os.environ, "FORENSCOPE_FACE_MODELS_DIR": str(face_models)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "loaded\n"
    assert "XNNPACK" not in proc.stderr and proc.stderr == ""


def test_train_does_not_default_to_the_shipped_heads() -> None:
    from forenscope.train.cli import DEFAULT_OUT, HEADS_DIR, train_cli

    out = next(p for p in train_cli.params if p.name == "out")
    assert Path(str(out.default)) == DEFAULT_OUT
    assert DEFAULT_OUT.resolve() != HEADS_DIR.resolve() and not DEFAULT_OUT.is_absolute()
    help_text = CliRunner().invoke(main, ["train", "--help"]).output
    assert "[default: forenscope-heads]" in help_text


def test_llm_fake_server_help_lists_its_options() -> None:
    result = CliRunner().invoke(main, ["llm", "fake-server", "--help"])
    assert result.exit_code == 0, result.output
    assert "usage: forenscope llm fake-server" in result.output
    assert "--faults" in result.output and "--port" in result.output
    assert "see --help of it" not in result.output


def test_chat_history_is_kept_out_of_the_evidence_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forenscope.llm_cli import default_history
    from forenscope.mllm import chat as chat_module

    evidence = tmp_path / "evidence"
    evidence.mkdir()
    image = _ai_png(evidence / "ai.png")
    report = tmp_path / "report.json"
    report.write_text(forenscope_analyze(image).model_dump_json())

    async def fake_achat(config: object, messages: object) -> str:
        return "an answer"

    monkeypatch.setattr(chat_module, "achat", fake_achat)
    monkeypatch.setenv("FORENSCOPE_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("FORENSCOPE_LLM_MODEL", "fake")
    before = sorted(evidence.iterdir())
    args = ["chat", str(image), "--report", str(report), "-m", "Why?"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert sorted(evidence.iterdir()) == before  # nothing written next to the evidence
    history = default_history(image)
    assert not history.is_relative_to(evidence)
    assert json.loads(history.read_text())["turns"][1]["content"] == "an answer"
    assert str(history) in result.stderr
    again = CliRunner().invoke(main, [*args[:-1], "And?"])
    assert again.exit_code == 0, again.output
    assert len(json.loads(history.read_text())["turns"]) == 4  # the conversation resumed


def forenscope_analyze(path: Path) -> Report:
    from forenscope import analyze

    return analyze(str(path), experts=["generator_metadata"])


def test_llm_run_prints_one_line_per_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forenscope import llm_cli as llm_cli_module
    from forenscope.types import ErrorInfo, Stage1Result
    from forenscope.types.llm import ImageRun

    ok = ImageRun(
        path="a.png",
        stage1=Stage1Result(
            status="ok", probability=0.8, method="votes", yes=4, no=1, prompt_version="v", model="m"
        ),
    )
    broken = ImageRun(path="b.png", error=ErrorInfo(type="ImageDecodeError", message="b.png: bad"))
    monkeypatch.setattr(llm_cli_module, "_engine_run", lambda *a, **k: ([ok, broken], _Usage()))
    (tmp_path / "a.png").write_bytes(b"")
    result = CliRunner().invoke(
        main, ["llm", "run", str(tmp_path / "a.png"), "--out-dir", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("a.png: stage 1 ok, P(fake) 0.80 (4 yes, 1 no); stage 2 not run")
    assert lines[1].startswith("b.png: input error: b.png: bad")


class _Usage:
    def model_dump(self) -> dict[str, int]:
        return {"calls": 0}
