"""`forenscope analyze --out` resumes only what was analysed under the same settings (issue 14).

The index keys every entry on the file's path, its sha256 and the settings key
(`batch_config_key`); a rerun under other experts, threshold, analysis configuration or LLM
re-analyses, an identical rerun analyses nothing, and a killed run loses and repeats nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from forenscope.batch import INDEX_NAME, batch_config_key, read_index
from forenscope.cli import main
from forenscope.config import ENV
from forenscope.mllm.config import LLMConfig

FAST = "exif,ela"


def _photos(folder: Path, n: int, size: tuple[int, int] = (96, 128)) -> list[Path]:
    folder.mkdir()
    rng = np.random.default_rng(7)
    paths = []
    for i in range(n):
        rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        path = folder / f"img{i:02d}.jpg"
        Image.fromarray(rgb).save(path, quality=90)
        paths.append(path)
    return paths


def _lines(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / INDEX_NAME).read_text().splitlines()]


def _run(folder: Path, out: Path, *extra: str) -> list[str]:
    """Runs the CLI; returns the names of the files it analysed (printed one per line)."""
    result = CliRunner().invoke(main, ["analyze", str(folder), "--out", str(out), *extra])
    assert result.exit_code in (0, 1, 4), result.output
    return sorted(Path(line.split(": ")[0]).name for line in result.stdout.splitlines())


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)


def test_identical_rerun_analyses_nothing(tmp_path: Path) -> None:
    _photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert _run(tmp_path / "in", out, "--experts", FAST) == ["img00.jpg", "img01.jpg"]
    assert _run(tmp_path / "in", out, "--experts", FAST) == []
    # The same experts in another order and with a duplicate are the same settings.
    assert _run(tmp_path / "in", out, "--experts", "ela,exif,ela") == []
    assert len(_lines(out)) == 2


def test_rerun_with_other_experts_reanalyses(tmp_path: Path) -> None:
    _photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    _run(tmp_path / "in", out, "--experts", "exif", "--format", "json")
    assert _run(tmp_path / "in", out, "--experts", FAST, "--format", "json") == [
        "img00.jpg",
        "img01.jpg",
    ]
    lines = _lines(out)
    assert len(lines) == 4 and len({line["config"] for line in lines}) == 2
    report = json.loads(Path(str(lines[-1]["outputs"]["json"])).read_text())  # type: ignore[index]
    assert sorted(e["expert"] for e in report["experts"]) == ["ela", "exif"], "not the stale one"
    # Back to the first settings: their entries are still in the index, so nothing runs.
    assert _run(tmp_path / "in", out, "--experts", "exif", "--format", "json") == []


def test_rerun_with_another_threshold_or_analysis_config_reanalyses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    _run(tmp_path / "in", out, "--experts", FAST)
    assert _run(tmp_path / "in", out, "--experts", FAST, "--threshold", "0.7") == ["img00.jpg"]
    monkeypatch.setenv(ENV["fusion"], "handset")
    assert _run(tmp_path / "in", out, "--experts", FAST, "--threshold", "0.7") == ["img00.jpg"]
    assert _run(tmp_path / "in", out, "--experts", FAST, "--threshold", "0.7") == []


def test_changed_file_is_reanalysed(tmp_path: Path) -> None:
    (first,) = _photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    _run(tmp_path / "in", out, "--experts", FAST)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(first, quality=80)
    assert _run(tmp_path / "in", out, "--experts", FAST) == ["img00.jpg"]


def test_index_lines_without_a_settings_key_are_stale(tmp_path: Path) -> None:
    _photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    _run(tmp_path / "in", out, "--experts", FAST)
    old = []
    for line in _lines(out):  # as an index written before settings were recorded
        line.pop("config")
        old.append(json.dumps(line))
    (out / INDEX_NAME).write_text("\n".join(old) + "\n")
    assert all(key[2] == "" for key in read_index(out))
    assert _run(tmp_path / "in", out, "--experts", FAST) == ["img00.jpg", "img01.jpg"]
    assert _run(tmp_path / "in", out, "--experts", FAST) == []


def test_settings_key_covers_what_changes_a_result_and_nothing_else() -> None:
    llm = LLMConfig(base_url="http://127.0.0.1:9/v1", model="m1", api_key_env="MY_KEY")
    base = batch_config_key(["exif"], 0.5, llm)
    assert base == batch_config_key(["exif"], 0.5, llm.model_copy(update={"timeout_s": 5.0}))
    assert base == batch_config_key(["exif"], 0.5, llm.model_copy(update={"api_key_env": "K2"}))
    assert base != batch_config_key(["exif"], 0.5, llm.model_copy(update={"model": "m2"}))
    assert base != batch_config_key(["exif"], 0.5, None)
    assert base != batch_config_key(["exif", "ela"], 0.5, llm)
    assert base != batch_config_key(["exif"], 0.6, llm)
    assert batch_config_key(None, 0.5) != batch_config_key(["exif"], 0.5)


def _kill_after(cmd: list[str], index: Path, lines: int, env: dict[str, str]) -> None:
    """Start `cmd` and SIGKILL it once `index` has `lines` lines (or it ended)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if index.exists() and index.read_text().count("\n") >= lines:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def _whole_lines(index: Path) -> list[dict[str, Any]]:
    """Every complete record, duplicates kept (read_index would fold them)."""
    records = []
    for line in index.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # torn by the kill; its file is redone
    return records


def test_killed_run_with_options_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    """SIGKILL a real `forenscope analyze --out -j 2` mid-run, then resume it."""
    _photos(tmp_path / "in", 8, size=(480, 640))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "forenscope", "analyze", str(tmp_path / "in"), "--out",
           str(out), "--experts", "ela,noise", "--threshold", "0.6", "-j", "2"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    _kill_after(cmd, out / INDEX_NAME, 2, env)
    done_before = len(read_index(out))
    assert 2 <= done_before < 8, "the kill must land mid-run for this test to mean anything"
    subprocess.run(cmd, check=False, capture_output=True, timeout=300, env=env)
    records = _whole_lines(out / INDEX_NAME)
    names = sorted(Path(rec["path"]).name for rec in records)
    assert names == [f"img{i:02d}.jpg" for i in range(8)], "each file exactly once"
    assert len({rec["config"] for rec in records}) == 1 and records[0]["config"]
    assert all(rec["status"] != "error" for rec in records)
