"""What image bytes reach the model (issue 12): the original file when asked, and k-shot
examples that went through the same alignment as the evaluated queries."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from forenscope.eval.align import Preprocess
from forenscope.eval.datasets import load_dataset
from forenscope.eval.journal import Journal
from forenscope.eval.llm_system import LLMSystem
from forenscope.eval.systems import LLMOptions
from forenscope.mllm.config import LLMConfig
from forenscope.mllm.image import encode_image
from test_eval_datasets import make_dataset


def _decoded(part: dict[str, Any]) -> bytes:
    return base64.b64decode(part["image_url"]["url"].split(",", 1)[1])


def test_original_bytes_are_sent_when_the_config_asks(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    Image.new("RGB", (20, 12), (10, 200, 30)).save(png)
    default = LLMConfig(base_url="http://127.0.0.1:9/v1", model="m")
    original = LLMConfig(base_url="http://127.0.0.1:9/v1", model="m", send_original_bytes=True)
    sent = encode_image(png, original.image_policy)
    assert sent.mime == "image/png" and _decoded(sent.content_part()) == png.read_bytes()
    again = encode_image(png, default.image_policy)  # the default: one format for all
    assert again.mime == "image/jpeg" and _decoded(again.content_part()) != png.read_bytes()
    assert original.image_policy.as_params()["reencode"] is False  # in cache keys and records


def test_kshot_examples_are_aligned_like_the_queries(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=2, n_tampered=0, size=40)
    pool = tmp_path / "pool"
    for label, value in (("real", 30), ("fake", 220)):
        (pool / label).mkdir(parents=True)
        for i in range(2):  # PNG at 48 px, while the queries are aligned to 16 px JPEG
            Image.new("RGB", (48, 48), (value + i,) * 3).save(pool / label / f"{i}.png")
    cfg = tmp_path / "llm.json"
    cfg.write_text(json.dumps({"base_url": "http://127.0.0.1:9/v1", "model": "m",
                               "cache": False, "pipeline": {"k": 2, "n": 1,
                                                            "pool": str(pool)}}))  # fmt: skip
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes"},
                               "finish_reason": "stop"}], "usage": {}}  # fmt: skip
        return httpx.Response(200, json=answer)

    system = LLMSystem(str(cfg), LLMOptions())
    pre = Preprocess("jpeg90", 16)
    samples = load_dataset(manifest)
    with Journal(tmp_path / "j.jsonl", {"type": "header", "config_hash": "x"}) as journal:
        asyncio.run(system.ascore(samples, pre, journal, transport=httpx.MockTransport(handler)))
        assert all(r.error is None for r in journal.records.values())
    assert len(bodies) == 4
    for body in bodies:
        images = [
            Image.open(io.BytesIO(_decoded(part)))
            for message in body["messages"]
            if isinstance(message["content"], list)
            for part in message["content"]
            if part["type"] == "image_url"
        ]
        assert len(images) == 3  # two examples, then the query
        assert {(im.format, im.size) for im in images} == {("JPEG", (16, 16))}
