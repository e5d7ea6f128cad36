"""The per-sample record of an evaluation: built by the runner (or the LLM system), journaled as
one JSON line, summarised and reported. One typed model instead of a dict every module spells.

The journal line is the model's JSON plus `"type": "sample"`, key for key what the runner wrote
as a dict before (fields added since have defaults), so journals of earlier runs still resume.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Explanation(BaseModel):
    """Stage 2 on one forged image (LLM systems with `--stage2`): its status, usage and every
    explanation metric (`explanations.explanation_record`); None where one does not apply."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    status: str
    usage: dict[str, Any] | None = None
    frame_position: float | None = None
    box_iou: float | None = None
    field_completeness: float | None = None
    flesch_reading_ease: float | None = None
    method: str | None = None
    scope: str | None = None
    judge: dict[str, float] | None = Field(
        default=None, description="scores of a judge hook (explanation_record's `judge`)"
    )
    judged: bool = Field(
        default=False, description="the LLM judge was asked about the object-relative position"
    )
    object_position: int | None = Field(
        default=None, description="1/0: the judge says the answer does (not) locate the region"
    )
    judge_refusal: str | None = Field(
        default=None, description="why the judge gave no verdict (the yes/no parser's reason)"
    )
    judge_error: str | None = None
    judge_answer: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _judged_before_the_flag(cls, data: Any) -> Any:
        # Lines journaled before the `judged` flag: a judged answer had `object_position`.
        if isinstance(data, dict) and "judged" not in data and "object_position" in data:
            return {**data, "judged": True}
        return data


class Localization(BaseModel):
    """A forged image's localization numbers against its mask (`metrics.localization_record`;
    the map itself is not kept). Journaled under the metric names, e.g. `f1@fixed`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    f1_fixed: float = Field(alias="f1@fixed")
    iou_fixed: float = Field(alias="iou@fixed")
    mcc_fixed: float = Field(alias="mcc@fixed")
    f1_oracle_per_image: float = Field(alias="f1@best_thr_per_image (oracle)")
    pixel_auc: float | None = Field(default=None, description="None when the mask is one class")
    hist_pos: list[int] = Field(description="map values of forged pixels, 100 bins of [0, 1]")
    hist_neg: list[int] = Field(description="map values of clean pixels, 100 bins of [0, 1]")

    def metrics(self) -> dict[str, Any]:
        """Under the metric names, as `metrics.localization_summary` reads them."""
        return self.model_dump(by_alias=True)


class SampleRecord(BaseModel):
    """One sample of a run: its manifest row, what the system answered, and the scores."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    key: str
    path: str
    label: str
    generator: str
    family: str
    scope: str
    source: str
    format: str
    sha256_expected: str | None = None
    sha256_seen: str | None = None
    fake_probability: float | None = Field(default=None, description="P(not real), if scored")
    scores: dict[str, float] | None = Field(default=None, description="per-label probabilities")
    pred_label: str | None = None
    attribution: str | None = None
    refusal: str | None = None
    error: str | None = None
    usage: dict[str, Any] | None = None
    loc: Localization | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="system-specific values")
    elapsed_s: float | None = None
    explanation: Explanation | None = None

    @property
    def unscored(self) -> bool:
        """No score: a refusal or an error says why."""
        return self.fake_probability is None

    def journal_line(self) -> dict[str, Any]:
        """The journal's JSON object for this record."""
        return {"type": "sample", **self.model_dump(mode="json", by_alias=True)}

    @classmethod
    def from_journal(cls, line: dict[str, Any]) -> SampleRecord:
        """A record from a journal line (raises pydantic's ValidationError on a bad one)."""
        return cls.model_validate({k: v for k, v in line.items() if k != "type"})


def run_samples(run_record: dict[str, Any]) -> list[SampleRecord]:
    """The typed records of a run record (`run.json`, or what `evaluate` returns)."""
    return [SampleRecord.model_validate(s) for s in run_record.get("samples") or []]
