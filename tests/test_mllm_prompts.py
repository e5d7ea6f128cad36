"""The prompt library is pinned: any change to a rendered text must come with a new version."""

from __future__ import annotations

import hashlib

import pytest

from forenscope.mllm.prompts import (
    STAGE1_QUESTION,
    FivePart,
    stage1_prompt,
    stage2_prompt,
    stage2_response_format,
)
from forenscope.mllm.types import Stage2Answer

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
    with pytest.raises(ValueError, match="1..5"):
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
