"""Stage-1 answers scored against a hand-labelled corpus (tests/mllm_fixtures/answers/): every
item must be read right, or be listed in XFAIL with the reason it is not yet."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from forenscope.mllm.answers import answer_class, classify_answer, parse_yes_no, strip_reasoning
from forenscope.mllm.parsing import parse_yes_no as parse_yes_no_reexported
from forenscope.mllm.scoring import vote_probability

CORPUS = Path(__file__).parent / "mllm_fixtures" / "answers" / "yes_no_corpus.jsonl"
ITEMS: list[dict[str, Any]] = [
    json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()
]
# text -> why the parser does not read it yet (an empty dict: every item is read right)
XFAIL: dict[str, str] = {}
LABELS = ("yes", "no", "refusal", "undetermined")


def test_the_corpus_is_big_varied_and_well_formed() -> None:
    assert len(ITEMS) >= 60
    assert all(set(i) == {"text", "label", "lang", "why", "set"} for i in ITEMS)
    assert all(i["label"] in LABELS for i in ITEMS)
    labels, langs = Counter(i["label"] for i in ITEMS), Counter(i["lang"] for i in ITEMS)
    assert min(labels.values()) >= 10 and set(labels) == set(LABELS)
    assert {"zh", "es", "de", "json"} <= set(langs)
    assert sum("<think>" in i["text"] for i in ITEMS) >= 5
    assert len({i["text"] for i in ITEMS}) == len(ITEMS), "duplicate texts"
    assert set(XFAIL) <= {i["text"] for i in ITEMS}


@pytest.mark.parametrize("item", ITEMS, ids=[f"{i['lang']}-{n}" for n, i in enumerate(ITEMS)])
def test_each_answer_is_read_as_labelled(item: dict[str, Any]) -> None:
    if item["text"] in XFAIL:
        pytest.xfail(XFAIL[item["text"]])
    label, reason = classify_answer(item["text"])
    assert label == item["label"], (item["text"], reason, item["why"])
    vote, why = parse_yes_no(item["text"])  # the vote view agrees with the four-way one
    assert answer_class(vote, why) == label


def test_corpus_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    """The figure to report: share of the corpus read right (four classes, and as votes)."""
    right = sum(classify_answer(i["text"])[0] == i["label"] for i in ITEMS)

    def vote(label: str) -> str:
        return label if label in ("yes", "no") else "not a vote"

    votes_right = sum(vote(classify_answer(i["text"])[0]) == vote(i["label"]) for i in ITEMS)
    with capsys.disabled():
        print(
            f"\nanswer corpus: {right}/{len(ITEMS)} four-way, {votes_right}/{len(ITEMS)} as votes"
        )
    assert right == len(ITEMS) - len(XFAIL)


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # the four misreadings reported in issue 12
        ("No, I can't determine whether this image has been tampered with.", "undetermined"),
        ("There is no doubt that this image is AI-generated.", "yes"),
        ("<think>Is it yes or no? The shadows disagree.</think> Yes", "yes"),
        ("The image appears to be AI-generated.", "yes"),
    ],
)
def test_the_reported_misreadings(text: str, expected: str) -> None:
    assert classify_answer(text)[0] == expected


def test_reasons_say_which_kind_of_non_vote() -> None:
    assert classify_answer("") == ("refusal", "empty")
    assert classify_answer("I'm sorry, I can't help with that.") == ("refusal", "policy")
    assert classify_answer("It may or may not be edited.") == ("undetermined", "conflicting")
    assert classify_answer("<think>The lighting") == ("undetermined", "unfinished_reasoning")
    assert classify_answer("A cat on a sofa.") == ("undetermined", "non_answer")
    assert classify_answer("Hard to say.") == ("undetermined", "undetermined")
    assert parse_yes_no_reexported is parse_yes_no


def test_reasoning_blocks_are_dropped_and_unfinished_ones_noticed() -> None:
    assert strip_reasoning("<think>a</think>Yes")[0].strip() == "Yes"
    assert strip_reasoning("all the reasoning</think>\nNo")[0].strip() == "No"  # opening eaten
    assert strip_reasoning("<think>still going") == ("", True)
    assert strip_reasoning("<think>a</think>No")[1] is False


def test_non_votes_never_move_the_probability() -> None:
    answers = ["Yes", "No, I can't determine whether it is edited.", "The image looks real.",
               "I'm sorry, I can't help.", "<think>hmm"]  # fmt: skip
    labels = [parse_yes_no(a)[0] for a in answers]
    assert vote_probability(labels) == (0.5, 1, 1, 3)
