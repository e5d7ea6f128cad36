"""Result models of the face analysis (the lead adds `faces: list[FaceReport]` to the Report).

Coordinates are pixels of the (orientation-corrected) image. "Left" and "right" name the
person's own left and right, as anatomy does: the left eye of a face looking at the camera is on
the image's right. Every region says whether it follows a dense landmark mesh or was only
estimated from a box and a few keypoints (`approximate`).
"""

from __future__ import annotations

from pydantic import Field

from .common import BBox, Evidence, _Model

Point = tuple[float, float]


class FaceBox(_Model):
    """One detected face: its box, the detector's confidence and its landmarks."""

    bbox: BBox
    score: float | None = Field(
        default=None, ge=0.0, le=1.0, description="detector confidence (None: cascade)"
    )
    detector: str = Field(description="detector backend, e.g. 'mediapipe-blazeface+mesh'")
    keypoints: dict[str, Point] = Field(
        default_factory=dict, description="named keypoints, e.g. 'left_eye', 'nose_tip'"
    )
    landmark_count: int = Field(default=0, description="dense landmarks used (468 for the mesh)")
    roll_degrees: float = Field(default=0.0, description="in-plane rotation of the eye line")


class FaceRegion(_Model):
    """A named part of one face (or of its immediate surroundings)."""

    name: str = Field(description="e.g. 'left eye', 'jaw line', 'background near the face'")
    polygon: list[Point] = Field(description="outline in image pixels, closed implicitly")
    bbox: BBox
    approximate: bool = Field(
        description="True when estimated from a box and a few keypoints, not a landmark mesh"
    )


class FaceCheck(_Model):
    """One per-face check (an expert's verdict on this face)."""

    expert: str
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    abstain_reason: str | None = None
    evidence: list[Evidence] = Field(default_factory=list)


class FaceReport(_Model):
    """Everything Forenscope says about one face."""

    index: int = Field(ge=1, description="1-based, faces numbered left to right")
    face: FaceBox
    regions: list[FaceRegion] = Field(default_factory=list)
    checks: list[FaceCheck] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def label(self) -> str:
        return f"face {self.index}"
