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
