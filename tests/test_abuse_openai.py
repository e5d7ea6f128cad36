"""Issue 16 against `forenscope serve-openai`: a cache bounded in bytes that keeps answers, not
heatmaps; a cap on requests in progress; malformed JSON answered in OpenAI's error shape."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import abuse_fixtures as fx

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from forenscope.service.openai.server import OpenAISettings, ReportCache, create_openai_app

EXPERTS = ["ela", "exif"]


@pytest.fixture()
def client() -> Iterator[TestClient]:
    # a 2 GB machine's budget (the default is half the machine's memory)
    settings = OpenAISettings(experts=EXPERTS, memory_budget_mb=1024)
    with TestClient(create_openai_app(settings)) as c:
        yield c


def is_openai_error(r: Any, status: int) -> bool:
    body = r.json()
    return (
        r.status_code == status
        and isinstance(body.get("error"), dict)
        and "message" in (body["error"])
    )


# -- High 2: the cache keeps answers, bounded in bytes --------------------------------------------


def test_cache_keeps_report_json_without_maps_and_is_bounded_in_bytes() -> None:
    from forenscope.io import load_image
    from forenscope.pipeline import analyze_image

    report = analyze_image(load_image(fx.small_jpeg(1, size=(256, 320))), experts=["ela"])
    assert report.fused_heatmap is not None or any(e.heatmap is not None for e in report.experts)
    one = len(report.model_dump_json())
    cache = ReportCache(size=64, max_bytes=3 * one + 10)
    for i in range(10):
        cache.put(f"{i:064x}", report)
    assert len(cache) == 3 and cache.nbytes <= 3 * one + 10
    back = cache.get(f"{9:064x}")
    assert back is not None and back.verdict == report.verdict
    assert back.fused_heatmap is None and all(e.heatmap is None for e in back.experts)
    assert cache.get(f"{0:064x}") is None  # the oldest went first
    for blob in cache._items.values():
        assert isinstance(blob, bytes)  # never a Report holding arrays


def test_default_cache_is_bounded_in_bytes() -> None:
    s = OpenAISettings()
    assert s.cache_bytes <= 64 * 1024 * 1024


# -- Medium 7: a cap on requests in progress, 503 with Retry-After --------------------------------


def test_requests_beyond_the_queue_get_503_before_their_body_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from forenscope.service.openai import server as openai_server

    app = create_openai_app(OpenAISettings(experts=EXPERTS, workers=1, max_queue=0))
    release = threading.Event()
    entered = threading.Event()
    real = openai_server.Analyst.report

    def slow_report(self: Any, data: bytes) -> Any:
        entered.set()
        release.wait(30)
        return real(self, data)

    monkeypatch.setattr(openai_server.Analyst, "report", slow_report)
    body = fx.chat_json(fx.small_jpeg(2))
    with TestClient(app) as c:
        try:
            first = threading.Thread(
                target=lambda: c.post(
                    "/v1/chat/completions",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )  # fmt: skip
            )
            first.start()
            assert entered.wait(30)
            r = c.post("/v1/chat/completions", content=body,
                       headers={"Content-Type": "application/json"})  # fmt: skip
            assert is_openai_error(r, 503) and int(r.headers["retry-after"]) >= 1
            assert c.get("/health").status_code == 200  # other routes are not capped
        finally:
            release.set()
            first.join(30)


# -- Low 2: malformed requests get OpenAI's error JSON ------------------------------------------


def test_deeply_nested_json_is_an_openai_error(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", content=fx.nested_json(100_000),
                    headers={"Content-Type": "application/json"})  # fmt: skip
    assert is_openai_error(r, 400), r.text


@pytest.mark.parametrize("schema", ["a string", 42, ["list"], {"schema": "text"}])
def test_non_object_json_schema_is_an_openai_error(client: TestClient, schema: Any) -> None:
    fmt = {"type": "json_schema", "json_schema": schema}
    r = client.post("/v1/chat/completions",
                    json=fx.chat_body(fx.small_jpeg(3), response_format=fmt))  # fmt: skip
    assert is_openai_error(r, 400), r.text


# -- High 4 for serve-openai: memory budget before decoding --------------------------------------


def test_image_over_the_memory_budget_is_413(client: TestClient) -> None:
    r = client.post("/v1/chat/completions", json=fx.chat_body(fx.png_bomb(8000, 7400)))
    assert is_openai_error(r, 413) and "memory budget" in r.json()["error"]["message"], r.text


# -- the guards' own refusals (body too large, too slow) are OpenAI errors too ------------------


def test_a_body_over_the_limit_is_an_openai_error() -> None:
    app = create_openai_app(OpenAISettings(experts=EXPERTS, max_image_bytes=10_000, warm_up=False))
    with TestClient(app) as c:
        r = c.post("/v1/chat/completions", content=fx.chat_json(fx.noise_png(0.1)),
                   headers={"Content-Type": "application/json"})  # fmt: skip
    assert is_openai_error(r, 413) and r.json()["error"]["code"] == "request_too_large", r.text


def test_a_body_that_trickles_is_an_openai_error() -> None:
    import json

    import anyio

    from forenscope.service.openai.server import _wire_body
    from forenscope.service.security import RequestDeadlineMiddleware

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep(0.5)  # slower than the idle limit below
        return {"type": "http.request", "body": b"{", "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass

    guard = RequestDeadlineMiddleware(app, idle_s=0.05, total_s=5.0, error_body=_wire_body)
    anyio.run(guard, {"type": "http", "headers": []}, receive, send)
    assert sent[0]["status"] == 408
    error = json.loads(sent[1]["body"])["error"]
    assert error["code"] == "request_timeout" and "too slowly" in error["message"]
