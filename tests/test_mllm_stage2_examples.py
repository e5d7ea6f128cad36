"""Stage 2 takes in-context examples (issue 12, seed 000 credits them with +12% ACC): forged
pool images shown with an answer built from the pool manifest's truth, never the query."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from forenscope.errors import ConfigError
from forenscope.eval.align import Preprocess
from forenscope.eval.datasets import load_dataset
from forenscope.eval.journal import Journal
from forenscope.eval.llm_system import LLMSystem
from forenscope.eval.systems import LLMOptions
from forenscope.mllm.examples import ExamplePool
from forenscope.types.llm import Stage2Answer
from test_eval_datasets import make_dataset

ANSWER = {"location": {"relative": "", "absolute": "upper left"}, "forged_content": "x",
          "method": "diffusion", "scope": "local", "reasoning": "r"}  # fmt: skip


def test_stage2_example_answers_come_from_the_manifest_truth(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=2, n_fake=2, n_tampered=2, size=24)
    pool = ExamplePool.load(manifest)
    forged = {ex.path.name: ex for ex in pool.examples if ex.has_stage2_truth}
    assert len(forged) == 4  # the two generated images and the two edits; reals never
    gan = Stage2Answer.model_validate_json(forged["f0000.png"].stage2_answer())
    assert (gan.method, gan.scope, gan.location.absolute) == ("gan", "global", "the whole frame")
    edit = Stage2Answer.model_validate_json(forged["t0.png"].stage2_answer())
    # make_dataset pastes its edit at rows/cols 1..6 of 24 px: the upper-left cell
    assert (edit.method, edit.scope) == ("other", "local")
    assert edit.location.absolute == "upper left of the frame"
    assert edit.location.box == pytest.approx([1 / 24, 1 / 24, 7 / 24, 7 / 24])
    drawn = pool.draw_stage2(3, seed=1, exclude_paths=[forged["t0.png"].path])
    assert len(drawn) == 3 and forged["t0.png"] not in drawn
    assert drawn == pool.draw_stage2(3, seed=1, exclude_paths=[forged["t0.png"].path])
    with pytest.raises(ConfigError, match="stage-2 k=5"):
        pool.draw_stage2(5)


def test_eval_stage2_shows_k_examples_before_the_query(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=1, n_fake=2, n_tampered=2, size=24)
    cfg = tmp_path / "llm.json"
    cfg.write_text(json.dumps({"base_url": "http://127.0.0.1:9/v1", "model": "m", "cache": False,
                               "pipeline": {"n": 1, "stage2_k": 2,
                                            "pool": str(manifest)}}))  # fmt: skip
    stage2_bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        last = body["messages"][-1]["content"]
        text = " ".join(p.get("text", "") for p in last if p["type"] == "text")
        is_stage2 = "forged_content" in text
        if is_stage2:
            stage2_bodies.append(body)
        content = json.dumps(ANSWER) if is_stage2 else "Yes"
        choice = {"index": 0, "message": {"role": "assistant", "content": content},
                  "finish_reason": "stop"}  # fmt: skip
        return httpx.Response(200, json={"choices": [choice], "usage": {}})

    system = LLMSystem(str(cfg), LLMOptions(stage2=True))
    assert system.describe()["stage2_k"] == 2 and system.identity()["stage2_k"] == 2
    with Journal(tmp_path / "j.jsonl", {"type": "header", "config_hash": "x"}) as journal:
        asyncio.run(
            system.ascore(
                load_dataset(manifest),
                Preprocess("jpeg90", 24),
                journal,
                transport=httpx.MockTransport(handler),
            )  # fmt: skip
        )
        records = list(journal.records.values())
    assert all(r.error is None for r in records)
    assert sum(1 for r in records if r.explanation is not None) == 4 == len(stage2_bodies)
    for body in stage2_bodies:
        roles = [m["role"] for m in body["messages"]]
        assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
        shown = [json.loads(m["content"]) for m in body["messages"] if m["role"] == "assistant"]
        assert all(a["scope"] in ("global", "local") for a in shown)
        example_texts = [m["content"][0]["text"] for m in body["messages"][1:-1:2]]
        assert all("forged_content" in t for t in example_texts)  # the stage-2 question
