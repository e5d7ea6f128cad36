"""`forenscope serve-openai`: wire functions, guards in-process, and end to end through the
official `openai` client against a real server process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import forenscope
from forenscope.mllm.prompts import stage2_response_format
from forenscope.mllm.scoring import top_tokens, yes_probability
from forenscope.service.openai.wire import (
    WireError,
    answer_mode,
    check_request,
    decode_data_url,
    p_fake,
    read_conversation,
    yes_no_logprobs,
)

PHOTO = Path(forenscope.__file__).parent / "data" / "seeding.jpg"
EXPERTS = ["ela", "noise", "exif"]
QUESTION = "Is this image tampered or AI-generated? Answer yes or no."


@pytest.fixture(autouse=True)
def _own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fresh response cache per test, so cache-hit counts do not leak between tests."""
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "cache"))


def _data_url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _messages(text: str, data: bytes | None = None) -> list[dict[str, Any]]:
    url = _data_url(PHOTO.read_bytes() if data is None else data)
    parts = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]
    return [{"role": "system", "content": "You are a vision model."},
            {"role": "user", "content": parts}]  # fmt: skip


# -- pure wire functions -----------------------------------------------------------------------
def test_answer_modes() -> None:
    schema = stage2_response_format()
    assert answer_mode({"response_format": schema}, "") == "json_stage2"
    other = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"properties": {}}}}
    assert answer_mode({"response_format": other}, "") == "json_schema"  # the client's own
    assert answer_mode({"response_format": {"type": "json_object"}}, "describe") == "json_report"
    assert answer_mode({}, 'give "forged_content": ...') == "json_stage2"
    assert answer_mode({}, QUESTION) == "yes_no"
    assert answer_mode({"logprobs": True}, "Fake?") == "yes_no"
    assert answer_mode({}, "What do you see?") == "text"


def test_logprobs_carry_the_probability_exactly() -> None:
    lp = yes_no_logprobs(0.8, "Yes", 2)
    entry = lp["content"][0]
    assert entry["token"] == "Yes" and [t["token"] for t in entry["top_logprobs"]] == ["Yes", "No"]
    assert math.isclose(math.exp(entry["logprob"]), 0.8)
    assert yes_no_logprobs(0.8, "Yes", 0)["content"][0]["top_logprobs"] == []
    response = {"choices": [{"logprobs": lp}]}
    p = yes_probability(top_tokens(response) or [])
    assert p is not None and math.isclose(p, 0.8)  # our own scorer reads it back unchanged


def test_requests_refused_before_any_work() -> None:
    with pytest.raises(WireError) as err:
        check_request({"model": "gpt-4o", "messages": []}, "forenscope")
    assert err.value.status == 404 and err.value.body()["error"]["code"] == "model_not_found"
    bads = ({"stream": "yes"}, {"n": 0}, {"n": 99}, {"top_logprobs": 21}, {"max_tokens": 0},
            {"temperature": "hot"}, {"response_format": "json"})  # fmt: skip
    for bad in bads:
        with pytest.raises(WireError):
            check_request({"model": "forenscope", "messages": [], **bad}, "forenscope")
    with pytest.raises(WireError, match="base64 data URL"):
        read_conversation(_messages_url("http://169.254.169.254/latest/meta-data"), 10_000)
    with pytest.raises(WireError, match="no image"):
        read_conversation([{"role": "user", "content": "hello"}], 10_000)
    with pytest.raises(WireError, match="not valid base64"):
        decode_data_url("data:image/png;base64,@@@@", 100)
    from forenscope.errors import ImageTooLargeError

    with pytest.raises(ImageTooLargeError):
        decode_data_url(_data_url(b"\xff" * 4000), 1000)


def _messages_url(url: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]


# -- guards, in process ------------------------------------------------------------------------
def test_token_limits_and_sniffing_in_process() -> None:
    from fastapi.testclient import TestClient

    from forenscope.errors import ConfigError
    from forenscope.service.openai.server import OpenAISettings, create_openai_app

    with pytest.raises(ConfigError):
        create_openai_app(OpenAISettings(host="0.0.0.0"))
    settings = OpenAISettings(token="s3cret", experts=["ela"], max_image_bytes=200_000)
    client = TestClient(create_openai_app(settings))
    assert client.get("/health").status_code == 200
    denied = client.get("/v1/models")
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
    auth = {"Authorization": "Bearer s3cret"}
    assert client.get("/v1/models", headers=auth).json()["data"][0]["id"] == "forenscope"

    def post(body: dict[str, Any]) -> Any:
        return client.post("/v1/chat/completions", json=body, headers=auth)

    html = b"<html><script>alert(1)</script></html>"
    r = post({"model": "forenscope", "messages": _messages(QUESTION, html)})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_image"
    big = post({"model": "forenscope", "messages": _messages(QUESTION, b"\xff" * 300_000)})
    assert big.status_code == 413
    truncated = post({"model": "forenscope", "messages": _messages(QUESTION, b"\xff\xd8\xff\xe0")})
    assert truncated.status_code == 422
    raw = client.post("/v1/chat/completions", content=b"{not json", headers=auth)
    assert raw.status_code == 400


# -- end to end: a real server process and the official client ---------------------------------
class OpenAIServer:
    def __init__(self) -> None:
        args = [a for e in EXPERTS for a in ("--expert", e)]
        cmd = [sys.executable, "-m", "forenscope", "serve-openai", "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("READY port="), line
        self.base_url = f"http://127.0.0.1:{int(line.strip().split('=')[1])}/v1"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    srv = OpenAIServer()
    yield srv
    srv.close()


@pytest.fixture
def client(server: OpenAIServer) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=server.base_url, api_key="unused-on-loopback", max_retries=0,
                  timeout=60)  # fmt: skip


def test_first_requests_at_once_all_see_every_expert(client: Any) -> None:
    """The server's first requests arrive together (the expert registry loads at startup)."""
    from concurrent.futures import ThreadPoolExecutor

    def ask(i: int) -> set[str]:
        resp = client.chat.completions.create(model="forenscope", messages=_messages(f"#{i}?"))
        return {e["expert"] for e in resp.model_extra["forenscope_report"]["experts"]}

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(pool.map(ask, range(3))) == [set(EXPERTS)] * 3


def test_official_client_models_text_and_report(client: Any) -> None:
    assert [m.id for m in client.models.list()] == ["forenscope"]
    resp = client.chat.completions.create(
        model="forenscope", messages=_messages("What can you tell me about this image?"), n=2
    )
    content = resp.choices[0].message.content
    report = forenscope.types.Report.model_validate(resp.model_extra["forenscope_report"])
    assert content.startswith(f"Verdict: {report.verdict.label} (probability ")
    assert content.endswith(report.explanation) and "Evidence for" in content
    assert len(resp.choices) == 2 and resp.choices[1].message.content == content
    assert report.verdict.leaning == "real" and {e.expert for e in report.experts} == set(EXPERTS)
    assert resp.usage is not None and resp.usage.completion_tokens > 1


def test_official_client_yes_no_logprobs_and_json_formats(client: Any) -> None:
    resp = client.chat.completions.create(
        model="forenscope", messages=_messages(QUESTION), logprobs=True, top_logprobs=2,
        max_tokens=1,
    )  # fmt: skip
    choice = resp.choices[0]
    report = forenscope.types.Report.model_validate(resp.model_extra["forenscope_report"])
    expected = p_fake(report)
    assert choice.message.content == ("Yes" if expected >= 0.5 else "No")
    p = yes_probability(top_tokens(resp.model_dump()) or [])
    assert p is not None and math.isclose(p, expected, rel_tol=1e-9)
    rf = stage2_response_format()
    resp = client.chat.completions.create(model="forenscope", messages=_messages("Analyse."),
                                          response_format=rf)  # fmt: skip
    answer = json.loads(resp.choices[0].message.content)
    assert set(answer) >= {"location", "forged_content", "visible_traces", "method", "scope"}
    resp = client.chat.completions.create(
        model="forenscope", messages=_messages("Report."), response_format={"type": "json_object"}
    )
    assert json.loads(resp.choices[0].message.content)["verdict"]["leaning"] == "real"


def test_official_client_errors(client: Any) -> None:
    import openai

    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=_messages(QUESTION))
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="forenscope",
                                       messages=[{"role": "user", "content": "hi"}])  # fmt: skip
    assert "no image" in str(err.value)


def test_our_own_engine_scores_forenscope_through_the_endpoint(
    server: OpenAIServer, tmp_path: Path
) -> None:
    from forenscope.mllm.config import LLMConfig
    from forenscope.mllm.image import encode_image
    from forenscope.mllm.runner import MLLMEngine

    config = LLMConfig(base_url=server.base_url, model="forenscope", flavor="openai", cache=False)

    async def main() -> Any:
        async with MLLMEngine(config) as engine:
            s1 = await engine.adetect(PHOTO, scoring="logprobs")
            return s1, await engine.aanalyze(PHOTO, evidence=["x"])

    s1, s2 = asyncio.run(main())
    # The engine sends a re-encoded copy (its image policy): the server analyses those bytes.
    sent = encode_image(PHOTO, config.image_policy).data_url.split(",", 1)[1]
    offline = forenscope.analyze(base64.b64decode(sent), experts=EXPERTS)
    assert s1.status == "ok" and s1.method == "logprobs" and s1.probability is not None
    assert s1.scoring == "logprobs"
    assert math.isclose(s1.probability, p_fake(offline), rel_tol=1e-9)
    assert s2.status == "ok" and s2.answer is not None and s2.answer.scope in ("global", "local")
