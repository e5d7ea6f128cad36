"""Result models are frozen: a result is built once, and no later step can change what another
step already read (issue 14). A new model that mutates, or a producer that assigns to a field,
fails here or in mypy."""

from __future__ import annotations

import importlib
import inspect

import pytest
from pydantic import BaseModel, ValidationError

import forenscope
from abuse_fixtures import small_jpeg
from forenscope.io import load_image
from forenscope.types.llm import Usage

TYPE_MODULES = ["common", "faces", "llm", "report", "video"]


def _result_models() -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}
    for name in TYPE_MODULES:
        module = importlib.import_module(f"forenscope.types.{name}")
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseModel)
                and obj.__module__ == module.__name__
                and obj.model_fields
            ):
                found[obj.__qualname__] = obj
    return list(found.values())


def test_every_result_model_is_found() -> None:
    names = {m.__name__ for m in _result_models()}
    assert {"Report", "ExpertResult", "Stage1Result", "FaceReport", "VideoReport"} <= names
    assert len(names) >= 30


@pytest.mark.parametrize("model", _result_models(), ids=lambda m: m.__name__)
def test_assigning_a_field_raises(model: type[BaseModel]) -> None:
    assert model.model_config.get("frozen") is True
    instance = model.model_construct()
    field = next(iter(model.model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(instance, field, None)


def test_a_report_from_the_pipeline_cannot_be_changed_afterwards() -> None:
    report = forenscope.analyze(small_jpeg(3), experts=["ela", "exif"])
    assert report.explanation and report.timings["total_s"] >= report.timings["decode_s"]
    for target, field in [(report, "explanation"), (report, "llm"), (report.verdict, "label"),
                          (report.experts[0], "score"), (report.image, "path")]:  # fmt: skip
        with pytest.raises(ValidationError, match="frozen"):
            setattr(target, field, None)
    copy = report.model_copy(update={"explanation": "changed"})
    assert copy.explanation == "changed" and report.explanation != "changed"


def test_usage_totals_are_new_values() -> None:
    a = Usage(prompt_tokens=3, completion_tokens=1, calls=1)
    b = Usage(prompt_tokens=5, calls=1, cached_calls=1, cost_usd=0.25)
    total = a + b
    assert total == Usage(prompt_tokens=8, completion_tokens=1, calls=2, cached_calls=1,
                          cost_usd=0.25)  # fmt: skip
    assert a == Usage(prompt_tokens=3, completion_tokens=1, calls=1)  # the parts are unchanged
    assert (a + a).cost_usd is None and (b + b).cost_usd == 0.5
    assert sum([a, b, b], Usage()) == Usage(prompt_tokens=13, completion_tokens=1, calls=3,
                                            cached_calls=2, cost_usd=0.5)  # fmt: skip


def test_loaded_images_stay_usable_for_a_second_analysis() -> None:
    """Frozen results share their inputs' lists safely: analysing the same decoded image twice
    gives equal reports (nothing from the first run leaked into the second)."""
    from forenscope.pipeline import analyze_image

    image = load_image(small_jpeg(5))
    one = analyze_image(image, experts=["ela"], threads=1)
    two = analyze_image(image, experts=["ela"], threads=1)
    assert one.model_dump(exclude={"timings", "experts"}) == two.model_dump(
        exclude={"timings", "experts"}
    )
    assert [e.score for e in one.experts] == [e.score for e in two.experts]
