"""k-shot for single-image servers (issue 12): examples and query tiled into one numbered
collage with the layout in the prompt, against a fake server that, like Ollama's llama3.2-vision,
refuses a request with more than one image."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from forenscope.eval.align import Preprocess
from forenscope.eval.run import EvalConfig, evaluate
from forenscope.mllm.collage import collage_pixels, grid, layout_text
from forenscope.mllm.fake_server import FakeServerProcess
from forenscope.mllm.image import encode_image
from test_eval_datasets import make_dataset


@pytest.fixture
def single_image_server() -> Iterator[FakeServerProcess]:
    with FakeServerProcess("--max-images", "1", "--delay", "0") as srv:
        yield srv


def test_collage_tiles_in_reading_order_with_the_query_last() -> None:
    panels = [encode_image(np.full((64, 96, 3), v, np.uint8)) for v in (10, 120, 250)]
    sheet = collage_pixels(panels)
    assert sheet.shape == (256, 768, 3)  # one row of three 256 px tiles, 64x96 scaled up
    assert [abs(int(sheet[128, x : x + 40].mean()) - v) <= 3 for x, v in
            ((100, 10), (356, 120), (612, 250))] == [True] * 3  # fmt: skip
    assert (sheet[5, 400:450] == 128).all()  # grey letterbox above the middle panel
    assert grid(5) == (3, 2) and grid(9) == (3, 3) and grid(2) == (2, 1)
    text = layout_text(["no", "yes"], 3)
    assert "collage of 3 panels" in text and "Panel 2 is a solved example. Its answer: yes" in text
    assert "Panel 3 is the image to judge" in text


def _config(tmp_path: Path, srv: FakeServerProcess, mode: str, pool: Path) -> Path:
    cfg = {"base_url": srv.base_url, "model": "llama3.2-vision", "flavor": "ollama",
           "cache": False, "max_retries": 0, "image_mode": mode,
           "pipeline": {"k": 2, "n": 1, "temperature": 0, "pool": str(pool)}}  # fmt: skip
    path = tmp_path / f"{mode}.json"
    path.write_text(json.dumps(cfg))
    return path


def test_a_single_image_server_takes_kshot_as_a_collage(
    tmp_path: Path, single_image_server: FakeServerProcess
) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=3, n_fake=3, n_tampered=0, size=16)
    pool = tmp_path / "pool"
    for label, value in (("real", 20), ("fake", 235)):
        (pool / label).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (16, 16), (value + i,) * 3).save(pool / label / f"{i}.png")
    runs = {}
    for mode in ("separate", "collage"):
        cfg = _config(tmp_path, single_image_server, mode, pool)
        run = EvalConfig(str(manifest), f"llm:{cfg}", tmp_path / mode, pre=Preprocess("jpeg90", 16))
        runs[mode] = evaluate(run, overlays=False)
    # one image per example turn: refused, as Ollama refuses a single-image model
    separate = runs["separate"]
    assert separate["counts"]["errors"] == 6
    assert "only supports one image" in separate["samples"][0]["error"]
    collage = runs["collage"]
    assert collage["counts"]["errors"] == 0
    assert collage["summary"]["overall"]["auc"] == 1.0  # the model judged the query panel
    assert all(len(s["extra"]["example_ids"]) == 2 for s in collage["samples"])
    assert collage["config"]["system_settings"]["image_mode"] == "collage"
