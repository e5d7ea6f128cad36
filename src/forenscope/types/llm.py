"""Result models of the MLLM stages (attached to the Report by the pipeline)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from .common import ErrorInfo, _Model

MLLMMethod = Literal["gan", "diffusion", "other", "unknown"]
MLLMScope = Literal["global", "local"]
VoteLabel = Literal["yes", "no", "refusal"]


class Location(_Model):
    """Where the forgery is: in words (relative to objects, absolute in the frame) and a box."""

    relative: str = Field(default="", description="relative to objects, e.g. 'above the crowd'")
    absolute: str = Field(default="", description="in the frame, e.g. 'centre, slightly right'")
    box: list[float] | None = Field(
        default=None, description="[x0, y0, x1, y1] as shares of width/height, in [0, 1]"
    )

    @field_validator("box")
    @classmethod
    def _check_box(cls, box: list[float] | None) -> list[float] | None:
        if box is None:
            return None
        if len(box) != 4 or not all(0.0 <= v <= 1.0 for v in box):
            raise ValueError("box must be 4 numbers in [0, 1]")
        if box[0] > box[2] or box[1] > box[3]:
            raise ValueError("box must satisfy x0 <= x1 and y0 <= y1")
        return box


class Stage2Answer(_Model):
    """The structured stage-2 analysis the LLM is asked to return (seed 000's four items)."""

    location: Location
    forged_content: str
    visible_traces: list[str] = Field(default_factory=list)
    method: MLLMMethod = "unknown"
    scope: MLLMScope
    reasoning: str = ""
    cited_evidence: list[str] = Field(
        default_factory=list, description="ids of the expert evidence items used, e.g. 'E2'"
    )


class Usage(_Model):
    """Tokens reported by the endpoint (`usage`), and a cost when prices are configured."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached_calls: int = 0
    cost_usd: float | None = None

    def __add__(self, other: Usage) -> Usage:
        """The two together, as a new Usage (the cost stays None until one side has a cost)."""
        cost = self.cost_usd if other.cost_usd is None else (self.cost_usd or 0.0) + other.cost_usd
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
            cached_calls=self.cached_calls + other.cached_calls,
            cost_usd=cost,
        )


class Stage1Answer(_Model):
    """One answer of stage 1: the raw text and how it was read."""

    text: str
    label: VoteLabel
    refusal_reason: str | None = None
    yes_probability: float | None = Field(
        default=None, description="from token log-probs of this answer, when returned"
    )


class Stage1Result(_Model):
    """Stage 1 (detect): probability that the image is AI-generated or tampered.

    `probability` is None when nothing usable came back (all refusals, or an error). Refusals
    are counted and never turned into votes.
    """

    status: Literal["ok", "refused", "error"]
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    method: Literal["votes", "logprobs"] = Field(description="the scoring that produced P")
    scoring: Literal["votes", "logprobs", "auto"] = Field(
        default="votes", description="the scoring asked for (auto = log-probs where claimed)"
    )
    answers_requested: int = Field(default=0, description="answers asked for (n, or 1)")
    answers_received: int = Field(default=0, description="answers that came back")
    votes: int = Field(default=0, description="yes + no answers")
    yes: int = 0
    no: int = 0
    refusals: int = 0
    failed_samples: int = 0
    samples: list[Stage1Answer] = Field(default_factory=list)
    raw: list[str] = Field(default_factory=list, description="raw answer texts, in order")
    prompt_version: str
    model: str
    k_shot: int = 0
    example_ids: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    notes: list[str] = Field(default_factory=list)
    error: ErrorInfo | None = None


class Stage2Result(_Model):
    """Stage 2 (analyse): the structured answer, or the raw text marked as unusable."""

    status: Literal["ok", "unparseable", "refused", "error"]
    answer: Stage2Answer | None = None
    raw: str = ""
    parsed: dict[str, Any] | None = Field(
        default=None, description="the JSON object found, even when it failed the schema"
    )
    problem: str | None = Field(default=None, description="why the answer is not 'ok'")
    evidence_shown: list[str] = Field(default_factory=list)
    prompt_version: str
    model: str
    usage: Usage = Field(default_factory=Usage)
    error: ErrorInfo | None = None


class ImageRun(_Model):
    """Both stages for one image of a batch: every image ends with a verdict, a refusal or a
    recorded error, never silently dropped."""

    path: str
    stage1: Stage1Result | None = None
    stage2: Stage2Result | None = None
    error: ErrorInfo | None = Field(default=None, description="input errors (unreadable file)")


class ToolCall(_Model):
    """One expert the LLM called as a tool, and the summary it got back."""

    name: str
    result: dict[str, Any]


class Agreement(_Model):
    """Whether one judged expert sides with the LLM's stage-1 answer."""

    expert: str
    expert_score: float
    llm_probability: float
    agrees: bool = Field(description="both on the same side of 0.5")


class EvidenceItem(_Model):
    """One line of grounding shown to the LLM in stage 2, with the id it can cite."""

    id: str = Field(description="'E1', 'E2', ... or, for tool results, the expert name")
    text: str
    source: Literal["expert", "region", "tool"]
    expert: str | None = Field(default=None, description="the expert that produced it")


VerdictAgreement = Literal["agree", "disagree", "no_llm_answer", "experts_undecided"]


class LLMAssessment(_Model):
    """The MLLM stages run on one analysed image, compared with the experts.

    The experts' verdict is never replaced: this records what the LLM said, where it agrees or
    disagrees with each expert, which evidence it was shown and which ids it cited.
    """

    model: str
    flavor: str
    prompt_versions: dict[str, str] = Field(description="stage -> prompt version")
    stage1: Stage1Result
    stage2: Stage2Result | None = None
    stage2_skipped: str | None = Field(default=None, description="why stage 2 did not run")
    verdict_agreement: VerdictAgreement = Field(
        description="the LLM's yes/no against the experts' label (real vs not real)"
    )
    agreement: list[Agreement] = Field(default_factory=list)
    evidence_shown: list[EvidenceItem] = Field(default_factory=list)
    cited_evidence: list[EvidenceItem] = Field(default_factory=list)
    unknown_citations: list[str] = Field(
        default_factory=list, description="ids the LLM cited that it was never shown"
    )
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
