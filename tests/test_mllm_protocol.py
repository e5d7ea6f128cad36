"""The protocol that runs is the one the config states, wherever it runs from (issue 12, items
1-4): eval and ablate follow the `pipeline:` block, short vote counts are made up or noted, the
k-shot draw never shows a query its own label, and the scoring is the paper's unless asked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from forenscope.eval.ablate import ablate
from forenscope.eval.align import Preprocess
from forenscope.eval.run import EvalConfig, evaluate
from forenscope.eval.systems import LLMOptions
from forenscope.mllm.config import LLMConfig
from forenscope.mllm.fake_server import FakeServerProcess
from forenscope.mllm.runner import MLLMEngine
from forenscope.types.llm import Stage1Result
from test_eval_datasets import make_dataset

PRE = Preprocess("jpeg90", 16)  # eval's default alignment: the model sees a re-encoded copy


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[FakeServerProcess]:
    with FakeServerProcess(*getattr(request, "param", ())) as srv:
        yield srv


def _write_config(tmp_path: Path, srv: FakeServerProcess, **pipeline: Any) -> Path:
    cfg = {"base_url": srv.base_url, "model": "fake-vision", "flavor": "openai",
           "max_retries": 0, "concurrency": 4, "pipeline": pipeline}  # fmt: skip
    path = tmp_path / "llm.json"
    path.write_text(json.dumps(cfg))
    return path


def _eval(tmp_path: Path, manifest: Path, cfg: Path, out: str, **kw: Any) -> dict[str, Any]:
    config = EvalConfig(str(manifest), f"llm:{cfg}", tmp_path / out, pre=PRE, **kw)
    return evaluate(config, overlays=False)


# -- 1. eval and ablate run the config's pipeline block ----------------------------------------
def test_eval_run_follows_the_config_pipeline(tmp_path: Path, server: FakeServerProcess) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=3, n_fake=3, n_tampered=0, size=16)
    cfg = _write_config(tmp_path, server, variant=2, n=2, scoring="votes", temperature=0.7)
    rec = _eval(tmp_path, manifest, cfg, "run", llm=LLMOptions())
    system = rec["system"]
    assert system["prompt_version"] == "s1-p2-v1"
    assert (system["n"], system["scoring"], system["temperature"]) == (2, "votes", 0.7)
    assert system["knob_source"]["n"] == "config" and system["n_applies"] is True
    extras = [s["extra"] for s in rec["samples"]]
    assert [e["method"] for e in extras] == ["votes"] * 6
    assert all(e["answers_requested"] == e["answers_received"] == 2 for e in extras)
    assert server.hits() == 6  # one request with n=2 per image (the flavor honours n)


def test_an_override_wins_and_is_recorded_as_one(tmp_path: Path, server: FakeServerProcess) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=2, n_tampered=0, size=16)
    cfg = _write_config(tmp_path, server, variant=2, n=2)
    rec = _eval(tmp_path, manifest, cfg, "run", llm=LLMOptions({"variant": 5}))
    assert rec["system"]["prompt_version"] == "s1-p5-v1"
    assert rec["system"]["knob_source"]["variant"] == "override"
    # the config's pipeline changes under a journal: resuming would mix two protocols
    cfg.write_text(cfg.read_text().replace('"n": 2', '"n": 3'))
    with pytest.raises(ValueError, match=r"changed: system_settings\.n\b"):
        _eval(tmp_path, manifest, cfg, "run", llm=LLMOptions({"variant": 5}))


def test_eval_cli_without_options_runs_the_config_pipeline(
    tmp_path: Path, server: FakeServerProcess
) -> None:
    from forenscope.eval.cli import eval_cli

    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=2, n_tampered=0, size=16)
    cfg = _write_config(tmp_path, server, variant=2, n=2, scoring="votes")
    args = [str(manifest), "--system", f"llm:{cfg}", "--out", str(tmp_path / "run"),
            "--size", "16"]  # fmt: skip
    res = CliRunner().invoke(eval_cli, args)
    assert res.exit_code == 0, res.output
    system = json.loads((tmp_path / "run" / "run.json").read_text())["system"]
    assert system["prompt_version"] == "s1-p2-v1" and system["n"] == 2
    assert system["scoring"] == "votes"


def test_ablate_keeps_the_config_scoring_and_n_is_a_real_axis(
    tmp_path: Path, server: FakeServerProcess
) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=2, n_tampered=0, size=16)
    cfg = _write_config(tmp_path, server, scoring="votes", temperature=0.9)
    base = EvalConfig(str(manifest), f"llm:{cfg}", tmp_path / "abl", pre=PRE)
    result = ablate(base, [2], [0], [1, 3], overlays=False)
    assert [(c["variant"], c["votes"], c["scoring"]) for c in result["cells"]] == [
        (2, 1, "votes"),
        (2, 3, "votes"),
    ]
    runs = [json.loads((tmp_path / "abl" / f"p2-k0-n{n}" / "run.json").read_text()) for n in (1, 3)]
    assert [{s["extra"]["answers_received"] for s in r["samples"]} for r in runs] == [{1}, {3}]
    assert runs[1]["system"]["temperature"] == 0.9  # the config's, not a default
    md = (tmp_path / "abl" / "ablation.md").read_text()
    assert "Scoring: votes (seed 000)" in md and "(n=3 votes)" in md


def test_ablate_under_logprobs_has_no_n_axis(tmp_path: Path, server: FakeServerProcess) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=2, n_tampered=0, size=16)
    cfg = _write_config(tmp_path, server, scoring="logprobs")
    base = EvalConfig(str(manifest), f"llm:{cfg}", tmp_path / "abl", pre=PRE)
    result = ablate(base, [4], [0], [1, 5], overlays=False)
    assert [(c["votes"], c["scoring"]) for c in result["cells"]] == [(None, "logprobs")]
    assert result["config"]["ns"] == [] and result["config"]["n_axis"].startswith("absent")
    md = (tmp_path / "abl" / "ablation.md").read_text()
    assert "n=5" not in md and "(scoring logprobs)" in md and "token log-probs" in md


# -- 2. fewer answers than asked -----------------------------------------------------------------
@pytest.mark.parametrize("server", [("--ignore-n",)], indirect=True)
def test_a_server_ignoring_n_is_topped_up_and_says_so(
    tmp_path: Path, server: FakeServerProcess
) -> None:
    config = LLMConfig(base_url=server.base_url, model="fake-vision", flavor="openai", cache=False)

    async def main() -> Stage1Result:
        async with MLLMEngine(config) as eng:
            return await eng.adetect(_png(200), scoring="votes", n=5, temperature=1.0)

    res = asyncio.run(main())
    assert (res.answers_requested, res.answers_received) == (5, 5)
    assert res.votes + res.refusals == 5 and len(res.samples) == 5
    assert any("ignores `n`" in note for note in res.notes)
    assert server.hits() == 5  # the n request, then four single requests


def test_answers_that_never_arrive_are_counted_and_noted() -> None:
    """One choice for n=5, then every single request fails: 1 answer, and it says so."""
    calls: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        if len(calls) == 1:
            choice = {"index": 0, "message": {"role": "assistant", "content": "Yes"},
                      "finish_reason": "stop"}  # fmt: skip
            return httpx.Response(200, json={"choices": [choice], "usage": {}})
        return httpx.Response(400, json={"error": {"message": "bad"}})

    config = LLMConfig(base_url="http://llm.invalid/v1", model="m", flavor="openai",
                       cache=False, max_retries=0)  # fmt: skip

    async def main() -> Stage1Result:
        async with MLLMEngine(config, transport=httpx.MockTransport(handler)) as eng:
            return await eng.adetect(_png(100), scoring="votes", n=5)

    res = asyncio.run(main())
    assert calls[0]["n"] == 5 and len(calls) == 5
    assert (res.answers_requested, res.answers_received, res.votes) == (5, 1, 1)
    assert res.failed_samples == 4 and res.probability == 1.0
    assert any("only 1 of the 5 answers" in note for note in res.notes)


# -- 3. the k-shot draw never shows a query its own label --------------------------------------
def test_kshot_draw_never_uses_the_query_as_its_example(
    tmp_path: Path, server: FakeServerProcess
) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=3, n_fake=3, n_tampered=0, size=16)
    cfg = _write_config(tmp_path, server)
    # The pool is the evaluated set itself, as `--pool MANIFEST` makes it.
    knobs = {"variant": 4, "k": 4, "n": 1, "seed": 0, "scoring": "votes", "temperature": 1.0}
    settings = LLMOptions(knobs)
    rec = _eval(tmp_path, manifest, cfg, "run", llm=settings, pool=str(manifest))
    drawn = {s["path"]: s["extra"]["example_ids"] for s in rec["samples"]}
    assert all(len(ids) == 4 for ids in drawn.values())
    leaks = [p for p, ids in drawn.items() if Path(p).name in {i.split("/")[1] for i in ids}]
    assert leaks == []


def test_engine_excludes_a_query_path_and_its_original_hash(tmp_path: Path) -> None:
    from forenscope.mllm.examples import ExamplePool

    for label, value in (("real", 30), ("fake", 220)):
        (tmp_path / label).mkdir()
        for i in range(2):
            (tmp_path / label / f"{i}.png").write_bytes(_png(value + i, fmt="PNG"))
    pool = ExamplePool.from_folder(tmp_path)
    query = pool.examples[0]
    for seed in range(8):
        by_path = pool.draw(3, seed, exclude_paths=[query.path])
        by_hash = pool.draw(3, seed, exclude_sha256=[query.sha256()])
        assert query not in by_path and query not in by_hash


# -- 4. the paper's scoring is the default, and the record says which ran --------------------
def test_default_scoring_is_the_papers_votes_even_where_logprobs_exist(
    server: FakeServerProcess,
) -> None:
    config = LLMConfig(base_url=server.base_url, model="fake-vision", flavor="openai", cache=False)
    assert config.caps.logprobs and config.pipeline.scoring == "votes"

    async def main() -> Stage1Result:
        async with MLLMEngine(config) as eng:
            return await eng.adetect(_png(200))

    res = asyncio.run(main())
    assert (res.method, res.scoring, res.answers_received) == ("votes", "votes", 5)


def _png(value: int, fmt: str = "JPEG") -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (value, value, value)).save(buf, format=fmt)
    return buf.getvalue()


def test_llm_detect_protocol_paper_runs_two_shot_votes(
    tmp_path: Path, server: FakeServerProcess
) -> None:
    from forenscope.llm_cli import llm_cli

    for label, value in (("real", 30), ("fake", 220)):
        (tmp_path / "pool" / label).mkdir(parents=True)
        for i in range(2):
            (tmp_path / "pool" / label / f"{i}.png").write_bytes(_png(value + i, fmt="PNG"))
    query = tmp_path / "q.png"
    query.write_bytes(_png(200, fmt="PNG"))
    cfg = _write_config(tmp_path, server)
    base = ["detect", str(query), "--config", str(cfg), "--protocol", "paper"]
    res = CliRunner().invoke(llm_cli, base)
    assert res.exit_code == 2 and "needs pipeline.pool" in res.output  # 2-shot needs a pool
    res = CliRunner().invoke(llm_cli, [*base, "--pool", str(tmp_path / "pool"), "--n", "3"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.output.splitlines()[0])
    assert (row["k_shot"], row["method"], row["prompt_version"]) == (2, "votes", "s1-p4-v1")
    assert row["answers_requested"] == 3  # an explicit option beats the preset's n
