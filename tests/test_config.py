"""One place for the switches that change results, recorded in every Report."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from forenscope import analyze
from forenscope.cli import main
from forenscope.config import ENV, AnalysisConfig, ConfigError, config_key
from forenscope.forgeries import synthetic_photo


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FORENSCOPE_FUSION", "FORENSCOPE_MAP_FUSION", "FORENSCOPE_CLIP_DAAM"):
        monkeypatch.delenv(var, raising=False)
    assert AnalysisConfig.current().fusion == "fitted"
    monkeypatch.setenv("FORENSCOPE_FUSION", "handset")
    monkeypatch.setenv("FORENSCOPE_CLIP_DAAM", "0")
    config = AnalysisConfig.current()
    assert config.fusion == "handset" and config.clip_daam is False


def test_unknown_values_are_errors_not_silent_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORENSCOPE_FUSION", "fited")
    with pytest.raises(ConfigError, match="FORENSCOPE_FUSION"):
        AnalysisConfig.current()


def test_config_is_frozen_and_its_key_follows_its_values() -> None:
    a, b = AnalysisConfig(), AnalysisConfig(fusion="handset")
    with pytest.raises(ValueError):
        a.fusion = "handset"  # type: ignore[misc]
    assert config_key(a.record()) != config_key(b.record())
    assert config_key(a.record()) == config_key(AnalysisConfig().record())
    assert any(name.endswith("verdict.json") for name in a.record()["weights"])


def test_every_report_records_its_config(monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.BytesIO()
    Image.fromarray(synthetic_photo(64, 80, seed=1)).save(buf, "JPEG", quality=90)
    monkeypatch.setenv("FORENSCOPE_FUSION", "handset")
    report = analyze(buf.getvalue(), experts=["ela", "noise"], threshold=0.4)
    cfg = report.analysis_config
    assert cfg["fusion"] == "handset" and cfg["threshold"] == 0.4
    assert set(cfg["experts"]) == {"ela", "noise"}
    assert report.verdict.calibrated is False  # the hand-set pooling is never calibrated


def _png(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(synthetic_photo(96, 128, seed=3)).save(path)
    return path


def test_cli_flags_set_the_config_that_the_report_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ENV.values():
        monkeypatch.setenv(var, "")  # unset for the config; monkeypatch restores what the CLI sets
    args = ["analyze", str(_png(tmp_path)), "--json", "--experts", "noise,ela"]
    default = CliRunner().invoke(main, args)
    flagged = CliRunner().invoke(main, [*args, "--fusion", "handset", "--no-clip-daam"])
    assert default.exit_code in (0, 1, 4) and flagged.exit_code in (0, 1, 4), flagged.output
    a, b = (json.loads(r.stdout.splitlines()[0])["analysis_config"] for r in (default, flagged))
    assert (a["fusion"], a["clip_daam"]) == ("fitted", True)
    assert (b["fusion"], b["clip_daam"]) == ("handset", False)


def test_cli_rejects_a_bad_environment_value_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORENSCOPE_MAP_FUSION", "fited")
    result = CliRunner().invoke(main, ["analyze", str(_png(tmp_path))])
    assert result.exit_code == 2 and "FORENSCOPE_MAP_FUSION" in result.output
