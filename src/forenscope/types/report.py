"""Result models shared by the Python API, the CLI (`--json`), the service and the evaluation.

One definition of every result shape. Arrays (heatmaps, masks) never go into JSON: they are kept
in memory on the model (excluded from serialisation) and written as PNG sidecars by the renderers.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from .common import BBox, ErrorInfo, Evidence, Label, _Model
from .faces import FaceReport
from .llm import LLMAssessment

SCHEMA_VERSION = "2.0"
"""2.0: `Verdict.label` may be "inconclusive"; `Verdict.leaning`, `Verdict.conflicts` and
`Report.analysis_config` added."""

Target = Literal["ai_generated", "tampered", "both"]
"""What an expert's score is evidence of."""

ExpertKind = Literal["signal", "provenance", "learned", "faces"]
Method = Literal["gan", "diffusion", "other", "unknown"]
Scope = Literal["global", "local", "none", "unknown"]
Outcome = Literal["real", "ai_generated", "tampered", "inconclusive"]
"""A verdict's label: one of the three classes, or "inconclusive" (needs review) when the
probability does not reach the decision threshold of its class or strong evidence conflicts."""

# A float32 array in [0, 1], shape (H, W); excluded from JSON and from the JSON schema.
HeatmapField = Annotated[
    SkipJsonSchema[np.ndarray[Any, Any] | None],
    Field(default=None, exclude=True, repr=False),
]


class ExpertSpec(_Model):
    """What an expert is, what it needs and where it comes from."""

    name: str
    version: str
    kind: ExpertKind
    targets: Target
    description: str
    inputs: list[str] = Field(default_factory=lambda: ["rgb"])
    licence: str = "Apache-2.0"
    produces_heatmap: bool = False
    requires: list[str] = Field(default_factory=list, description="optional Python modules")
    extra: str | None = Field(default=None, description="pip extra that provides `requires`")
    reference: str | None = None
    default: bool = Field(
        default=True,
        description="runs in the default analysis; comparison baselines run only when named",
    )


class ExpertResult(_Model):
    """The output of one expert on one image.

    `score` is in [0, 1] (higher = more likely manipulated/generated) or None when the expert
    cannot judge this image (`abstain_reason` says why). Abstaining experts never vote.
    """

    expert: str
    version: str
    targets: Target
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    confidence: float = Field(
        default=1.0, ge=0.0, le=1.0, description="how much the expert trusts its own score"
    )
    abstain_reason: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    heatmap: HeatmapField = None
    has_heatmap: bool = False
    elapsed_s: float = 0.0
    error: ErrorInfo | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def judged(self) -> bool:
        return self.score is not None and self.error is None


class ImageInfo(_Model):
    path: str | None = None
    sha256: str
    format: str
    width: int
    height: int
    mode: str
    bytes: int
    frames: int = 1
    bit_depth: int = 8
    orientation_applied: int | None = None
    notes: list[str] = Field(default_factory=list)


class Region(_Model):
    """A connected suspicious area of the fused mask, described in words."""

    id: int
    bbox: BBox
    bbox_relative: tuple[float, float, float, float] = Field(
        description="(x, y, width, height) as shares of the image width/height"
    )
    area_share: float = Field(ge=0.0, le=1.0, description="mask pixels / image pixels")
    relative_position: str = Field(description="e.g. 'upper-left quadrant'")
    size_words: str = Field(description="e.g. 'small (about 3% of the image)'")
    mean_score: float
    experts: list[str] = Field(default_factory=list, description="experts whose maps agree")
    on_face: str | None = Field(
        default=None, description="the facial part it covers, e.g. 'the left eye of face 1'"
    )
    description: str


class Attribution(_Model):
    method: Method = "unknown"
    scope: Scope = "unknown"
    basis: str = ""


class Verdict(_Model):
    label: Outcome
    probability: float = Field(
        ge=0.0, le=1.0, description="probability of `leaning`, the most probable class"
    )
    probabilities: dict[str, float] = Field(description="one probability per class, summing to 1")
    leaning: Label = Field(
        default="real",
        description="the most probable class; equals `label` unless the verdict is inconclusive",
    )
    decided_by: Literal["provenance", "experts", "none"] = "experts"
    calibrated: bool = Field(
        default=False,
        description="True when probabilities come from a model calibrated on held-out data",
    )
    conflicts: list[str] = Field(
        default_factory=list,
        description="strong evidence that contradicts the leading class, in words",
    )

    @property
    def decided(self) -> bool:
        return self.label != "inconclusive"


class Report(_Model):
    """Everything Forenscope says about one image."""

    schema_version: str = SCHEMA_VERSION
    forenscope_version: str
    analysis_config: dict[str, Any] = Field(
        default_factory=dict,
        description="the settings that decided this result: fusion and map modes, CLIP heads, "
        "experts and their versions, threshold, weights fingerprints (forenscope.config)",
    )
    image: ImageInfo
    verdict: Verdict
    attribution: Attribution
    regions: list[Region] = Field(default_factory=list)
    experts: list[ExpertResult] = Field(default_factory=list)
    key_evidence: list[Evidence] = Field(default_factory=list)
    explanation: str = ""
    fused_heatmap: HeatmapField = None
    fused_mask: HeatmapField = None
    faces: list[FaceReport] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="what could not be checked, and why")
    timings: dict[str, float] = Field(default_factory=dict)
    errors: list[ErrorInfo] = Field(default_factory=list)
    llm: LLMAssessment | None = Field(
        default=None,
        description="the optional MLLM stages, compared with the experts (None = offline run)",
    )


class FileFailure(_Model):
    """A batch entry that produced no report (the file could not be read or decoded)."""

    path: str
    error: ErrorInfo
