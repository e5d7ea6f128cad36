"""`forenscope serve-openai` speaks OpenAI's protocol as clients use it (issue 12, item 6):
streaming (SSE chunks ending in [DONE]), max_tokens, usage that counts the system message and
every image, one image judged per request (and said so), OpenAI-shaped errors for unknown
routes and malformed bodies, follow-up questions. In process, then through the official
`openai` SDK and simonw's `llm` CLI against a real server process on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import BaseModel, Field

import forenscope
from forenscope.service.openai import tokens
from forenscope.service.openai.followup import confidence, where
from forenscope.types import Report
from test_mllm_openai_server import PHOTO, QUESTION, OpenAIServer

pytest.importorskip("fastapi")
EXPERTS = ["ela", "noise", "exif"]


def _url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _jpeg(w: int, h: int, value: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (value, value // 2, 255 - value)).save(buf, "JPEG")
    return buf.getvalue()


def _user(text: str, *images: bytes, detail: str = "auto") -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [
        {"type": "image_url", "image_url": {"url": _url(d), "detail": detail}} for d in images
    ]
    return {"role": "user", "content": parts}


@pytest.fixture(scope="module")
def app_client() -> Any:
    from fastapi.testclient import TestClient

    from forenscope.service.openai.server import OpenAISettings, create_openai_app

    return TestClient(create_openai_app(OpenAISettings(experts=EXPERTS)))


def _post(client: Any, **body: Any) -> Any:
    return client.post("/v1/chat/completions", json={"model": "forenscope", **body})


def _events(text: str) -> list[str]:
    blocks = [b for b in text.split("\n\n") if b.strip()]
    assert all(b.startswith("data: ") for b in blocks), blocks[:3]
    return [b.removeprefix("data: ") for b in blocks]


# -- streaming ---------------------------------------------------------------------------------
def test_stream_sends_openai_chunks_ending_in_done(app_client: Any) -> None:
    messages = [_user("What can you tell me about this image?", PHOTO.read_bytes())]
    whole = _post(app_client, messages=messages).json()
    r = _post(app_client, messages=messages, stream=True, n=2,
              stream_options={"include_usage": True})  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["model"] == "forenscope"
    for index in (0, 1):
        mine = [
            c["choices"][0] for c in chunks if c["choices"] and c["choices"][0]["index"] == index
        ]
        assert mine[0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
        assert [m["finish_reason"] for m in mine][-1] == "stop"
        assert all(m["finish_reason"] is None for m in mine[:-1])
        text = "".join(m["delta"].get("content") or "" for m in mine)
        assert text == whole["choices"][0]["message"]["content"]
        assert len(mine) == tokens.count(text) + 2  # role, one chunk per token, finish
    assert all(c["usage"] is None for c in chunks[:-1])  # include_usage: null until the end
    assert (
        chunks[-1]["choices"] == []
        and chunks[-1]["usage"]["prompt_tokens"] == (whole["usage"]["prompt_tokens"])
    )
    assert chunks[-1]["usage"]["completion_tokens"] == 2 * whole["usage"]["completion_tokens"]


def test_stream_carries_yes_no_logprobs(app_client: Any) -> None:
    messages = [_user(QUESTION, PHOTO.read_bytes())]
    r = _post(app_client, messages=messages, stream=True, logprobs=True, top_logprobs=2)
    chunks = [json.loads(e) for e in _events(r.text)[:-1]]
    content = [c["choices"][0] for c in chunks if c["choices"][0]["delta"].get("content")]
    assert len(content) == 1 and content[0]["delta"]["content"] in ("Yes", "No")
    entry = content[0]["logprobs"]["content"][0]
    assert entry["token"] == content[0]["delta"]["content"] and len(entry["top_logprobs"]) == 2
    assert "usage" not in chunks[0]  # no include_usage: no usage field at all
    assert "forenscope_report" in chunks[-1]  # our extra rides on the last chunk


# -- max_tokens and usage ----------------------------------------------------------------------
def test_max_tokens_cuts_the_answer_and_says_length(app_client: Any) -> None:
    messages = [_user("Describe this image.", PHOTO.read_bytes())]
    full = _post(app_client, messages=messages).json()["choices"][0]["message"]["content"]
    for key in ("max_tokens", "max_completion_tokens"):
        cut = _post(app_client, messages=messages, **{key: 5}).json()
        choice = cut["choices"][0]
        assert (
            choice["finish_reason"] == "length" and tokens.count(choice["message"]["content"]) == 5
        )
        assert (
            full.startswith(choice["message"]["content"]) and cut["usage"]["completion_tokens"] == 5
        )
    enough = _post(app_client, messages=messages, max_tokens=100_000).json()["choices"][0]
    assert enough["finish_reason"] == "stop" and enough["message"]["content"] == full


def test_image_tokens_follow_openais_rule() -> None:
    assert tokens.image_tokens(1024, 1024) == 765  # 768x768: four tiles
    assert tokens.image_tokens(4096, 2048) == 1105  # OpenAI's own worked example
    assert tokens.image_tokens(4096, 2048, "low") == 85
    assert "".join(tokens.pieces("Verdict: real, 0.93 — 图片")) == "Verdict: real, 0.93 — 图片"


def test_usage_counts_the_system_message_and_every_image(app_client: Any) -> None:
    query, example = PHOTO.read_bytes(), _jpeg(1024, 1024)
    bare = [_user(QUESTION, query)]
    system = {"role": "system", "content": "You are a careful forensic analyst. " * 5}
    shots = [system, _user(QUESTION, example), {"role": "assistant", "content": "yes"},
             _user(QUESTION, example, detail="low"), {"role": "assistant", "content": "no"},
             *bare]  # fmt: skip
    base = _post(app_client, messages=bare).json()["usage"]["prompt_tokens"]
    more = _post(app_client, messages=shots).json()
    extra = sum(tokens.message_tokens(m, []) for m in shots[:-1])
    assert more["usage"]["prompt_tokens"] == base + extra + 765 + 85
    assert tokens.count(system["content"]) > 30  # the system text itself is in the sum


# -- one image per request, said so ------------------------------------------------------------
def test_several_images_in_one_message_are_refused(app_client: Any) -> None:
    r = _post(app_client, messages=[_user("Which is fake?", PHOTO.read_bytes(), _jpeg(64, 64))])
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "too_many_images" and err["param"] == "messages[0]"
    assert err["type"] == "invalid_request_error" and "one image per request" in err["message"]


def test_earlier_images_are_counted_and_named_not_judged(app_client: Any) -> None:
    example = _jpeg(96, 96, 250)
    messages = [_user(QUESTION, example), {"role": "assistant", "content": "yes"},
                _user("What can you tell me about this image?", PHOTO.read_bytes())]  # fmt: skip
    body = _post(app_client, messages=messages).json()
    report = Report.model_validate(body["forenscope_report"])
    assert report.image.sha256 == forenscope.analyze(PHOTO, experts=["exif"]).image.sha256
    assert (
        body["forenscope_notes"] and "1 image(s) in earlier messages" in body["forenscope_notes"][0]
    )
    assert "were counted in usage but not analysed" in body["choices"][0]["message"]["content"]


# -- errors in OpenAI's shape ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("post", "/v1/responses", 404, "unknown_url"), ("get", "/v1/embeddings", 404, "unknown_url"),
     ("get", "/v1/chat/completions", 405, "method_not_allowed")],
)  # fmt: skip
def test_unknown_routes_answer_openai_errors(
    app_client: Any, method: str, path: str, status: int, code: str
) -> None:
    r = getattr(app_client, method)(path)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == code and err["type"] == "invalid_request_error"
    assert set(err) == {"message", "type", "param", "code"} and path in err["message"]


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [({"messages": "hi"}, "invalid_messages", "messages"),
     ({"messages": [{"content": "no role"}]}, "invalid_messages", "messages[0]"),
     ({"messages": [{"role": "user", "content": 42}]}, "invalid_messages", "messages[0].content"),
     ({"messages": [{"role": "user", "content": ["text"]}]}, "invalid_messages",
      "messages[0].content[0]"),
     ({"stream": "true", "messages": []}, "invalid_type", "stream"),
     ({"max_tokens": -1, "messages": []}, "invalid_value", "max_tokens"),
     ({}, "missing_required_parameter", "messages")],
)  # fmt: skip
def test_malformed_requests_answer_openai_errors(
    app_client: Any, body: dict[str, Any], code: str, param: str
) -> None:
    r = _post(app_client, **body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert (err["code"], err["param"], err["type"]) == (code, param, "invalid_request_error")
    no_model = app_client.post("/v1/chat/completions", json={"messages": []})
    assert no_model.json()["error"]["code"] == "missing_required_parameter"


# -- follow-up questions -----------------------------------------------------------------------
def test_a_follow_up_question_gets_its_own_answer(app_client: Any) -> None:
    first = [_user("What can you tell me about this image?", PHOTO.read_bytes())]
    one = _post(app_client, messages=first).json()
    said = one["choices"][0]["message"]["content"]
    report = Report.model_validate(one["forenscope_report"])
    turns = [*first, {"role": "assistant", "content": said}]
    where_ = _post(
        app_client, messages=[*turns, {"role": "user", "content": "Where was it edited?"}]
    )
    sure = _post(app_client, messages=[*turns, {"role": "user", "content": "How sure are you?"}])
    answers = [r.json()["choices"][0]["message"]["content"] for r in (where_, sure)]
    assert answers == [where(report), confidence(report)] and said not in answers
    assert "Class probabilities" in answers[1]
    yes_no = _post(app_client, messages=[*turns, {"role": "user", "content": QUESTION}])
    assert yes_no.json()["choices"][0]["message"]["content"] in ("Yes", "No")


# -- real clients against a real server process ------------------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    srv = OpenAIServer()
    yield srv
    srv.close()


def test_official_sdk_streams_and_parses(server: OpenAIServer) -> None:
    from openai import OpenAI

    from forenscope.types.llm import Stage2Answer

    client = OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=60)
    messages: Any = [_user("What can you tell me about this image?", PHOTO.read_bytes())]
    whole = client.chat.completions.create(model="forenscope", messages=messages)
    stream = client.chat.completions.create(
        model="forenscope", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content and len(chunks) > 10
    assert (
        chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    )
    parsed = client.chat.completions.parse(
        model="forenscope", messages=[_user("Analyse.", PHOTO.read_bytes())],
        response_format=Stage2Answer,
    )  # fmt: skip
    answer = parsed.choices[0].message.parsed
    assert isinstance(answer, Stage2Answer) and answer.scope in ("global", "local")
    mine = client.chat.completions.parse(
        model="forenscope", messages=[_user("Is it AI-generated?", PHOTO.read_bytes())],
        response_format=MyVerdict,
    )  # fmt: skip
    own = mine.choices[0].message.parsed
    assert isinstance(own, MyVerdict) and 0.0 <= own.probability <= 1.0 and own.explanation
    assert len(mine.choices[0].message.content or "") < 2000  # not the whole report


class Kind(str, Enum):
    REAL = "real"
    FAKE = "fake"


class Where(BaseModel):
    location: str
    scope: str | None = None


class MyVerdict(BaseModel):
    """A client's own answer model, as `client.chat.completions.parse` sends it."""

    is_ai_generated: bool
    verdict: Kind
    probability: float
    confidence_percent: int = Field(ge=0, le=100)
    explanation: str
    evidence: list[str]
    where: Where
    favourite_colour: str | None = None


def test_a_client_json_schema_gets_an_answer_in_that_schema(app_client: Any) -> None:
    schema = MyVerdict.model_json_schema()
    fmt = {"type": "json_schema", "json_schema": {"name": "v", "schema": schema, "strict": True}}
    r = _post(app_client, messages=[_user("Is it fake?", PHOTO.read_bytes())], response_format=fmt)
    assert r.status_code == 200, r.text
    body = r.json()
    content = body["choices"][0]["message"]["content"]
    answer = MyVerdict.model_validate_json(content)  # validates, nested and enum included
    report = body["forenscope_report"]
    p_real = report["verdict"]["probabilities"]["real"]
    assert answer.probability == pytest.approx(1 - p_real)
    assert answer.is_ai_generated == (report["verdict"]["leaning"] != "real")
    assert answer.verdict == (Kind.REAL if report["verdict"]["leaning"] == "real" else Kind.FAKE)
    assert 0 <= answer.confidence_percent <= 100 and answer.confidence_percent != 0
    assert answer.explanation and len(content) < 2000  # no longer the ~31 KB report
    assert any("favourite_colour" in n for n in body["forenscope_notes"])  # said, not guessed


def test_llm_cli_streams_an_answer(server: OpenAIServer, tmp_path: Path) -> None:
    """`llm -m forenscope "Is this image AI-generated?" -a photo.jpg`, streaming (llm's default)."""
    pytest.importorskip("llm", reason="simonw's llm is not installed (pip install llm)")
    exe = Path(sys.executable).with_name("llm")
    if not exe.exists():
        pytest.skip(f"the llm command is not next to {sys.executable}")
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: forenscope\n  model_name: forenscope\n  api_base: {server.base_url}\n"
        "  vision: true\n"
    )
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(PHOTO.read_bytes())
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path), "OPENAI_API_KEY": "unused"}
    run = subprocess.run(
        [str(exe), "-m", "forenscope", "Is this image AI-generated?", "-a", str(photo)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Verdict: ") and "Evidence for" in run.stdout
    logs = subprocess.run([str(exe), "logs", "-n", "1", "--json"], capture_output=True,
                          text=True, env=env, timeout=60)  # fmt: skip
    logged = json.loads(logs.stdout)[0]
    assert logged["response"].startswith("Verdict: ") and logged["model"] == "forenscope"


LITELLM_CLIENT = """
import base64, json, sys
import litellm
url, photo = sys.argv[1], sys.argv[2]
data = base64.b64encode(open(photo, "rb").read()).decode()
messages = [{"role": "user", "content": [
    {"type": "text", "text": "Is this image AI-generated? Answer yes or no."},
    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + data}}]}]
whole = litellm.completion(model="openai/forenscope", api_base=url, api_key="unused",
                           messages=messages)
stream = litellm.completion(model="openai/forenscope", api_base=url, api_key="unused",
                            messages=messages, stream=True)
text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
print(json.dumps({"whole": whole.choices[0].message.content, "streamed": text}))
"""


def test_litellm_is_a_client_of_serve_openai(server: OpenAIServer, tmp_path: Path) -> None:
    """litellm's Python client (in its own venv) against a real serve-openai process."""
    from forenscope.mllm.litellm_proxy import LITELLM_ENV, find_litellm

    exe = find_litellm()
    if exe is None:
        pytest.skip(
            "litellm proxy not installed: python3 -m venv .venv-litellm && "
            f".venv-litellm/bin/pip install 'litellm[proxy]' (or set {LITELLM_ENV})"
        )
    python = Path(exe).with_name("python")
    script = tmp_path / "client.py"
    script.write_text(LITELLM_CLIENT)
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
    out = subprocess.run([str(python), str(script), server.base_url, str(PHOTO)], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    answers = json.loads(out.stdout.strip().splitlines()[-1])
    assert answers["whole"] in ("Yes", "No") and answers["streamed"] == answers["whole"]
