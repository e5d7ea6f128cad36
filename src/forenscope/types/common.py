"""The small models every other result model uses (Evidence, BBox, ErrorInfo, Label)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Label = Literal["real", "ai_generated", "tampered"]
"""`ai_generated` = the whole image was synthesised; `tampered` = a real photo, locally edited."""


class _Model(BaseModel):
    """The base of every result model. Frozen: a result is built once from computed values
    (a later step makes a new one with `model_copy(update=...)`), so no step can change what
    another step already read."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)


class ErrorInfo(_Model):
    type: str
    message: str


class BBox(_Model):
    """An axis-aligned box in pixels of the (orientation-corrected) image."""

    x: int = Field(ge=0, description="left column")
    y: int = Field(ge=0, description="top row")
    width: int = Field(ge=0)
    height: int = Field(ge=0)


class Evidence(_Model):
    """One fact a person can check, produced by an expert."""

    kind: str = Field(description="short machine id, e.g. 'ela.hotspot', 'exif.software'")
    summary: str = Field(description="one sentence a person can verify")
    value: float | int | str | bool | None = None
    bbox: BBox | None = None
    proves: Label | None = Field(
        default=None,
        description="set when this evidence on its own proves the label (e.g. a C2PA AI claim)",
    )
