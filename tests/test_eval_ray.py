"""`--engine ray` (issue 5, item 7): the local engine's records and metrics on a local Ray
instance, resume through the shared journal, and Ray as an optional extra."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from forenscope.errors import MissingDependencyError
from forenscope.eval import runner
from forenscope.eval.align import Preprocess
from forenscope.eval.cli import eval_cli
from forenscope.eval.journal import Journal
from forenscope.eval.ray_engine import _result, import_ray, ray_session
from forenscope.eval.run import EvalConfig, evaluate, select_samples
from test_eval_datasets import make_dataset

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None, reason="ray not installed (forenscope[ray])"
)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """One local instance for the module (start-up is ~8 s); the engine reuses it."""
    with ray_session(None, 2) as ray:
        yield ray
    assert not ray.is_initialized()  # the session that started Ray also stops it


def _comparable(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in ("elapsed_s", "type")}


@needs_ray
@pytest.mark.parametrize(
    "system", ["analysis:learned_localizer,gram_baseline,noise", "learned_localizer"]
)
def test_ray_engine_gives_the_local_engines_records_and_metrics(
    system: str, tmp_path: Path, local_ray: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fused analysis (3-class scores, labels) and one expert (its own heatmaps)."""
    manifest = make_dataset(tmp_path / "data", n_real=16, n_fake=16, n_tampered=8, size=128)
    args = [str(manifest), "--system", system, "--size", "128",
            "--jobs", "2", "--fsync", "never"]  # fmt: skip
    local = CliRunner().invoke(eval_cli, [*args, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output

    def no_local_engine(*a: object, **k: object) -> None:
        raise AssertionError("--engine ray must not fall back to the local engine")

    monkeypatch.setattr("forenscope.eval.runner.run_sync", no_local_engine)
    out = tmp_path / "ray"
    rayed = CliRunner().invoke(eval_cli, [*args, "--out", str(out), "--engine", "ray"])
    assert rayed.exit_code == 0, rayed.output
    a = json.loads((tmp_path / "local" / "run.json").read_text())
    b = json.loads((out / "run.json").read_text())
    assert (a["config"]["engine"], b["config"]["engine"]) == ("local", "ray")
    assert a["config_hash"] == b["config_hash"]  # the engine does not change what is measured
    assert b["counts"]["scored_this_session"] == 40 and b["counts"]["errors"] == 0
    assert [_comparable(r) for r in a["samples"]] == [_comparable(r) for r in b["samples"]]
    probs = {r["fake_probability"] for r in b["samples"]}
    assert len(probs) >= 3  # real per-sample numbers, not a constant
    locs = {json.dumps(r["loc"], sort_keys=True) for r in b["samples"] if r["loc"]}
    if system == "learned_localizer":  # per-image localization numbers from its own heatmaps
        assert len(locs) > 1
    else:
        assert all(r["scores"] and r["pred_label"] for r in b["samples"])
    assert a["summary"] == b["summary"]  # every metric, per subset, localization included
    assert local.stdout.replace(str(tmp_path / "local"), "OUT") == rayed.stdout.replace(
        str(out), "OUT"
    )  # the same printed tables (stdout: the progress bar is on stderr)
    journal = (out / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 41  # header + each sample once


@needs_ray
def test_ray_engine_resumes_from_a_half_filled_journal(tmp_path: Path, local_ray: Any) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=20, n_fake=20, n_tampered=0, size=8)
    cfg = EvalConfig(str(manifest), "noop", tmp_path / "run", pre=Preprocess("none"),
                     jobs=2, engine="ray", fsync="never")  # fmt: skip
    samples = select_samples(cfg)
    header = {"type": "header", "config_hash": cfg.hash(), "config": cfg.identity()}
    with Journal(cfg.out / "journal.jsonl", header) as journal:
        for s in samples[::2]:  # a marker value the engine would never compute
            marked = runner.base_record(s)
            marked.fake_probability, marked.elapsed_s = 0.5, 0.0
            journal.add(marked)
    ticks: list[int] = []

    def progress(total: int) -> runner.Progress:
        ticks.append(total)
        return lambda n: ticks.append(n)

    rec = evaluate(cfg, progress=progress, overlays=False)
    assert rec["counts"]["resumed_from_journal"] == 20
    assert rec["counts"]["scored_this_session"] == 20 and ticks == [20] + [1] * 20
    keys = Counter(
        json.loads(line)["key"] for line in (cfg.out / "journal.jsonl").read_text().splitlines()[1:]
    )
    assert len(keys) == 40 and set(keys.values()) == {1}  # nothing computed or written twice
    clean = evaluate(replace(cfg, out=tmp_path / "clean", engine="local"), overlays=False)
    computed = {r["key"]: r["fake_probability"] for r in clean["samples"]}
    prefilled = {s.path for s in samples[::2]}
    for r in rec["samples"]:
        assert r["fake_probability"] == (0.5 if r["key"] in prefilled else computed[r["key"]])
    again = evaluate(cfg, overlays=False)  # finished: resumes without scoring anything
    assert again["counts"]["scored_this_session"] == 0


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"forenscope\[ray\]"):
        import_ray()
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=2, n_tampered=0, size=8)
    base = [str(manifest), "--system", "noop", "--align", "none", "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(eval_cli, [*base, "--engine", "ray"])
    assert res.exit_code == 1 and "forenscope[ray]" in res.output
    res = CliRunner().invoke(eval_cli, [*base, "--ray-address", "127.0.0.1:6379"])
    assert res.exit_code == 2 and "--engine ray" in res.output
    llm = tmp_path / "llm.json"
    llm.write_text('{"base_url": "http://127.0.0.1:9/v1", "model": "m"}')
    cfg = EvalConfig(str(manifest), f"llm:{llm}", tmp_path / "l", engine="ray")
    with pytest.raises(ValueError, match="runs image systems"):
        evaluate(cfg)


def test_a_worker_that_dies_on_a_sample_is_an_error_value(tmp_path: Path) -> None:
    class Crashed(Exception):
        pass

    def get(ref: object) -> None:
        raise Crashed("The worker died unexpectedly while executing this task.\nmore")

    fake_ray = SimpleNamespace(
        get=get, exceptions=SimpleNamespace(WorkerCrashedError=Crashed, OutOfMemoryError=OSError)
    )
    manifest = make_dataset(tmp_path / "data", n_real=1, n_fake=0, n_tampered=0, size=8)
    sample = select_samples(EvalConfig(str(manifest), "noop", tmp_path))[0]
    rec = _result(fake_ray, object(), sample)
    assert rec.key == sample.path and rec.fake_probability is None
    assert rec.error == "Crashed: worker died scoring this sample: The worker died " + (
        "unexpectedly while executing this task."
    )
