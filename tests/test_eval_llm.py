"""`llm:<config>` systems and the seed-000 ablation against the fake OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from forenscope.eval.cli import eval_cli
from forenscope.mllm.fake_server import FakeServerProcess
from test_eval_datasets import make_dataset


@pytest.fixture
def server() -> Iterator[FakeServerProcess]:
    # Refusals drawn per request: with 8 requests in flight, the arrival order (and so which
    # votes were refused, and the AUC) varied from run to run.
    args = ("--faults", "refusal:0.15", "--seed", "3", "--faults-per-request")
    with FakeServerProcess(*args) as srv:
        yield srv


def _config(tmp_path: Path, port: int) -> Path:
    cfg = {"base_url": f"http://127.0.0.1:{port}/v1", "model": "fake-vision", "max_retries": 1,
           "backoff_base_s": 0.0, "concurrency": 8, "price_prompt_per_1m": 1.0,
           "price_completion_per_1m": 2.0}  # fmt: skip
    path = tmp_path / "llm.json"
    path.write_text(json.dumps(cfg))
    return path


def test_llm_run_keeps_refusals_and_counts_tokens(
    tmp_path: Path, server: FakeServerProcess
) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=8, n_fake=8, n_tampered=0, size=16)
    args = [str(manifest), "--system", f"llm:{_config(tmp_path, server.port)}", "--out",
            str(tmp_path / "run"), "--n", "3", "--size", "16"]  # fmt: skip
    res = CliRunner().invoke(eval_cli, args)
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    usage = rec["summary"]["usage"]
    assert usage["prompt_tokens"] > 0 and usage["calls"] == 48 and usage["cost_usd"] > 0
    assert usage["answer_refusal_rate"] > 0  # refused answers are counted, never votes
    assert rec["system"]["prompt_version"].startswith("s1-p4") and rec["system"]["model"]
    assert rec["summary"]["overall"]["auc"] > 0.9  # the fake server calls bright images fake
    hits = server.hits()
    again = CliRunner().invoke(eval_cli, [*args, "--restart"])
    assert again.exit_code == 0 and server.hits() == hits  # every answer came from the cache


def test_ablation_tables_from_one_command(tmp_path: Path, server: FakeServerProcess) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=8, n_fake=8, n_tampered=0, size=16)
    out = tmp_path / "abl"
    args = ["ablate", str(manifest), "--config", str(_config(tmp_path, server.port)), "--out",
            str(out), "--variants", "1,4", "--ks", "0,2", "--ns", "2", "--size", "16"]  # fmt: skip
    res = CliRunner().invoke(eval_cli, args)
    assert res.exit_code == 0, res.output
    result: dict[str, Any] = json.loads((out / "ablation.json").read_text())
    cells = {(c["variant"], c["k"]): c for c in result["cells"]}
    assert set(cells) == {(1, 0), (1, 2), (4, 0), (4, 2)}
    assert result["n_samples"] == 12  # 2 real + 2 fake held out as the k-shot pool
    assert all(c["images"] == 12 and c["votes"] == 2 for c in cells.values())
    assert all(c["acc"] is not None for c in cells.values())
    md = (out / "ablation.md").read_text()
    assert "## ACC per prompt variant x k (n=2 votes)" in md and "| #4 |" in md
    assert "REFUSAL_RATE" in md and "| #4 | - |" not in md  # every cell of the grid filled
    k2 = json.loads((out / "p4-k2-n2" / "run.json").read_text())
    assert all(len(r["extra"]["example_ids"]) == 2 for r in k2["samples"] if r["extra"])


def test_stage2_explanations_are_scored_against_the_mask(
    tmp_path: Path, server: FakeServerProcess
) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=0, n_tampered=3, size=24)
    args = [str(manifest), "--system", f"llm:{_config(tmp_path, server.port)}", "--out",
            str(tmp_path / "run"), "--n", "1", "--size", "24", "--stage2"]  # fmt: skip
    res = CliRunner().invoke(eval_cli, args)
    assert res.exit_code == 0, res.output
    ex = json.loads((tmp_path / "run" / "run.json").read_text())["summary"]["explanations"]
    assert ex["n_asked"] == 3
    # the fake server points at the brightest 3x3 cell: the pasted patch, upper left
    assert ex["n_ok"] >= 1 and ex["frame_position"] == pytest.approx(1.0)
    assert "Stage-2 explanations" in (tmp_path / "run" / "report.md").read_text()


def test_stage2_method_and_scope_accuracy_against_the_manifest(tmp_path: Path) -> None:
    """Seed 000's generation-method table: stage 2's method and scope against the manifest's
    family and scope. The fake model calls every bright image diffusion and every answer local."""
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=4, n_tampered=2, size=24)
    with FakeServerProcess() as srv:
        args = [str(manifest), "--system", f"llm:{_config(tmp_path, srv.port)}", "--out",
                str(tmp_path / "run"), "--n", "1", "--size", "24", "--stage2"]  # fmt: skip
        res = CliRunner().invoke(eval_cli, args)
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    acc = run["summary"]["stage2_accuracy"]
    assert run["summary"]["explanations"]["n_asked"] == 6  # every forged image, not only masked
    method, scope = acc["method"], acc["scope"]
    assert method["n"] == 4 and method["accuracy"] == pytest.approx(0.5)  # edits have no family
    assert method["by_truth"]["gan"]["accuracy"] == 0.0
    assert method["by_truth"]["gan"]["answers"] == {"diffusion": 2}
    assert method["by_truth"]["diffusion"]["accuracy"] == 1.0
    assert scope["n"] == 6 and scope["accuracy"] == pytest.approx(2 / 6)
    assert scope["by_truth"]["local"]["accuracy"] == 1.0
    assert scope["by_source"]["synth-fake"]["accuracy"] == 0.0
    md = (tmp_path / "run" / "report.md").read_text()
    assert "## Stage-2 method and scope accuracy" in md and "| truth gan | 2 | 0.000" in md
