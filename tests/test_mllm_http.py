"""Hand-written HTTP exchanges in the OpenAI, vLLM, Ollama and llama.cpp wire formats, replayed
through httpx.MockTransport: retries, Retry-After, timeouts, garbage, refusals, truncation."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from forenscope.mllm.cache import ResponseCache
from forenscope.mllm.config import LLMConfig
from forenscope.mllm.runner import MLLMEngine
from forenscope.mllm.scoring import top_tokens, yes_probability
from forenscope.types.llm import Stage1Result, Stage2Result

FIXTURES = Path(__file__).parent / "mllm_fixtures"
ALL = sorted(p.stem for p in FIXTURES.glob("*.json"))
EXCHANGES = [
    n for n in ALL if json.loads((FIXTURES / f"{n}.json").read_text()).get("kind") != "scoring"
]
SCORING = [n for n in ALL if n not in EXCHANGES]
SECRET = "sk-test-SECRET-0123456789"


def test_network_guard_blocks_outside_hosts() -> None:
    with socket.socket() as s, pytest.raises(RuntimeError, match="network"):
        s.connect(("10.255.255.1", 80))


class Replay:
    """Serves a fixture's responses in order and records every request body."""

    def __init__(self, responses: list[dict[str, Any]]) -> None:
        self.responses = list(responses)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(json.loads(request.content))
        self.headers.append(request.headers)
        if not self.responses:
            raise AssertionError("more requests than the fixture has responses")
        spec = self.responses.pop(0)
        if "raise" in spec:
            raise getattr(httpx, spec["raise"])("simulated", request=request)
        content = (
            spec["body_text"].encode() if "body_text" in spec else json.dumps(spec["body"]).encode()
        )
        return httpx.Response(spec["status"], headers=spec.get("headers"), content=content)


def _config(flavor: str, **kw: Any) -> LLMConfig:
    return LLMConfig.model_validate(
        {
            "base_url": "http://llm.invalid/v1",
            "model": "m",
            "flavor": flavor,
            "max_retries": 2,
            "backoff_base_s": 0.01,
            "cache": False,
            **kw,
        }
    )


def _image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def _run(fx: dict[str, Any], replay: Replay, sleeps: list[float], **cfg: Any) -> Any:
    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    async def main() -> Any:
        config = _config(fx["flavor"], **cfg)
        async with MLLMEngine(
            config, transport=httpx.MockTransport(replay), sleep=fake_sleep
        ) as eng:
            call = dict(fx["call"])
            if fx["stage"] == 1:
                return await eng.adetect(_image(), **call)
            return await eng.aanalyze(_image(), evidence=call.get("evidence", ()))

    return asyncio.run(main())


@pytest.mark.parametrize("name", EXCHANGES)
def test_exchange(name: str) -> None:
    fx = json.loads((FIXTURES / f"{name}.json").read_text())
    replay, sleeps = Replay(fx["responses"]), list[float]()
    result = _run(fx, replay, sleeps)
    exp = fx["expect"]
    assert result.status == exp["status"], result
    assert len(replay.requests) == exp["requests"]
    assert not replay.responses, "every scripted response was consumed"
    if isinstance(result, Stage1Result):
        for key in ("method", "yes", "no", "refusals"):
            if key in exp:
                assert getattr(result, key) == exp[key], key
        if "probability" in exp:
            assert (
                result.probability == pytest.approx(exp["probability"])
                if exp["probability"] is not None
                else result.probability is None
            )
        if exp["status"] == "ok":
            assert result.probability is not None
        if "note" in exp:
            assert any(exp["note"] in n for n in result.notes)
        if "prompt_tokens" in exp:
            assert result.usage.prompt_tokens == exp["prompt_tokens"]
        assert result.votes == result.yes + result.no
    else:
        assert isinstance(result, Stage2Result)
        assert result.raw or exp["status"] == "refused"  # the answer is always kept
        if "response_format" in exp:
            rf = replay.requests[0].get("response_format")
            assert (rf or {}).get("type") == exp["response_format"]
        if exp["status"] == "ok":
            assert result.answer is not None
            assert result.answer.method == exp["method"] and result.answer.scope == exp["scope"]
        else:
            assert result.answer is None
        if "problem" in exp:
            assert exp["problem"] in (result.problem or "")
    if exp["status"] == "error":
        assert result.error is not None and result.error.type == exp["error_type"]
    if "min_sleep" in exp:
        assert sleeps and sleeps[0] >= exp["min_sleep"]


@pytest.mark.parametrize("name", SCORING)
def test_llamacpp_native_scoring(name: str) -> None:
    fx = json.loads((FIXTURES / f"{name}.json").read_text())
    p = yes_probability(top_tokens(fx["body"]) or [])
    assert p == pytest.approx(fx["expect"]["probability"])


def test_request_wire_format_and_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", SECRET)
    fx = json.loads((FIXTURES / "openai_logprobs_yes.json").read_text())
    replay = Replay(fx["responses"])
    _run(fx, replay, [], api_key_env="FAKE_LLM_KEY")
    body = replay.requests[0]
    assert replay.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert body["logprobs"] is True and body["top_logprobs"] == 10 and body["temperature"] == 0
    user = body["messages"][-1]
    assert user["role"] == "user" and user["content"][0]["type"] == "text"
    url = user["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    assert body["messages"][0]["role"] == "system"


def test_ollama_votes_send_one_request_per_sample_with_distinct_seeds() -> None:
    fx = json.loads((FIXTURES / "ollama_missing_logprobs.json").read_text())
    replay = Replay(fx["responses"])
    _run(fx, replay, [])
    assert "n" not in replay.requests[1]
    assert sorted(r["seed"] for r in replay.requests[1:]) == [0, 1, 2]
    assert all(r["temperature"] == 1.0 for r in replay.requests[1:])


def test_backoff_grows_and_is_jittered() -> None:
    fx = json.loads((FIXTURES / "always_503.json").read_text())
    sleeps: list[float] = []
    _run(fx, Replay(fx["responses"]), sleeps, backoff_base_s=1.0)
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_audit_redacts_key_and_image_and_cache_skips_second_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", SECRET)
    fx = json.loads((FIXTURES / "openai_429_retry_after.json").read_text())
    # the server echoes the key in its error text, as misconfigured proxies do
    fx["responses"][0]["body"]["error"]["message"] += f" (key {SECRET})"
    replay = Replay(fx["responses"] + fx["responses"][1:])
    audit_path = tmp_path / "audit.jsonl"
    config = _config(
        "openai",
        api_key_env="FAKE_LLM_KEY",
        cache=True,
        audit_log=str(audit_path),
        price_prompt_per_1m=2.5,
        price_completion_per_1m=10.0,
    )
    cache = ResponseCache(tmp_path / "cache")

    async def nosleep(s: float) -> None:
        return None

    async def main() -> tuple[Stage1Result, Stage1Result, float | None]:
        async with MLLMEngine(
            config, transport=httpx.MockTransport(replay), cache=cache, sleep=nosleep
        ) as eng:
            a = await eng.adetect(_image(), scoring="logprobs")
            b = await eng.adetect(_image(), scoring="logprobs")
            return a, b, eng.usage.cost_usd

    first, second, cost = asyncio.run(main())
    assert len(replay.requests) == 2  # 429 + success; the re-run came from the cache
    assert first.probability == second.probability and second.usage.cached_calls == 1
    assert cost == pytest.approx((1123 * 2.5 + 1 * 10.0) / 1e6)
    log = audit_path.read_text()
    lines = [json.loads(line) for line in log.splitlines()]
    assert [r["status"] for r in lines if not r["cache_hit"]] == [429, 200]
    assert lines[-1]["cache_hit"] is True
    assert SECRET not in log and "***" in log
    assert "<redacted" in log and "base64,/9j" not in log
    assert SECRET not in json.dumps([str(p) for p in (tmp_path / "cache").rglob("*.json")])


def test_error_messages_redact_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", SECRET)
    fx = {"flavor": "openai", "stage": 1, "call": {"scoring": "logprobs"}}
    replay = Replay(
        [{"status": 401, "headers": {}, "body": {"error": {"message": f"bad key {SECRET}"}}}]
    )
    result = _run(fx, replay, [], api_key_env="FAKE_LLM_KEY")
    assert result.status == "error" and result.error is not None
    assert SECRET not in result.error.message and "***" in result.error.message
    assert len(replay.requests) == 1  # 401 is not retried


def test_k_shot_examples_are_interleaved_and_recorded(tmp_path: Path) -> None:
    from PIL import Image

    from forenscope.mllm.examples import ExamplePool

    for label, value in (("real", 30), ("fake", 220)):
        (tmp_path / label).mkdir()
        for i in range(3):
            Image.new("RGB", (8, 8), (value + i,) * 3).save(tmp_path / label / f"{i}.png")
    pool = ExamplePool.from_folder(tmp_path)
    fx = json.loads((FIXTURES / "openai_logprobs_yes.json").read_text())
    replay = Replay(fx["responses"] * 2)

    async def main() -> list[Stage1Result]:
        config = _config("openai")
        async with MLLMEngine(config, pool=pool, transport=httpx.MockTransport(replay)) as eng:
            return [await eng.adetect(_image(), k=k, seed=5, scoring="logprobs") for k in (2, 4)]

    two, four = asyncio.run(main())
    roles = [m["role"] for m in replay.requests[1]["messages"]]
    assert roles == ["system"] + ["user", "assistant"] * 4 + ["user"]
    answers = [m["content"] for m in replay.requests[1]["messages"] if m["role"] == "assistant"]
    assert sorted(answers) == ["no", "no", "yes", "yes"]  # balanced
    assert four.k_shot == 4 and len(four.example_ids) == 4 and len(two.example_ids) == 2
    assert [
        i.split("/")[0] == ("fake" if a == "yes" else "real")
        for i, a in zip(four.example_ids, answers, strict=True)
    ] == [True] * 4


def test_max_completion_tokens_field_for_newer_openai_models() -> None:
    fx = json.loads((FIXTURES / "openai_logprobs_yes.json").read_text())
    replay = Replay(fx["responses"])
    _run(fx, replay, [], token_limit_field="max_completion_tokens")
    assert "max_tokens" not in replay.requests[0]
    assert replay.requests[0]["max_completion_tokens"] == 4
