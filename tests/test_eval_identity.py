"""A resumed `eval --out` under changed settings never reuses old rows (issue 14): the run
identity holds the resolved analysis config for image systems and the endpoint, model and
protocol for LLM systems; `--fusion`/`--map-fusion` set the config; `--protocol paper` sets
seed 000's knobs and the record says where each came from (issue 12)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from forenscope.config import ENV
from forenscope.eval.align import Preprocess
from forenscope.eval.cli import eval_cli
from forenscope.eval.journal import JournalMismatch, changed_settings
from forenscope.eval.run import EvalConfig, evaluate
from forenscope.eval.systems import LLMOptions
from forenscope.mllm.fake_server import FakeServerProcess
from test_eval_datasets import make_dataset

PRE = Preprocess("jpeg90", 16)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The analysis switches unset, and restored after the test (the CLI flags set them in
    os.environ). setenv, not delenv: delenv of an absent variable records nothing to undo, so a
    flag's value would leak into later tests."""
    for var in ENV.values():
        monkeypatch.setenv(var, "")  # empty = unset for AnalysisConfig.current()
    return monkeypatch


@pytest.fixture
def server() -> Iterator[FakeServerProcess]:
    with FakeServerProcess() as srv:
        yield srv


def test_changed_settings_names_the_dotted_keys() -> None:
    old = {"a": 1, "s": {"fusion": "fitted", "w": {"x": 1}}}
    new = {"a": 1, "s": {"fusion": "handset", "w": {"x": 1}}, "b": 2}
    assert changed_settings(old, new) == ["b", "s.fusion"]


def test_resume_under_another_fusion_is_refused(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=2, n_tampered=0, size=16)
    cfg = EvalConfig(str(manifest), "analysis:ela,exif", tmp_path / "run", pre=PRE)
    clean_env.setenv(ENV["fusion"], "handset")
    clean_env.setenv(ENV["map_fusion"], "handset")  # explicit: the defaults may change
    rec = evaluate(cfg, overlays=False)
    assert rec["config"]["system_settings"]["analysis_config"]["fusion"] == "handset"
    assert evaluate(cfg, overlays=False)["counts"]["resumed_from_journal"] == 4  # same: reused
    clean_env.setenv(ENV["fusion"], "fitted")
    with pytest.raises(JournalMismatch, match=r"changed: system_settings\.analysis_config\.fusion"):
        evaluate(cfg, overlays=False)
    clean_env.setenv(ENV["map_fusion"], "fitted")
    clean_env.setenv(ENV["fusion"], "handset")
    with pytest.raises(JournalMismatch, match=r"analysis_config\.map_fusion"):
        evaluate(cfg, overlays=False)


def test_eval_cli_fusion_flags_set_the_config_and_a_change_reruns_on_restart(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=2, n_tampered=0, size=16)
    out = tmp_path / "run"
    base = [str(manifest), "--system", "analysis:ela,exif", "--size", "16", "--out", str(out)]
    res = CliRunner().invoke(eval_cli, [*base, "--fusion", "handset", "--map-fusion", "fitted"])
    assert res.exit_code == 0, res.output
    settings = json.loads((out / "run.json").read_text())["config"]["system_settings"]
    assert settings["analysis_config"]["fusion"] == "handset"
    assert settings["analysis_config"]["map_fusion"] == "fitted"
    res = CliRunner().invoke(eval_cli, [*base, "--fusion", "fitted", "--map-fusion", "fitted"])
    assert res.exit_code == 1 and "analysis_config.fusion" in res.output, res.output
    res = CliRunner().invoke(eval_cli, [*base, "--fusion", "fitted", "--restart"])
    assert res.exit_code == 0, res.output
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["system_settings"]["analysis_config"]["fusion"] == "fitted"
    assert run["counts"]["scored_this_session"] == 4


def test_the_flags_do_not_leak_out_of_the_cli_tests() -> None:
    """Runs after the CLI test above: its --fusion/--map-fusion values are gone again."""
    import os

    assert not any(os.environ.get(var) for var in ENV.values())


def _llm_config(tmp_path: Path, srv: FakeServerProcess, model: str) -> Path:
    path = tmp_path / "llm.json"
    path.write_text(json.dumps({"base_url": srv.base_url, "model": model, "flavor": "openai",
                                "max_retries": 0, "pipeline": {"n": 2}}))  # fmt: skip
    return path


def test_resume_under_another_model_or_endpoint_is_refused(
    tmp_path: Path, server: FakeServerProcess
) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=2, n_tampered=0, size=16)
    llm = _llm_config(tmp_path, server, "fake-vision")
    cfg = EvalConfig(str(manifest), f"llm:{llm}", tmp_path / "run", pre=PRE)
    first = evaluate(cfg, overlays=False)
    assert first["config"]["system_settings"]["model"] == "fake-vision"
    assert evaluate(cfg, overlays=False)["counts"]["scored_this_session"] == 0
    _llm_config(tmp_path, server, "another-model")
    with pytest.raises(JournalMismatch, match=r"changed: system_settings\.model"):
        evaluate(cfg, overlays=False)
    llm.write_text(llm.read_text().replace("another-model", "fake-vision").replace(
        server.base_url, server.base_url.replace("127.0.0.1", "localhost")))  # fmt: skip
    with pytest.raises(JournalMismatch, match=r"system_settings\.base_url"):
        evaluate(cfg, overlays=False)


def test_protocol_paper_sets_seed_000_knobs_and_names_their_source(
    tmp_path: Path, server: FakeServerProcess
) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=3, n_fake=3, n_tampered=0, size=16)
    llm = _llm_config(tmp_path, server, "fake-vision")
    opts = LLMOptions({"n": 1}, protocol="paper")
    cfg = EvalConfig(str(manifest), f"llm:{llm}", tmp_path / "run", pre=PRE, llm=opts,
                     pool=str(manifest))  # fmt: skip
    rec = evaluate(cfg, overlays=False)
    system = rec["system"]
    assert (system["scoring"], system["k"], system["variant"], system["n"]) == ("votes", 2, 4, 1)
    assert system["knob_source"]["k"] == "protocol paper"
    assert system["knob_source"]["n"] == "override"  # an explicit option beats the preset
    assert system["knob_source"]["seed"] == "config"
    assert system["protocol"]["name"] == "paper" and "refusal" in system["protocol"]["refusals"]
    assert all(len(s["extra"]["example_ids"]) == 2 for s in rec["samples"])
    assert rec["config"]["system_settings"]["protocol"] == "paper"


def test_protocol_paper_without_a_pool_is_a_clear_error(
    tmp_path: Path, server: FakeServerProcess
) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=2, n_tampered=0, size=16)
    llm = _llm_config(tmp_path, server, "fake-vision")
    args = [str(manifest), "--system", f"llm:{llm}", "--out", str(tmp_path / "o"),
            "--protocol", "paper"]  # fmt: skip
    res = CliRunner().invoke(eval_cli, args)
    assert res.exit_code == 1 and "needs pipeline.pool" in res.output, res.output


def test_protocol_is_refused_for_an_image_system(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=1, n_fake=1, n_tampered=0, size=16)
    args = [str(manifest), "--system", "noop", "--out", str(tmp_path / "o"), "--protocol", "paper"]
    res = CliRunner().invoke(eval_cli, args)
    assert res.exit_code == 2 and "applies to llm: systems" in res.output
