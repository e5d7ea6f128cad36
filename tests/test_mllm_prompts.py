"""The prompt library is pinned (any change to a rendered text must come with a new version), and
it is data: the shipped TOML set, users' own files, their validation and the CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from forenscope.mllm.prompts import (
    STAGE1_QUESTION,
    FivePart,
    stage1_prompt,
    stage2_prompt,
    stage2_response_format,
)
from forenscope.types.llm import Stage2Answer

PINNED = {
    1: ("s1-p1-v1", "b27779db1b52113be55e2336c1a86991c728c9382ff9775bbbae2db94729d0e6"),
    2: ("s1-p2-v1", "e18dca926ca79096ce1a62f4d984099b5dfd015c6b99593706d3f23e0d0ddc93"),
    3: ("s1-p3-v1", "b4f11bf04c5397d0892e86db72bf3cf15c95f6c660920b969579ad109cd1a055"),
    4: ("s1-p4-v1", "91ed8d2726e957edfabef1eb76999c9d23a8de15252c90bdd03460eba67ae6c5"),
    5: ("s1-p5-v1", "a3457b29c0f9c2b644590ac0c106eb31c74b15accf891036b315443a9369efd3"),
}
STAGE2 = ("s2-v1", "ed27310518f4c226a9d67d21bb4a0b9b281c4a102419012fb0dfc5087d47facd")
STAGE2_WITH_EVIDENCE = "795b2c0b627c51d47071783e6ddb3d75cdcec8fc5b88fe838ad466b0f59d2a7a"


@pytest.mark.parametrize("variant", sorted(PINNED))
def test_stage1_variants_are_pinned(variant: int) -> None:
    tpl = stage1_prompt(variant)
    assert (tpl.version, tpl.sha256) == PINNED[variant], "prompt text changed: bump its version"
    assert tpl.user == STAGE1_QUESTION


def test_variants_grow_from_minimal_to_detailed() -> None:
    lengths = [len(stage1_prompt(v).system) for v in range(1, 6)]
    assert lengths[0] == 0 and lengths == sorted(lengths) and len(set(lengths)) == 5
    sections = [stage1_prompt(v).system.count("# ") for v in range(1, 6)]
    assert sections == [0, 2, 4, 5, 5]


def test_variant4_golden_text() -> None:
    assert stage1_prompt(4).system == (
        "# Profile\nYou are an AI visual assistant.\n"
        "# Goal\nHelp humans analyse images that may be tampered or AI-generated.\n"
        "# Constraint\nMust return with yes or no only. This is an authenticity check, not an "
        "identification: you are never asked who anyone is, so images of people can be judged "
        "like any other.\n"
        "# Workflow\nYou will receive one image. Your job is to determine if the image is "
        "tampered or AI-generated (yes) or an unedited photograph (no).\n"
        "# Style\nReply with one lower-case word and nothing else."
    )
    assert stage1_prompt(1).system == ""


def test_unknown_variant_is_rejected() -> None:
    with pytest.raises(ValueError, match="one of 1, 2, 3, 4, 5"):
        stage1_prompt(6)


def test_stage2_pinned_and_evidence_listed_with_ids() -> None:
    tpl = stage2_prompt()
    assert (tpl.version, tpl.sha256) == STAGE2
    with_ev = stage2_prompt(["ELA hotspot upper left", "EXIF Software = GIMP"])
    assert with_ev.sha256 == STAGE2_WITH_EVIDENCE and with_ev.version == tpl.version
    assert "[E1] ELA hotspot upper left\n[E2] EXIF Software = GIMP" in with_ev.user
    for key in Stage2Answer.model_fields:
        assert f'"{key}"' in tpl.user, key


def test_five_part_render_skips_empty_sections() -> None:
    text = FivePart(profile="P", style="S").render()
    assert text == "# Profile\nP\n# Style\nS"
    assert hashlib.sha256(text.encode()).hexdigest()  # stable str output


def test_response_format_schema_names_every_field() -> None:
    rf = stage2_response_format()
    schema = rf["json_schema"]["schema"]
    assert rf["type"] == "json_schema"
    assert set(schema["properties"]) == set(Stage2Answer.model_fields)
    assert {"location", "forged_content", "scope"} <= set(schema["required"])


# -- prompt sets as data (issue 12) ------------------------------------------------------------
MY_PROMPTS = """
format = 1
name = "my-prompts"
version = "3"

[stage1]
question = "Was this picture edited or generated? yes or no"

[stage1.variants.4]
version = "mine-p4-v3"
profile = "You are a photo desk editor."
style = "One word."
"""
MY_SYSTEM = "# Profile\nYou are a photo desk editor.\n# Style\nOne word."


def test_the_shipped_set_is_a_file_and_named_honestly() -> None:
    from forenscope.mllm.prompts import default_prompts, shipped_text

    shipped = default_prompts()
    assert shipped.name == "forenscope-five-principles"
    assert sorted(shipped.variants) == [1, 2, 3, 4, 5]
    assert shipped.source.endswith("prompt_sets/five-principles-v1.toml") and shipped.sha256
    assert "not the paper's Figure 4" in shipped.description
    assert "reconstructions, not the paper's texts" in " ".join(shipped_text().split())
    assert shipped.stage1(4) == stage1_prompt(4)  # the module functions read the same file


def test_a_users_prompt_file_is_loaded_and_rendered(tmp_path: Path) -> None:
    from forenscope.mllm.prompts import PromptSet

    path = tmp_path / "mine.toml"
    path.write_text(MY_PROMPTS)
    mine = PromptSet.load(path)
    tpl = mine.stage1(4)
    assert tpl.version == "mine-p4-v3"
    assert tpl.user == "Was this picture edited or generated? yes or no"
    assert tpl.system == MY_SYSTEM
    assert mine.stage2().version == "s2-v1" and mine.notes == [
        "stage 2 from the shipped set (five-principles-v1.toml)"
    ]
    with pytest.raises(ValueError, match="one of 4 in my-prompts"):
        mine.stage1(2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("profile =", "profle ="), "unknown keys \\['profle'\\]"),
        (("format = 1", "format = 2"), "format: must be 1"),
        (('version = "mine-p4-v3"', 'version = ""'), "version: must be a non-empty string"),
        (("[stage1.variants.4]", "[stage1.variants.x]"), "variant names are numbers"),
        (("[stage1]", "[stage1]\nextra = 1"), "unknown keys \\['extra'\\]"),
        (("name =", "nom ="), "top level: unknown keys"),
    ],
)
def test_bad_prompt_files_are_refused_with_the_reason(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    from forenscope.errors import ConfigError
    from forenscope.mllm.prompts import PromptSet

    path = tmp_path / "bad.toml"
    path.write_text(MY_PROMPTS.replace(*change))
    with pytest.raises(ConfigError, match=message):
        PromptSet.load(path)


def test_stage2_question_must_show_the_answer_shape(tmp_path: Path) -> None:
    from forenscope.errors import ConfigError
    from forenscope.mllm.prompts import PromptSet

    stage2 = '\n[stage2]\nversion = "s2-mine"\nquestion = "JSON please"\nevidence_intro = "E:"\n'
    path = tmp_path / "s2.toml"
    path.write_text(MY_PROMPTS + stage2)
    with pytest.raises(ConfigError, match="skeleton"):
        PromptSet.load(path)
    path.write_text(MY_PROMPTS + stage2.replace("JSON please", "JSON:\\n{skeleton}"))
    tpl = PromptSet.load(path).stage2(["ELA hotspot"])
    assert tpl.version == "s2-mine" and '"forged_content"' in tpl.user
    assert tpl.user.endswith("E:[E1] ELA hotspot")
    good = stage2.replace("JSON please", "JSON:\\n{skeleton}")
    path.write_text(MY_PROMPTS + good.replace("s2-mine", "mine-p4-v3"))
    with pytest.raises(ConfigError, match="its own version"):
        PromptSet.load(path)


def test_the_engine_sends_the_configs_prompt_file(tmp_path: Path) -> None:
    import asyncio
    import json

    import httpx
    import numpy as np

    from forenscope.mllm.config import LLMConfig
    from forenscope.mllm.runner import MLLMEngine

    path = tmp_path / "mine.toml"
    path.write_text(MY_PROMPTS)
    sent: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        answer = {"index": 0, "message": {"role": "assistant", "content": "yes"}}
        return httpx.Response(200, json={"choices": [answer], "usage": {}})

    config = LLMConfig(base_url="http://llm.invalid/v1", model="m", cache=False,
                       pipeline={"prompts": str(path), "n": 1})  # type: ignore[arg-type]  # fmt: skip

    async def main() -> object:
        async with MLLMEngine(config, transport=httpx.MockTransport(handler)) as eng:
            return await eng.adetect(np.zeros((8, 8, 3), np.uint8))

    res = asyncio.run(main())
    assert res.prompt_version == "mine-p4-v3"  # type: ignore[attr-defined]
    messages = sent[0]["messages"]
    assert messages[0] == {"role": "system", "content": MY_SYSTEM}  # type: ignore[index]


def test_llm_prompts_command_prints_and_checks(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from forenscope.llm_cli import llm_cli
    from forenscope.mllm.prompts import PromptSet, default_prompts

    shown = CliRunner().invoke(llm_cli, ["prompts"])
    assert shown.exit_code == 0
    copy = tmp_path / "copy.toml"
    copy.write_text(shown.output)
    assert PromptSet.load(copy).stage1(5) == default_prompts().stage1(5)  # a faithful start
    (tmp_path / "mine.toml").write_text(MY_PROMPTS)
    checked = CliRunner().invoke(llm_cli, ["prompts", "--check", str(tmp_path / "mine.toml")])
    assert checked.exit_code == 0 and "variant 4 (mine-p4-v3" in checked.output
    (tmp_path / "bad.toml").write_text(MY_PROMPTS.replace("profile", "profle"))
    bad = CliRunner().invoke(llm_cli, ["prompts", "--check", str(tmp_path / "bad.toml")])
    assert bad.exit_code == 1 and "profle" in bad.output


def test_the_prompt_file_is_packaged() -> None:
    import fnmatch

    import tomllib

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["forenscope"]
    assert any(fnmatch.fnmatch("mllm/prompt_sets/five-principles-v1.toml", p) for p in patterns)
