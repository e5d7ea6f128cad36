"""Pure functions of the MLLM engine: parsing, refusals, scoring maths, requests, images,
k-shot draws, configuration, cache keys and redaction. No I/O beyond tmp_path."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from forenscope.errors import ConfigError
from forenscope.mllm.audit import redact
from forenscope.mllm.cache import ResponseCache, cache_key
from forenscope.mllm.config import LLMConfig, load_config
from forenscope.mllm.examples import ExamplePool
from forenscope.mllm.image import ImagePolicy, encode_image
from forenscope.mllm.parsing import extract_json_object, parse_analysis, parse_yes_no
from forenscope.mllm.prompts import stage1_prompt
from forenscope.mllm.refusal import refusal_reason
from forenscope.mllm.request import answer_texts, build_messages, build_request
from forenscope.mllm.scoring import top_tokens, vote_probability, yes_probability
from forenscope.types.llm import Location

# -- stage-1 answers and refusals ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label", "reason"),
    [
        ("Yes", "yes", None),
        ("yes.", "yes", None),
        ("**No**", "no", None),
        ("No. The lighting is consistent, sorry if unclear.", "no", None),
        ("The answer is yes.", "yes", None),
        ("  YES  ", "yes", None),
        ("", "refusal", "empty"),
        (None, "refusal", "empty"),
        ("   \n", "refusal", "empty"),
        (
            "I'm sorry, but I can't help with identifying whether this is edited.",
            "refusal",
            "policy",
        ),
        ("I can\u2019t help with identifying people in images.", "refusal", "policy"),
        # an inability to decide is not a vote, and not a policy refusal either
        ("I cannot determine whether the image was tampered with.", "refusal", "undetermined"),
        ("As an AI, I am unable to verify authenticity.", "refusal", "policy"),
        ("The image shows a cat on a sofa.", "refusal", "non_answer"),
        ("Yes or no? Hard to say.", "refusal", "undetermined"),  # echoes the question
        ("It could be yes, it could be no.", "refusal", "conflicting"),
    ],
)
def test_parse_yes_no(text: str | None, label: str, reason: str | None) -> None:
    assert parse_yes_no(text) == (label, reason)


def test_refusal_reason_leaves_plain_answers_alone() -> None:
    assert refusal_reason("No, the shadows agree.") is None
    assert refusal_reason("") == "empty"


# -- stage-2 JSON --------------------------------------------------------------------------------

GOOD = {
    "location": {
        "relative": "above the crowd",
        "absolute": "centre right",
        "box": [0.5, 0.1, 0.7, 0.4],
    },
    "forged_content": "a flag",
    "visible_traces": ["sharp edges"],
    "method": "Diffusion",
    "scope": "local",
    "reasoning": "edges {look} pasted",
}


def test_extract_json_from_fences_prose_and_braces_inside_strings() -> None:
    text = "Analysis below.\n```json\n" + json.dumps(GOOD) + "\n```\nDone {not json}"
    assert extract_json_object(text) == GOOD
    assert extract_json_object("prefix " + json.dumps(GOOD) + " trailing words") == GOOD


def test_extract_single_quoted_python_style() -> None:
    text = "{'scope': 'local', 'box': None, 'ok': true, 'n': null}"
    assert extract_json_object(text) == {"scope": "local", "box": None, "ok": True, "n": None}


def test_truncated_json_is_not_repaired() -> None:
    text = json.dumps(GOOD)[:-20]
    assert extract_json_object(text) is None
    answer, obj, status = parse_analysis(text)
    assert (answer, obj, status) == (None, None, "unparseable")


def test_parse_analysis_statuses() -> None:
    answer, obj, status = parse_analysis(json.dumps(GOOD))
    assert status == "ok" and answer is not None and answer.method == "diffusion"
    assert answer.location.box == [0.5, 0.1, 0.7, 0.4]
    bad = dict(GOOD, scope="partial")
    answer, obj, status = parse_analysis(json.dumps(bad))
    assert (answer, status) == (None, "unparseable") and obj == bad
    assert parse_analysis("I'm sorry, I can't assist with that.")[2] == "refused"
    assert parse_analysis("")[2] == "refused"
    assert parse_analysis("The flag looks odd.")[2] == "unparseable"


@pytest.mark.parametrize("box", [[0.5, 0.1, 0.4, 0.4], [0, 0, 1.2, 1], [0.1, 0.2, 0.3]])
def test_location_box_validation(box: list[float]) -> None:
    with pytest.raises(ValidationError):
        Location(box=box)


# -- scoring --------------------------------------------------------------------------------------


def _resp(entries: list[dict[str, object]]) -> dict[str, object]:
    return {"choices": [{"message": {"content": "x"}, "logprobs": {"content": entries}}]}


def _tok(t: str, p: float) -> dict[str, object]:
    return {"token": t, "logprob": math.log(p)}


def test_logprob_sums_yes_like_and_no_like_tokens() -> None:
    entry = {
        **_tok("Yes", 0.6),
        "top_logprobs": [_tok("Yes", 0.6), _tok(" yes", 0.1), _tok("No", 0.2), _tok("NO", 0.05)],
    }
    p = yes_probability(top_tokens(_resp([entry])) or [])
    assert p == pytest.approx(0.7 / 0.95)


def test_logprob_one_sided_uses_residual_mass() -> None:
    entry = {**_tok("Yes", 0.6), "top_logprobs": [_tok("Yes", 0.6), _tok("The", 0.3)]}
    assert yes_probability(top_tokens(_resp([entry])) or []) == pytest.approx(0.6 / 0.7)
    only_chosen = {**_tok("No", 0.9), "top_logprobs": []}
    assert yes_probability(top_tokens(_resp([only_chosen])) or []) == pytest.approx(0.1)


def test_logprob_missing_or_unreadable() -> None:
    assert top_tokens({"choices": [{"message": {"content": "Yes"}, "logprobs": None}]}) is None
    assert top_tokens({"choices": [{"message": {"content": "Yes"}}]}) is None
    assert top_tokens({}) is None
    entry = {**_tok("I", 0.8), "top_logprobs": [_tok("I", 0.8), _tok("The", 0.1)]}
    assert yes_probability(top_tokens(_resp([entry])) or []) is None
    assert yes_probability([]) is None


def test_vote_probability_never_counts_refusals() -> None:
    assert vote_probability(["yes", "no", "refusal", "yes", "refusal"]) == (2 / 3, 2, 1, 2)
    assert vote_probability(["refusal", "refusal"]) == (None, 0, 0, 2)
    assert vote_probability([]) == (None, 0, 0, 0)


# -- requests and images --------------------------------------------------------------------------


def _png(w: int, h: int, value: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (value, value, value)).save(buf, format="PNG")
    return buf.getvalue()


def _decode(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_encode_image_downscales_reencodes_and_hashes_the_source() -> None:
    data = _png(3000, 1500)
    enc = encode_image(data, ImagePolicy(max_side=1024))
    im = _decode(enc.data_url)
    assert im.format == "JPEG" and im.size == (1024, 512) and (enc.width, enc.height) == (1024, 512)
    import hashlib

    assert enc.sha256 == hashlib.sha256(data).hexdigest()
    low = encode_image(data, ImagePolicy(max_side=1024, detail="low"))
    assert (
        max(_decode(low.data_url).size) == 512
        and low.content_part()["image_url"]["detail"] == "low"
    )
    keep = encode_image(_png(100, 80), ImagePolicy(reencode=False))
    assert keep.mime == "image/png" and _decode(keep.data_url).format == "PNG"


def test_encode_image_accepts_arrays_and_rejects_garbage() -> None:
    enc = encode_image(np.zeros((10, 20, 3), np.uint8))
    assert (enc.width, enc.height) == (20, 10)
    with pytest.raises(Exception, match="cannot encode"):
        encode_image(b"not an image")


def test_build_messages_interleaves_examples_and_request_fields() -> None:
    tpl = stage1_prompt(4)
    q, ex = encode_image(_png(8, 8, 10)), encode_image(_png(8, 8, 250))
    msgs = build_messages(tpl, q, [(ex, "yes"), (ex, "no")])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[2]["content"] == "yes" and msgs[4]["content"] == "no"
    assert msgs[-1]["content"][1]["image_url"]["url"] == q.data_url
    body = build_request("m", msgs, temperature=0.7, n=3, top_logprobs=5, seed=1)
    assert body["n"] == 3 and body["logprobs"] is True and body["top_logprobs"] == 5
    assert "n" not in build_request("m", msgs) and "logprobs" not in build_request("m", msgs)
    assert build_messages(stage1_prompt(1), q)[0]["role"] == "user"  # variant 1: no system


def test_answer_texts_reads_content_parts_and_refusal_field() -> None:
    data = {
        "choices": [
            {
                "message": {
                    "content": [{"type": "text", "text": "Ye"}, {"type": "text", "text": "s"}]
                }
            },
            {"message": {"content": None, "refusal": "I can't help with that."}},
            {"message": {}},
        ]
    }
    assert answer_texts(data) == ["Yes", "I can't help with that.", None]


# -- k-shot pool ----------------------------------------------------------------------------------


def _pool(tmp_path: Path, n_real: int = 5, n_fake: int = 5) -> Path:
    for label, n, value in (("real", n_real, 40), ("fake", n_fake, 220)):
        (tmp_path / label).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            (tmp_path / label / f"{i}.png").write_bytes(_png(8, 8, value + i))
    return tmp_path


def test_pool_draw_is_balanced_reproducible_and_excludes_query(tmp_path: Path) -> None:
    pool = ExamplePool.from_folder(_pool(tmp_path))
    for k in (1, 2, 4):
        a, b = pool.draw(k, seed=3), pool.draw(k, seed=3)
        assert [e.id for e in a] == [e.id for e in b] and len(a) == k
        if k % 2 == 0:
            assert sum(e.label == "fake" for e in a) == k // 2
    assert pool.draw(0) == []
    assert {tuple(e.id for e in pool.draw(4, s)) for s in range(6)}.__len__() > 1
    query = pool.examples[0]
    for s in range(10):
        assert query.id not in [e.id for e in pool.draw(4, s, exclude_sha256=query.sha256())]
    assert all(e.answer == ("yes" if e.label == "fake" else "no") for e in pool.examples)


def test_pool_fills_a_short_side_and_reads_manifests(tmp_path: Path) -> None:
    pool = ExamplePool.from_folder(_pool(tmp_path, n_real=1, n_fake=5))
    assert sorted(e.label for e in pool.draw(4, 0)) == ["fake", "fake", "fake", "real"]
    with pytest.raises(ConfigError):
        pool.draw(7)
    (tmp_path / "m.csv").write_text("path,label\nreal/0.png,real\nfake/0.png,ai_generated\n")
    assert [e.label for e in ExamplePool.load(tmp_path / "m.csv").examples] == ["fake", "real"]
    (tmp_path / "bad.csv").write_text("path,label\nreal/0.png,maybe\n")
    with pytest.raises(ConfigError, match="neither"):
        ExamplePool.load(tmp_path / "bad.csv")


# -- config, cache keys, redaction ----------------------------------------------------------------


def test_config_file_env_and_rules(tmp_path: Path) -> None:
    f = tmp_path / "llm.json"
    f.write_text(json.dumps({"llm": {"base_url": "http://h/v1", "model": "a", "flavor": "ollama"}}))
    cfg = load_config(f, env={"FORENSCOPE_LLM_MODEL": "b", "FORENSCOPE_LLM_CAPABILITIES": "n"})
    assert cfg.model == "b" and cfg.endpoint == "http://h/v1/chat/completions"
    assert cfg.caps.logprobs and cfg.caps.json_schema and cfg.caps.n  # env turned n on
    assert not load_config(f, env={}).caps.n
    f.write_text(json.dumps({"base_url": "http://h/v1", "model": "a", "api_key": "sk-x"}))
    with pytest.raises(ConfigError, match="environment"):
        load_config(f, env={})
    f.write_text(json.dumps({"base_url": "http://h/v1", "model": "a", "colour": 1}))
    with pytest.raises(ConfigError, match="colour"):
        load_config(f, env={})
    env_only = load_config(
        None, env={"FORENSCOPE_LLM_BASE_URL": "http://e/v1", "FORENSCOPE_LLM_MODEL": "m"}
    )
    assert env_only.flavor == "generic" and not env_only.caps.logprobs


def test_api_key_comes_from_the_named_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = LLMConfig(base_url="http://h/v1", model="m", api_key_env="MY_KEY")
    monkeypatch.delenv("MY_KEY", raising=False)
    assert cfg.api_key() is None
    monkeypatch.setenv("MY_KEY", "sk-1")
    assert cfg.api_key() == "sk-1" and "sk-1" not in cfg.model_dump_json()


def test_cache_key_covers_every_part_and_cache_roundtrip(tmp_path: Path) -> None:
    parts = ("http://h/v1/chat/completions", "m", "s1-p4-v1", "ab" * 32, {"n": 5, "t": 1.0})
    base = cache_key(*parts)
    for i in range(5):
        changed = list(parts)
        changed[i] = {"n": 6, "t": 1.0} if i == 4 else str(parts[i]) + "x"
        assert cache_key(*changed) != base  # type: ignore[arg-type]
    assert cache_key(*parts[:4], {"t": 1.0, "n": 5}) == base  # key order does not matter
    cache = ResponseCache(tmp_path)
    assert cache.get(base) is None
    cache.put(base, {"choices": []})
    assert cache.get(base) == {"choices": []}


def test_llm_responses_live_in_the_one_cache_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The response cache follows the models' cache rule, $XDG_CACHE_HOME included (it once had
    its own rule that ignored XDG_CACHE_HOME)."""
    from forenscope.models.cache import cache_dir

    monkeypatch.delenv("FORENSCOPE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ResponseCache().root == cache_dir() / "llm" == tmp_path / "xdg" / "forenscope" / "llm"
    monkeypatch.setenv("FORENSCOPE_CACHE_DIR", str(tmp_path / "own"))
    assert ResponseCache().root == tmp_path / "own" / "llm"


def test_redact_replaces_images_and_secrets() -> None:
    url = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8abc").decode()
    out = redact({"m": [{"url": url}, "token sk-1 here"], "n": 3}, ["sk-1"])
    assert out["m"][0]["url"].startswith("data:image/jpeg;base64,<redacted 5 bytes sha256=")
    assert out["m"][1] == "token *** here" and out["n"] == 3


def test_hybrid_evidence_and_agreement() -> None:
    from forenscope.mllm.hybrid import compare, evidence_texts, expert_tools
    from forenscope.types import Evidence, ExpertResult
    from forenscope.types.llm import Stage1Result

    def res(name: str, score: float | None, summary: str) -> ExpertResult:
        ev = [Evidence(kind=f"{name}.x", summary=summary)]
        return ExpertResult(
            expert=name,
            version="1",
            targets="both",
            score=score,
            abstain_reason=None if score is not None else "too small",
            evidence=ev,
        )

    experts = [
        res("ela", 0.2, "ELA flat"),
        res("noise", 0.9, "noise mismatch upper left"),
        res("exif", None, "no EXIF"),
    ]
    assert evidence_texts(experts) == [
        "noise (score 0.90): noise mismatch upper left",
        "ela (score 0.20): ELA flat",
    ]
    s1 = Stage1Result(status="ok", probability=0.8, method="votes", prompt_version="v", model="m")
    agree = {a.expert: a.agrees for a in compare(s1, experts)}
    assert agree == {"ela": False, "noise": True}
    none = Stage1Result(status="refused", method="votes", prompt_version="v", model="m")
    assert compare(none, experts) == []
    tools = expert_tools(["ela"])
    assert tools[0]["type"] == "function" and tools[0]["function"]["name"] == "expert_ela"
