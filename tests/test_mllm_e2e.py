"""End to end against a real fake-server PROCESS on 127.0.0.1: two stages, cache re-runs,
fault injection over 200 images, timeouts, and the official `openai` client on the wire."""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from forenscope.mllm.cache import ResponseCache
from forenscope.mllm.config import LLMConfig
from forenscope.mllm.fake_server import FakeServerProcess
from forenscope.mllm.runner import MLLMEngine
from forenscope.mllm.scoring import top_tokens, yes_probability
from forenscope.types.llm import ImageRun


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[FakeServerProcess]:
    srv = FakeServerProcess(*getattr(request, "param", ()))
    yield srv
    srv.close()


def _images(folder: Path, values: list[int], size: int = 32) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, v in enumerate(values):
        p = folder / f"img{i:03d}_{v}.png"
        buf = io.BytesIO()
        Image.new("RGB", (size, size), (v, v, (v * 7 + i) % 256)).save(buf, format="PNG")
        p.write_bytes(buf.getvalue())
        paths.append(p)
    return paths


def _config(srv: FakeServerProcess, **kw: Any) -> LLMConfig:
    base = {
        "base_url": srv.base_url,
        "model": "fake-vision",
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "max_retries": 6,
        "concurrency": 8,
        # These tests exercise the log-prob path where the flavor claims it (not the default).
        "pipeline": {"scoring": "auto"},
    }
    return LLMConfig.model_validate({**base, **kw})


def _run(config: LLMConfig, paths: list[Path], cache_dir: Path, **kw: Any) -> list[ImageRun]:
    async def main() -> list[ImageRun]:
        async with MLLMEngine(config, cache=ResponseCache(cache_dir)) as eng:
            return await eng.arun(paths, **kw)

    return asyncio.run(main())


def test_two_stages_through_a_server_process_and_cached_rerun(
    server: FakeServerProcess, tmp_path: Path
) -> None:
    paths = _images(tmp_path / "imgs", [230, 240, 20, 35])
    config = _config(server, flavor="openai")
    runs = _run(config, paths, tmp_path / "cache")
    probs = [r.stage1.probability if r.stage1 else None for r in runs]
    known = [p for p in probs if p is not None]
    assert len(known) == 4
    assert min(known[:2]) > 0.7 and max(known[2:]) < 0.3
    assert all(r.stage1 is not None and r.stage1.method == "logprobs" for r in runs)
    bright = [r.stage2 for r in runs[:2]]
    assert all(s is not None and s.status == "ok" and s.answer is not None for s in bright)
    assert bright[0] is not None and bright[0].answer is not None
    assert bright[0].answer.method == "diffusion" and bright[0].answer.location.box is not None
    assert runs[2].stage2 is None and runs[3].stage2 is None  # below the stage-2 threshold
    hits = server.stats()["hits"]
    assert hits == 6  # 4 detections + 2 analyses
    again = _run(config, paths, tmp_path / "cache")
    assert server.stats()["hits"] == hits, "the re-run must come from the cache"
    assert [r.model_dump() for r in again] != []
    assert [r.stage1.probability for r in again if r.stage1] == probs
    assert all(r.stage1 is not None and r.stage1.usage.cached_calls == 1 for r in again)


FAULTY = (
    "--faults",
    "429:0.08,500:0.08,garbage:0.05,refusal:0.08,empty:0.03,truncated:0.08,delay:0.1",
    "--delay",
    "0.01",
    "--seed",
    "7",
)


@pytest.mark.parametrize("server", [FAULTY], indirect=True)
def test_200_images_under_faults_lose_nothing(server: FakeServerProcess, tmp_path: Path) -> None:
    values = [(i * 37) % 256 for i in range(200)]
    paths = _images(tmp_path / "imgs", values, size=16)
    config = _config(server, flavor="generic", capabilities={"logprobs": True}, concurrency=16)
    runs = _run(config, paths, tmp_path / "cache", stage2_min_probability=None)
    assert [r.path for r in runs] == [str(p) for p in paths]
    s1 = Counter(r.stage1.status for r in runs if r.stage1)
    s2 = Counter(r.stage2.status for r in runs if r.stage2)
    assert sum(s1.values()) == 200 and sum(s2.values()) == 200
    assert s1["refused"] > 0 and s1["ok"] > 150 and s2["unparseable"] > 0  # faults did land
    for r in runs:
        assert r.stage1 is not None
        if r.stage1.status == "ok":
            assert r.stage1.probability is not None
        else:
            assert r.stage1.probability is None
            assert r.stage1.refusals > 0 or r.stage1.error is not None
        assert r.stage2 is not None and (r.stage2.status != "ok" or r.stage2.answer is not None)
    outcomes = server.stats()["outcomes"]
    assert outcomes.get("429", 0) > 0 and outcomes.get("500", 0) > 0
    hits = server.stats()["hits"]
    again = _run(config, paths, tmp_path / "cache", stage2_min_probability=None)
    errors = sum(r.stage1.status == "error" for r in runs if r.stage1)
    assert server.stats()["hits"] - hits <= 7 * errors  # only failed calls are retried
    same = [
        a.stage1.probability == b.stage1.probability
        for a, b in zip(runs, again, strict=True)
        if a.stage1 and b.stage1 and a.stage1.status != "error"
    ]
    assert all(same)


@pytest.mark.parametrize("server", [("--script", "hang,ok", "--hang", "2")], indirect=True)
def test_read_timeout_is_retried(server: FakeServerProcess, tmp_path: Path) -> None:
    paths = _images(tmp_path / "imgs", [200])
    config = _config(server, flavor="openai", timeout_s=0.5, cache=False)
    runs = _run(config, paths, tmp_path / "cache", stage2=False)
    assert runs[0].stage1 is not None and runs[0].stage1.status == "ok"
    assert server.stats()["hits"] == 2


def test_official_openai_client_reads_the_wire_format(
    server: FakeServerProcess, tmp_path: Path
) -> None:
    import base64

    from openai import OpenAI

    data = _images(tmp_path / "imgs", [240])[0].read_bytes()
    client = OpenAI(base_url=server.base_url, api_key="sk-local", max_retries=0)
    resp = client.chat.completions.create(
        model="fake-vision",
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "Is this image tampered or AI-generated? Answer yes or no.",
                    },
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "data:image/png;base64," + base64.b64encode(data).decode()
                        },
                    },
                ],
            }
        ],
        logprobs=True,
        top_logprobs=4,
        max_tokens=2,
    )
    assert resp.choices[0].message.content == "Yes"
    assert resp.choices[0].logprobs is not None and resp.choices[0].logprobs.content
    p = yes_probability(top_tokens(resp.model_dump()) or [])
    assert p is not None and p > 0.9
    assert resp.usage is not None and resp.usage.prompt_tokens > 0


def test_cli_run_detect_and_chat_against_the_server(
    server: FakeServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from forenscope.llm_cli import chat_cli, llm_cli

    folder = tmp_path / "imgs"
    _images(folder, [250, 10, 240])
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    cfg = tmp_path / "llm.json"
    cfg.write_text(
        json.dumps(
            {
                "base_url": server.base_url,
                "model": "fake-vision",
                "flavor": "openai",
                "audit_log": str(tmp_path / "audit.jsonl"),
            }
        )
    )
    runner = CliRunner()
    out = tmp_path / "reports"
    res = runner.invoke(llm_cli, ["run", str(folder), "--config", str(cfg), "--out-dir", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 4 and summary["stage1"] == {"ok": 3, "input_error": 1}
    reports = sorted(out.glob("0*.json"))
    assert len(reports) == 4
    broken = json.loads(reports[0].read_text())
    assert broken["path"].endswith("broken.png") and broken["error"]["type"] == "ImageDecodeError"
    reports = reports[1:]
    first = json.loads(reports[0].read_text())
    assert first["stage1"]["probability"] > 0.5 and first["stage2"]["status"] == "ok"
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) == 5  # 3 + 2 calls
    res = runner.invoke(
        llm_cli, ["detect", str(folder), "--config", str(cfg), "--scoring", "votes", "--n", "3"]
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    assert rows[0]["error"]["type"] == "ImageDecodeError"
    assert [r["votes"] for r in rows[1:]] == [3, 3, 3] and rows[2]["probability"] < 0.5
    image = str(sorted(folder.glob("img*.png"))[0])
    hist = tmp_path / "h.json"
    for q in ("Where is the forgery?", "Why?"):
        res = runner.invoke(
            chat_cli,
            [
                image,
                "--config",
                str(cfg),
                "--history",
                str(hist),
                "-m",
                q,
                "--evidence",
                "ELA hotspot",
            ],
        )
        assert res.exit_code == 0, res.output
    turns = json.loads(hist.read_text())["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant"] * 2 and turns[2]["content"] == "Why?"


def test_hybrid_tool_calls_run_registry_experts(server: FakeServerProcess, tmp_path: Path) -> None:
    import numpy as np

    from forenscope.mllm.hybrid import analyze_with_tools

    rng = np.random.default_rng(1)
    arr = (np.linspace(0, 255, 300)[None, :, None] + rng.normal(0, 8, (300, 300, 3))).clip(0, 255)
    path = tmp_path / "grad.png"
    Image.fromarray(arr.astype(np.uint8)).save(path)
    config = _config(server, flavor="openai", cache=False)

    async def main() -> Any:
        async with MLLMEngine(config) as eng:
            return await analyze_with_tools(eng, path, tools=["ela", "noise"])

    result, calls = asyncio.run(main())
    assert [c.name for c in calls] == ["ela", "noise"]
    assert all("score" in c.result and "evidence" in c.result for c in calls)
    assert result.status == "ok" and result.answer is not None
    assert result.usage.calls == 2 and len(result.evidence_shown) == 2
    assert server.stats()["hits"] == 2  # tool-call round + final answer
