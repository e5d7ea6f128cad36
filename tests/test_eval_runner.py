"""The resumable runner: torn journal lines, config mismatch, kill -9 then resume, reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from forenscope.eval.align import Preprocess
from forenscope.eval.journal import Journal, JournalMismatch, read_journal
from forenscope.eval.records import SampleRecord
from forenscope.eval.run import EvalConfig, evaluate
from test_eval_datasets import make_dataset


def _record(key: str, p: float) -> SampleRecord:
    return SampleRecord(key=key, path=key, label="real", generator="camera", family="camera",
                        scope="none", source="s", format="JPEG", fake_probability=p)  # fmt: skip


def test_torn_last_line_is_dropped_and_appends_stay_valid(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path, {"type": "header", "config_hash": "h1"}) as j:
        j.add(_record("a", 0.1))
        j.add(_record("b", 0.2))
    with path.open("a") as f:
        f.write('{"type":"sample","key":"c","v"')  # a kill -9 mid-write
    header, recs, bad = read_journal(path)
    assert header is not None and set(recs) == {"a", "b"} and bad == 1
    assert recs["b"] == _record("b", 0.2)  # read back as the typed record that was written
    with Journal(path, {"type": "header", "config_hash": "h1"}) as j:
        assert set(j.records) == {"a", "b"}
        j.add(_record("c", 0.3))
    _, recs, bad = read_journal(path)
    assert set(recs) == {"a", "b", "c"} and bad == 0
    with pytest.raises(JournalMismatch):
        Journal(path, {"type": "header", "config_hash": "other"})


def _lines_by_key(journal: Path) -> Counter[str]:
    keys: Counter[str] = Counter()
    for line in journal.read_text().splitlines():
        rec = json.loads(line)
        if rec["type"] == "sample":
            keys[rec["key"]] += 1
    return keys


def test_kill_9_then_resume_counts_every_sample_once(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=250, n_fake=250, n_tampered=0, size=8)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "forenscope.eval", str(manifest), "--system", "noop:6",
           "--align", "none", "--out", str(out), "--jobs", "2"]  # fmt: skip
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    journal = out / "journal.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_bytes().count(b"\n") > 150:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its pool workers, mid-run
    proc.wait()
    done_before = sum(_lines_by_key(journal).values())
    assert 150 <= done_before < 500, "the kill must land mid-run"
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=60)
    keys = _lines_by_key(journal)
    assert len(keys) == 500 and set(keys.values()) == {1}  # each sample exactly once
    record = json.loads((out / "run.json").read_text())
    assert record["counts"]["resumed_from_journal"] == done_before
    assert record["counts"]["scored_this_session"] == 500 - done_before
    assert record["summary"]["overall"]["n_total"] == 500
    clean = evaluate(
        EvalConfig(str(manifest), "noop", tmp_path / "clean", pre=Preprocess("none"), fsync="never")
    )
    resumed = {r["key"]: r["fake_probability"] for r in record["samples"]}
    assert resumed == {r["key"]: r["fake_probability"] for r in clean["samples"]}


def test_analysis_run_writes_reports_with_localization(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=4, n_fake=4, n_tampered=2, size=48)
    cfg = EvalConfig(str(manifest), "analysis", tmp_path / "run", pre=Preprocess("jpeg90", 48))
    rec = evaluate(cfg)
    assert rec["counts"]["samples"] == 10 and rec["counts"]["errors"] == 0
    s = rec["summary"]
    assert set(s["subsets"]["source"]) == {"synth-real", "synth-fake", "synth-tamp"}
    assert s["localization"]["overall"]["n"] == 2 and "f1@fixed" in s["localization"]["overall"]
    assert "confusion_3class" in s and len(rec["files_seen"]) == 10
    assert rec["warnings"] and "aligned" in rec["warnings"][0]
    html = (tmp_path / "run" / "report.html").read_text()
    assert "<svg" in html and "polyline" in html and "WARNING" in html
    assert s["worst_errors"]  # dark JPEG reals vs bright PNG fakes: some are misjudged
    if s["worst_errors"]:  # each worst error shown with its overlay, inline
        assert html.count("data:image/png;base64,") == min(6, len(s["worst_errors"]))
    assert "| synth-fake |" in (tmp_path / "run" / "report.md").read_text()
    json.loads((tmp_path / "run" / "run.json").read_text())  # strict JSON (no NaN)
    again = evaluate(cfg)  # resume: nothing rescored, same numbers
    assert again["counts"]["scored_this_session"] == 0
    assert again["summary"]["overall"]["auc"] == s["overall"]["auc"]


def test_format_only_baseline_sees_the_container_unless_aligned(tmp_path: Path) -> None:
    # Same pixel statistics; only the container differs (fakes stored as uncompressed PNG).
    manifest = make_dataset(tmp_path / "data", n_real=30, n_fake=30, n_tampered=0, size=16,
                            fake_low=0, real_format="PNG", compress_level=0)  # fmt: skip
    raw = evaluate(
        EvalConfig(str(manifest), "format-only", tmp_path / "raw", pre=Preprocess("none"))
    )
    assert raw["summary"]["overall"]["auc"] > 0.95  # the file size alone separates the classes
    aligned = evaluate(
        EvalConfig(
            str(manifest), "format-only", tmp_path / "al", pre=Preprocess("jpeg90", 16), jobs=2
        )
    )
    assert aligned["summary"]["overall"]["n"] == 60
    assert aligned["summary"]["overall"]["auc"] < 0.8  # same pixels, same container: no signal


def test_cli_filters_perturbations_and_threshold(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from forenscope.eval.cli import eval_cli

    manifest = make_dataset(tmp_path / "data", n_real=3, n_fake=3, n_tampered=2, size=16)
    out = tmp_path / "run"
    args = [str(manifest), "--system", "noop", "--out", str(out), "--filter", "label!=tampered",
            "--perturb", "jpeg:75", "--perturb", "blur:1",
            "--threshold", "0.3", "--size", "16"]  # fmt: skip
    res = CliRunner().invoke(eval_cli, args)
    assert res.exit_code == 0, res.output
    assert "| acc@0.3 |" in res.output and "synth-tamp" not in res.output
    rec = json.loads((out / "run.json").read_text())
    assert rec["config"]["preprocess"] == "align=jpeg90 size=16 perturb=jpeg:75 perturb=blur:1"
    changed = CliRunner().invoke(eval_cli, [*args[:-4], "--threshold", "0.4", "--size", "16"])
    assert changed.exit_code != 0 and "another configuration" in changed.output
    bad = CliRunner().invoke(eval_cli, [*args, "--perturb", "sharpen:1"])
    assert bad.exit_code != 0 and "perturbation" in bad.output
