"""Eval records are typed models (issue 14): built, journaled and read as `SampleRecord`, with
the journal's JSON line format unchanged, so journals written before still resume (import
circles are checked package-wide in test_import_cycles.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from forenscope.eval.align import Preprocess
from forenscope.eval.journal import read_journal
from forenscope.eval.metrics import localization_record
from forenscope.eval.records import Localization, SampleRecord
from forenscope.eval.run import EvalConfig, evaluate, select_samples
from forenscope.eval.runner import base_record
from test_eval_datasets import make_dataset

# The keys of a sample line as the dict-building runner wrote them (before SampleRecord).
OLD_KEYS = ("key", "path", "label", "generator", "family", "scope", "source", "format",
            "sha256_expected", "sha256_seen", "fake_probability", "scores", "pred_label",
            "attribution", "refusal", "error", "usage", "loc", "extra", "elapsed_s")  # fmt: skip


def _old_line(sample: Any, p: float) -> dict[str, Any]:
    """A journal line exactly as the old runner wrote it: base_record's dict plus elapsed_s."""
    line = {"type": "sample", **{k: None for k in OLD_KEYS}, "extra": {}, "elapsed_s": 0.001}
    line.update(key=sample.path, path=sample.path, label=sample.label, generator=sample.generator,
                family=sample.family, scope=sample.scope, source=sample.source,
                format=sample.format, sha256_expected=sample.sha256, sha256_seen=sample.sha256,
                fake_probability=p)  # fmt: skip
    return line


def test_a_journal_of_the_old_dict_format_still_resumes(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=3, n_fake=3, n_tampered=0, size=8)
    cfg = EvalConfig(str(manifest), "noop", tmp_path / "run", pre=Preprocess("none"))
    samples = select_samples(cfg)
    header = {"type": "header", "config_hash": cfg.hash(), "config": cfg.identity()}
    marker = 0.123  # noop scores k/255: never this
    cfg.out.mkdir()
    lines = [header, _old_line(samples[0], marker), _old_line(samples[1], marker)]
    (cfg.out / "journal.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    rec = evaluate(cfg, overlays=False)
    assert rec["counts"]["resumed_from_journal"] == 2
    assert rec["counts"]["torn_journal_lines_skipped"] == 0
    by_key = {r["key"]: r for r in rec["samples"]}
    assert by_key[samples[0].path]["fake_probability"] == marker
    assert by_key[samples[2].path]["fake_probability"] not in (None, marker)  # scored now
    _, records, bad = read_journal(cfg.out / "journal.jsonl")
    assert bad == 0 and all(isinstance(r, SampleRecord) for r in records.values())
    assert len(records) == 6


def test_the_journal_line_keeps_the_old_keys() -> None:
    truth = np.zeros((16, 16), bool)
    truth[2:8, 2:8] = True
    old_loc = localization_record(truth.astype(np.float32) * 0.9, truth)  # the dict journaled
    rec = SampleRecord(key="a", path="a", label="fake", generator="g", family="f", scope="s",
                       source="src", format="PNG", fake_probability=0.5,
                       loc=Localization.model_validate(old_loc))  # fmt: skip
    line = rec.journal_line()
    assert line["type"] == "sample" and set(OLD_KEYS) <= set(line)
    assert set(line) - set(OLD_KEYS) == {"type", "explanation"}
    assert line["loc"] == old_loc  # the localization numbers under their metric names
    back = SampleRecord.from_journal(json.loads(json.dumps(line)))
    assert back == rec and back.loc is not None and back.loc.f1_fixed == 1.0


def test_an_old_stage2_line_reads_its_judge_fields(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=0, n_fake=0, n_tampered=2, size=8)
    samples = select_samples(EvalConfig(str(manifest), "noop", tmp_path / "o"))
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "calls": 1, "cached_calls": 0,
             "cost_usd": None}  # fmt: skip
    judged = {"status": "ok", "usage": usage, "frame_position": 1.0, "box_iou": 0.5,
              "field_completeness": 1.0, "flesch_reading_ease": 60.0, "method": "diffusion",
              "scope": "local", "object_position": 0, "judge_refusal": None,
              "judge_error": None, "judge_answer": "No"}  # fmt: skip
    plain = {"status": "unparseable", "usage": usage}
    path = tmp_path / "j.jsonl"
    pairs = zip(samples, (judged, plain), strict=True)
    lines = [{**_old_line(s, 0.7), "explanation": e} for s, e in pairs]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    _, records, bad = read_journal(path)
    assert bad == 0
    first, second = (records[s.path].explanation for s in samples)
    assert first is not None and first.judged and first.object_position == 0
    assert second is not None and not second.judged and second.frame_position is None


def test_a_sample_line_that_is_not_a_record_is_skipped_and_rescored(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=1, n_fake=1, n_tampered=0, size=8)
    cfg = EvalConfig(str(manifest), "noop", tmp_path / "run", pre=Preprocess("none"))
    samples = select_samples(cfg)
    header = {"type": "header", "config_hash": cfg.hash(), "config": cfg.identity()}
    broken = {**base_record(samples[0]).journal_line(), "fake_probability": "very"}
    cfg.out.mkdir()
    (cfg.out / "journal.jsonl").write_text(json.dumps(header) + "\n" + json.dumps(broken) + "\n")
    rec = evaluate(cfg, overlays=False)
    assert rec["counts"]["torn_journal_lines_skipped"] == 1
    assert rec["counts"]["scored_this_session"] == 2
    assert all(r["fake_probability"] is not None for r in rec["samples"])
