"""LiteLLM's proxy as the MLLM backend (issue 12): a real `litellm` process on 127.0.0.1 with
`mock_response` models, and a model it forwards to the fake vision server, behind
`analyze --llm`, `eval run --system llm:`, `eval ablate` and `chat`. Nothing leaves loopback.

LiteLLM lives in its own environment (its proxy pins versions that clash with Forenscope's):
FORENSCOPE_LITELLM=/path/to/bin/litellm, or `litellm` on PATH.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import forenscope
from forenscope.eval.cli import eval_cli
from forenscope.mllm.config import load_config
from forenscope.mllm.fake_server import FakeServerProcess
from forenscope.mllm.litellm_proxy import (
    LITELLM_ENV,
    LiteLLMProxy,
    find_litellm,
    forward_model,
    mock_model,
)
from test_eval_datasets import make_dataset

PHOTO = Path(forenscope.__file__).parent / "data" / "seeding.jpg"
STAGE2 = json.dumps({"location": {"relative": "the sky", "absolute": "upper left of the frame",
                                  "box": [0, 0, 0.3, 0.3]},
                     "forged_content": "a pasted cloud", "visible_traces": ["soft edge"],
                     "method": "diffusion", "scope": "local", "reasoning": "mock"})  # fmt: skip

pytestmark = pytest.mark.skipif(
    find_litellm() is None,
    reason="litellm proxy not installed: python3 -m venv .venv-litellm && .venv-litellm/bin/pip "
    f"install 'litellm[proxy]' (or set {LITELLM_ENV} to a litellm executable)",
)


@pytest.fixture(scope="module")
def proxy() -> Iterator[tuple[LiteLLMProxy, FakeServerProcess]]:
    with FakeServerProcess("--delay", "0") as backend:
        models = [mock_model("mock-yes", "Yes"), mock_model("mock-analysis", STAGE2),
                  forward_model("fake-vision", backend.base_url, "fake-vision")]  # fmt: skip
        with LiteLLMProxy(models) as px:
            yield px, backend


def _config(tmp_path: Path, px: LiteLLMProxy, model: str, **pipeline: Any) -> Path:
    cfg = {"base_url": px.base_url, "model": model, "flavor": "openai", "cache": False,
           "api_key_env": px.key_env, "max_retries": 0, "concurrency": 4,
           "pipeline": pipeline}  # fmt: skip
    path = tmp_path / f"{model}.json"
    path.write_text(json.dumps(cfg))
    return path


def test_analyze_with_llm_through_the_proxy(
    tmp_path: Path, proxy: tuple[LiteLLMProxy, FakeServerProcess]
) -> None:
    px, _ = proxy
    config = load_config(_config(tmp_path, px, "mock-yes", n=3, stage2="never"))
    report = forenscope.analyze(PHOTO, experts=["ela", "exif"], llm=config)
    llm = report.llm
    assert llm is not None and llm.stage1.status == "ok", llm
    assert (llm.stage1.yes, llm.stage1.votes, llm.stage1.probability) == (3, 3, 1.0)
    assert llm.stage1.answers_received == 3  # the proxy honours n with mock models
    analysis = load_config(_config(tmp_path, px, "mock-analysis", n=1, stage2="always"))
    report = forenscope.analyze(PHOTO, experts=["ela", "exif"], llm=analysis)
    assert report.llm is not None and report.llm.stage2 is not None
    answer = report.llm.stage2.answer
    assert answer is not None and (answer.method, answer.scope) == ("diffusion", "local")


def test_eval_run_through_the_proxy_matches_the_direct_backend(
    tmp_path: Path, proxy: tuple[LiteLLMProxy, FakeServerProcess]
) -> None:
    px, backend = proxy
    manifest = make_dataset(tmp_path / "data", n_real=3, n_fake=3, n_tampered=0, size=16)
    via = _config(tmp_path, px, "fake-vision", n=2, scoring="votes", temperature=0.0)
    direct = tmp_path / "direct.json"
    direct.write_text(via.read_text().replace(px.base_url, backend.base_url))
    scores = {}
    for name, cfg in (("proxy", via), ("direct", direct)):
        out = tmp_path / name
        args = [str(manifest), "--system", f"llm:{cfg}", "--out", str(out), "--size", "16"]
        res = CliRunner().invoke(eval_cli, args)
        assert res.exit_code == 0, res.output
        run = json.loads((out / "run.json").read_text())
        assert run["counts"]["errors"] == 0 and run["summary"]["overall"]["auc"] == 1.0
        scores[name] = {s["path"]: s["fake_probability"] for s in run["samples"]}
    assert scores["proxy"] == scores["direct"]  # the proxy passes images and n through intact


def test_eval_ablate_through_the_proxy_writes_the_paper_tables(
    tmp_path: Path, proxy: tuple[LiteLLMProxy, FakeServerProcess]
) -> None:
    px, _ = proxy
    manifest = make_dataset(tmp_path / "data", n_real=4, n_fake=4, n_tampered=0, size=16)
    cfg = _config(tmp_path, px, "fake-vision")
    out = tmp_path / "abl"
    args = ["ablate", str(manifest), "--config", str(cfg), "--out", str(out), "--size", "16",
            "--variants", "1,4", "--ks", "0,2", "--ns", "1,5"]  # fmt: skip
    res = CliRunner().invoke(eval_cli, args)
    assert res.exit_code == 0, res.output
    md = (out / "ablation.md").read_text()
    assert "Scoring: votes (seed 000)" in md
    for n in (1, 5):
        assert f"## ACC per prompt variant x k (n={n} votes)" in md
        assert f"## REFUSAL_RATE per prompt variant x k (n={n} votes)" in md
    cells = json.loads((out / "ablation.json").read_text())["cells"]
    assert len(cells) == 8 and all(c["errors"] == 0 and c["auc"] is not None for c in cells)


def test_chat_through_the_proxy(
    tmp_path: Path, proxy: tuple[LiteLLMProxy, FakeServerProcess]
) -> None:
    from forenscope.llm_cli import chat_cli

    px, _ = proxy
    cfg = _config(tmp_path, px, "mock-yes")
    args = [str(PHOTO), "--config", str(cfg), "--history", str(tmp_path / "h.json"),
            "--experts", "ela,exif", "-m", "Is it AI-generated?"]  # fmt: skip
    res = CliRunner().invoke(chat_cli, args)
    assert res.exit_code == 0, res.output
    assert res.output.strip().endswith("Yes")
    history = json.loads((tmp_path / "h.json").read_text())
    assert "Is it AI-generated?" in json.dumps(history)
    assert os.environ[px.key_env] not in res.output + (tmp_path / "h.json").read_text()
