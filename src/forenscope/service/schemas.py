"""HTTP request/response models. Reports are the library's own `Report` type, unchanged."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..types import ExpertSpec, Report, VideoReport
from .stages import Stages


def upload_body(
    field: str, *, many: bool = False, params: bool = False, json_model: str | None = None
) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads its own body (`openapi_extra`): multipart
    with the image in `field` (several when `many`), the analysis parameters `experts` and
    `threshold` when `params`, and JSON described by the component `json_model` as the other
    form."""
    binary: dict[str, Any] = {"type": "string", "format": "binary"}
    properties: dict[str, Any] = {field: {"type": "array", "items": binary} if many else binary}
    if params:
        properties["experts"] = {"type": "string", "description": "comma-separated expert names"}
        properties["threshold"] = {"type": "number", "minimum": 0, "maximum": 1}
    if params and many:
        properties["reuse"] = {
            "type": "boolean", "description": "a file analysed before with the same parameters "
            "is not analysed again: its item is done at once with that analysis (reused)",
        }  # fmt: skip
    schema = {"type": "object", "required": [field], "properties": properties}
    content: dict[str, Any] = {"multipart/form-data": {"schema": schema}}
    if json_model is not None:
        content["application/json"] = {"schema": {"$ref": f"#/components/schemas/{json_model}"}}
    return {"requestBody": {"required": True, "content": content}}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnalyzeUrlRequest(_Model):
    url: str = Field(max_length=2048, description="http(s) URL of the image; fetched SSRF-safely")
    experts: list[str] | None = Field(default=None, description="default: the server's set")
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class AnalysisLinks(_Model):
    self: str
    report_json: str
    report_html: str = Field(description="for a clip: the timeline report")
    image: str | None = Field(description="re-encoded preview of an image; None for a clip")
    mask: str | None = Field(description="fused mask PNG (255 inside), when there is a map")
    overlays: dict[str, str] = Field(
        description="colour-mapped RGBA overlays: one per expert with a map, plus 'fused' and "
        "'mask' (outline) when the fused map exists"
    )


class AnalysisSummary(_Model):
    id: str
    created_at: str
    filename: str | None
    source: Literal["upload", "url", "batch"]
    url: str | None = None
    sha256: str
    label: str
    probability: float
    decided_by: str
    width: int
    height: int
    job_id: str | None = None
    kind: Literal["image", "clip"] = Field(
        default="image",
        description="a video clip's label is its clip verdict (real, ai_generated, edited or "
        "inconclusive), not calibrated yet (its report says calibrated: false)",
    )


class Analysis(AnalysisSummary):
    cached: bool = Field(default=False, description="the report was reused for identical bytes")
    links: AnalysisLinks
    report: Report | VideoReport = Field(description="a VideoReport when kind is 'clip'")


class AnalysisPage(_Model):
    items: list[AnalysisSummary]
    total: int
    limit: int
    offset: int


class JobRequest(_Model):
    urls: list[str] = Field(min_length=1, max_length=100)
    experts: list[str] | None = None
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)


class JobItem(_Model):
    index: int
    name: str | None
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    analysis_id: str | None = None
    error: str | None = None
    sha256: str | None = Field(
        default=None, description="of an uploaded file, computed by the server on upload"
    )
    reused: bool = Field(
        default=False,
        description="done with an earlier analysis of the same bytes and parameters (asked "
        "for with 'reuse'); no new history entry was made",
    )
    kind: Literal["image", "clip"] | None = Field(default=None, description="once done")
    label: str | None = Field(default=None, description="once done: the (clip) verdict")
    probability: float | None = None
    calibrated: bool | None = Field(
        default=None, description="False for a clip: the clip verdict is not calibrated yet"
    )
    stages: Stages | None = Field(
        default=None,
        description="while running: the results so far (metadata, each expert as it finishes, "
        "the verdict, the maps written); poll the job to follow them",
    )


class Job(_Model):
    id: str
    status: Literal["queued", "running", "done", "cancelled"]
    created_at: str
    updated_at: str
    total: int
    done: int
    failed: int
    items: list[JobItem]


class ChatRequest(_Model):
    message: str = Field(min_length=1, max_length=4000)


class ChatMessage(_Model):
    role: Literal["user", "assistant"]
    content: str
    created_at: str


class ChatReply(_Model):
    reply: str
    messages: list[ChatMessage]


class ExpertInfo(_Model):
    spec: ExpertSpec
    available: bool
    unavailable_reason: str | None = None


class Health(_Model):
    status: Literal["ok"] = "ok"
    version: str
    auth_required: bool
    llm_configured: bool


class ModelList(_Model):
    models: list[dict[str, Any]]


class ErrorBody(_Model):
    detail: str | list[dict[str, Any]] = Field(
        description="what went wrong; a list of field errors for request validation failures"
    )
