"""The LLM judge of stage 2's object-relative position (issue 12): the outline it is shown, its
prompt and how its answers are read, and `eval run/ablate --judge` against real localhost
servers (the fake OpenAI-compatible server answers judge questions by finding the outline)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from forenscope.eval.cli import eval_cli
from forenscope.mllm.fake_judge import judge_answer
from forenscope.mllm.fake_server import FakeServerProcess
from forenscope.mllm.image import encode_image
from forenscope.mllm.judge import (
    JUDGE_SYSTEM,
    OUTLINE_COLOURS,
    draw_outline,
    judge_messages,
    outline_ring,
    outlined_png,
    read_verdict,
)
from test_eval_datasets import make_dataset


def _square(size: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_the_ring_straddles_the_boundary_and_closes_at_the_image_edge() -> None:
    ring = outline_ring(_square(20, 5, 15, 5, 15), 1)
    assert ring[4, 10] and ring[5, 10] and ring[14, 10] and ring[15, 10]  # both sides of it
    assert not ring[10, 10] and not ring[3, 10] and not ring[16, 10]  # not inside, not far out
    assert ring.sum() == 12 * 12 - 8 * 8
    edge = outline_ring(_square(20, 0, 6, 0, 6), 1)
    assert edge[0, 3] and edge[3, 0] and not edge[3, 3]  # the image edge closes the region


def test_the_outline_takes_the_colour_farthest_from_what_it_covers() -> None:
    mask = _square(32, 8, 24, 8, 24)
    grey = np.full((32, 32, 3), 128, np.uint8)
    drawn, colour = draw_outline(grey, mask)
    ring = outline_ring(mask, 1)
    assert colour in OUTLINE_COLOURS and (drawn[ring] == OUTLINE_COLOURS[colour]).all()
    assert (drawn[~ring] == 128).all() and (grey == 128).all()  # a copy; the rest untouched
    pinkish = np.full((32, 32, 3), (250, 10, 250), np.uint8)
    assert draw_outline(pinkish, mask)[1] == "green"  # never magenta on a magenta image
    with pytest.raises(ValueError, match="differ in size"):
        draw_outline(grey, _square(16, 1, 4, 1, 4))
    with pytest.raises(ValueError, match="empty mask"):
        draw_outline(grey, np.zeros((32, 32), bool))


def test_the_prompt_names_the_colour_and_quotes_the_answers_text() -> None:
    rgb = np.zeros((16, 16, 3), np.uint8)
    png = io.BytesIO()
    Image.fromarray(rgb).save(png, "PNG")
    image = encode_image(png.getvalue())
    msgs = judge_messages('left of the "red" car\n  by the tree', "cyan", image)
    assert msgs[0] == {"role": "system", "content": JUDGE_SYSTEM}
    text = msgs[1]["content"][0]["text"]
    assert text.count("outlined in cyan") == 2 and "\"left of the 'red' car by the tree\"" in text
    assert msgs[1]["content"][1]["type"] == "image_url"
    long = judge_messages("x" * 2000, "green", image)[1]["content"][0]["text"]
    assert "x" * 500 in long and "x" * 501 not in long


@pytest.mark.parametrize(
    ("answer", "position", "refusal"),
    [
        ("Yes", 1, None),
        ("No, it points at the wrong object.", 0, None),
        ("<think>The outline is on the left.</think> Yes.", 1, None),
        ("I'm sorry, but I can't help with that.", None, "policy"),
        ("", None, "empty"),
        ("It is hard to say from this image.", None, "undetermined"),
    ],
)
def test_the_judges_answer_is_read_by_the_yes_no_parser_and_refusals_stay_refusals(
    answer: str, position: int | None, refusal: str | None
) -> None:
    verdict = read_verdict(answer)
    assert verdict.object_position == position and verdict.refusal == refusal


def test_the_fake_judge_finds_the_outline_it_is_shown() -> None:
    """The test partner's side: it must see the outline where the mask is, after encoding."""
    rgb = np.random.default_rng(0).integers(0, 90, (48, 48, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    png, colour = outlined_png(buf.getvalue(), _square(48, 34, 46, 34, 46))  # lower right
    sent = encode_image(png)  # the default policy: re-encoded as JPEG
    import base64

    seen = base64.b64decode(sent.data_url.split(",", 1)[1])
    ask = judge_messages("next to the lamp, lower right", colour, sent)[1]["content"][0]["text"]
    assert judge_answer(ask, seen) == "Yes"
    wrong = judge_messages("upper left, by the door", colour, sent)[1]["content"][0]["text"]
    assert judge_answer(wrong, seen) == "No"
    assert judge_answer("Is this image AI-generated?", seen) is None


# --- end to end: eval run/ablate --stage2 --judge against the fake server --------------------


def _llm_config(tmp_path: Path, name: str, port: int, model: str) -> Path:
    cfg = {"base_url": f"http://127.0.0.1:{port}/v1", "model": model, "max_retries": 0,
           "backoff_base_s": 0.0, "concurrency": 4}  # fmt: skip
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.fixture
def servers() -> Iterator[tuple[FakeServerProcess, FakeServerProcess]]:
    with FakeServerProcess() as model, FakeServerProcess() as judge:
        yield model, judge


def _dataset(tmp_path: Path) -> Path:
    """Three edits with a bright pasted patch in the upper left; the third's mask says the edit
    is in the lower right, so an answer pointing at the patch is wrong there."""
    manifest = make_dataset(tmp_path / "data", n_real=1, n_fake=0, n_tampered=3, size=48)
    Image.fromarray(_square(48, 34, 46, 34, 46).astype(np.uint8) * 255).save(
        tmp_path / "data" / "masks" / "t2.png"
    )
    return manifest


def _explanations(out: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    run = json.loads((out / "run.json").read_text())
    by_path = {r["path"]: r["explanation"] for r in run["samples"] if r.get("explanation")}
    return run, by_path


def test_eval_run_judges_object_position_and_a_new_judge_never_reuses_rows(
    tmp_path: Path, servers: tuple[FakeServerProcess, FakeServerProcess]
) -> None:
    model, judge = servers
    manifest = _dataset(tmp_path)
    judge_cfg = _llm_config(tmp_path, "judge", judge.port, "judge-a")
    out = tmp_path / "run"
    args = [str(manifest), "--system", f"llm:{_llm_config(tmp_path, 'llm', model.port, 'fake')}",
            "--out", str(out), "--n", "1", "--size", "48", "--stage2"]  # fmt: skip
    res = CliRunner().invoke(eval_cli, [*args, "--judge", str(judge_cfg)])
    assert res.exit_code == 0, res.output
    run, ex = _explanations(out)
    assert judge.hits() == 3  # one judgement per answer on a masked image
    # the fake model points at the bright patch, "upper left": right for t0/t1, wrong for t2
    assert [ex[f"tampered/t{i}.png"]["object_position"] for i in range(3)] == [1, 1, 0]
    assert all(e["judge_refusal"] is None and e["judge_error"] is None for e in ex.values())
    summary = run["summary"]["explanations"]
    assert summary["object_position"] == pytest.approx(2 / 3)
    assert summary["judge_refusal_rate"] == 0.0 and summary["n_judged"] == 3
    keys = list(summary)
    assert keys.index("object_position") == keys.index("frame_position") + 1
    identity = run["config"]["system_settings"]["judge"]
    assert identity["model"] == "judge-a" and identity["base_url"].endswith(f":{judge.port}/v1")
    assert "api_key" not in json.dumps(identity)
    assert run["session_usage"]["judge"]["calls"] == 3  # the judge's tokens, counted apart
    md = (out / "report.md").read_text()
    assert "object_position" in md and "judge-a" in md

    # Another judge (here: another model name) on the same --out is refused, never mixed in.
    other = _llm_config(tmp_path, "judge2", judge.port, "judge-b")
    again = CliRunner().invoke(eval_cli, [*args, "--judge", str(other)])
    assert again.exit_code == 1 and "system_settings.judge.model" in again.output
    # A judge that refuses everything: no verdict is guessed, every refusal is counted.
    with FakeServerProcess("--faults", "refusal:1.0") as refuser:
        refusing = _llm_config(tmp_path, "judge3", refuser.port, "judge-a")
        res = CliRunner().invoke(eval_cli, [*args, "--judge", str(refusing), "--restart"])
    assert res.exit_code == 0, res.output
    run, ex = _explanations(out)
    assert all(e["object_position"] is None and e["judge_refusal"] == "policy" for e in ex.values())
    summary = run["summary"]["explanations"]
    assert summary["judge_refusal_rate"] == 1.0 and summary["object_position"] is None  # NaN


def test_judge_needs_stage2_and_an_llm_system(tmp_path: Path) -> None:
    manifest = make_dataset(tmp_path / "data", n_real=1, n_fake=1, n_tampered=0, size=16)
    judge_cfg = _llm_config(tmp_path, "judge", 9, "judge-a")
    base = [str(manifest), "--out", str(tmp_path / "o"), "--judge", str(judge_cfg)]
    res = CliRunner().invoke(eval_cli, [*base, "--system", f"llm:{judge_cfg}"])
    assert res.exit_code == 2 and "add --stage2" in res.output
    res = CliRunner().invoke(eval_cli, [*base, "--system", "noop", "--stage2"])
    assert res.exit_code == 2 and "applies to llm: systems" in res.output


def test_eval_ablate_reports_the_judges_columns(
    tmp_path: Path, servers: tuple[FakeServerProcess, FakeServerProcess]
) -> None:
    model, judge = servers
    manifest = _dataset(tmp_path)
    out = tmp_path / "abl"
    llm, judge_cfg = (_llm_config(tmp_path, n, s.port, n) for n, s in (("m", model), ("j", judge)))
    args = ["ablate", str(manifest), "--config", str(llm), "--out", str(out), "--variants",
            "1,4", "--ks", "0", "--ns", "1", "--size", "48", "--stage2",
            "--judge", str(judge_cfg)]  # fmt: skip
    res = CliRunner().invoke(eval_cli, args)
    assert res.exit_code == 0, res.output
    cells = json.loads((out / "ablation.json").read_text())["cells"]
    assert len(cells) == 2
    assert all(c["object_position"] == pytest.approx(2 / 3) for c in cells)
    assert all(c["judge_refusal_rate"] == 0.0 for c in cells)
    md = (out / "ablation.md").read_text()
    assert "object_position" in md and "judge_refusal_rate" in md
