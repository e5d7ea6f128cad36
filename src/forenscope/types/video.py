"""Result models of a video analysis: the clip, the sampled frames, the temporal findings, the
face tracks and the clip verdict. A sampled frame keeps its full image `Report`, so every map,
region and piece of evidence of a frame is the one the image analysis produced."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import BBox, ErrorInfo, Evidence, Label, _Model
from .llm import Stage2Result
from .report import HeatmapField, Outcome, Report

VIDEO_SCHEMA_VERSION = "0.1"
"""0.1: first video report (issue 17); the clip verdict is an uncalibrated aggregation."""

SampleReason = Literal["uniform", "scene_cut"]
TemporalKind = Literal[
    "local_span",
    "local_change",
    "flicker",
    "warp_residual",
    "face_flicker",
    "face_change",
    "interpolation",
    "reencoded",
]


class ClipInfo(_Model):
    """What the container says about the clip, read before any frame is decoded."""

    path: str | None = None
    sha256: str
    bytes: int
    container: str = Field(description="the demuxer, e.g. 'mov,mp4,m4a,3gp,3g2,mj2', 'gif'")
    codec: str = Field(description="video codec, e.g. 'h264', 'gif', 'webp'")
    width: int
    height: int
    fps: float = Field(description="average frame rate (frames / duration for GIF and WebP)")
    duration_s: float
    frames: int = Field(description="frames decoded in the dense pass")
    streams: int = Field(description="streams of every kind in the container")
    audio_streams: int = 0
    tags: dict[str, str] = Field(
        default_factory=dict, description="container and video-stream tags (encoder, handler...)"
    )
    notes: list[str] = Field(default_factory=list)


class FrameResult(_Model):
    """One sampled frame: where it sits in time, why it was picked, and its image Report."""

    index: int = Field(ge=0, description="0-based frame number in decoding order")
    time_s: float
    reason: SampleReason
    analysed_width: int
    analysed_height: int
    report: Report
    rgb: HeatmapField = None  # the analysed frame (uint8, H x W x 3), in memory only


class TemporalFinding(_Model):
    """One fact about time, said where and when in words ("face 1, frames 12-40 (0.5-1.7 s):
    the outline flickers against the background")."""

    kind: TemporalKind
    summary: str
    frame_start: int = Field(ge=0)
    frame_end: int = Field(ge=0, description="inclusive")
    time_start_s: float
    time_end_s: float
    bbox: BBox | None = Field(default=None, description="in pixels of the clip's frame size")
    strength: float = Field(ge=0.0, description="how far over its threshold (1 = at threshold)")
    face_track: int | None = None
    suggests: Label | None = Field(
        default=None, description="the class this finding is evidence of, if any"
    )


class BlinkRate(_Model):
    """Blinks of one face track: the eye aspect ratio (EAR) of the face mesh on frames sampled
    densely over the track's time span (a blink closes the eye for about 100-400 ms)."""

    blinks: int | None = Field(description="blinks counted; None when not measured")
    per_minute: float | None = Field(
        default=None, description="None when not measured or the span is too short for a rate"
    )
    span_s: float = Field(description="seconds of the track's span that were measured")
    sampled_fps: float = Field(description="frames measured per second of the span")
    frames: list[int] = Field(default_factory=list, description="frames measured")
    ear: list[float | None] = Field(
        default_factory=list, description="mean EAR of both eyes per measured frame"
    )
    blink_spans: list[tuple[int, int]] = Field(
        default_factory=list, description="first and last closed frame of each blink"
    )
    note: str = Field(default="", description="what limits the count, in words")


class FaceTrack(_Model):
    """One face followed across the sampled frames (boxes linked by overlap)."""

    id: int = Field(ge=1)
    frames: list[int] = Field(description="sampled frame numbers where the face was found")
    boxes: list[BBox]
    check_scores: dict[str, list[float | None]] = Field(
        default_factory=dict, description="per face check, its score on each frame of the track"
    )
    mean_scores: dict[str, float] = Field(default_factory=dict)
    summary: str = ""
    blink: BlinkRate | None = None


class ClipVerdict(_Model):
    """The clip's outcome: an aggregation of the frame verdicts and the temporal evidence."""

    label: Outcome
    leaning: Label
    probability: float = Field(ge=0.0, le=1.0, description="mean frame probability of `leaning`")
    probabilities: dict[str, float]
    frame_labels: dict[str, int] = Field(description="sampled frames per frame outcome")
    decided_by: Literal["provenance", "frames", "none"] = "frames"
    calibrated: bool = Field(
        default=False, description="always False: no clip-level calibration exists yet"
    )
    basis: str = Field(description="the rule that gave the label, in words")
    conflicts: list[str] = Field(default_factory=list)


class ClipLLM(_Model):
    """Stage 2 of the LLM tier on a clip: its keyframes as one numbered sheet, with the clip
    verdict, frame evidence, temporal findings (their frames and seconds) and face tracks as
    the E-lines it can cite. The clip verdict is never replaced by it."""

    model: str
    keyframes: list[int] = Field(description="frame numbers on the sheet, panel 1 first")
    evidence_shown: list[str] = Field(description="the E-lines, E1 first")
    stage2: Stage2Result
    cited_evidence: list[str] = Field(default_factory=list, description="ids shown and cited")
    unknown_citations: list[str] = Field(
        default_factory=list, description="ids the LLM cited that it was never shown"
    )


class VideoReport(_Model):
    """Everything Forenscope says about one clip."""

    schema_version: str = VIDEO_SCHEMA_VERSION
    forenscope_version: str
    analysis_config: dict[str, Any] = Field(default_factory=dict)
    clip: ClipInfo
    verdict: ClipVerdict
    frames: list[FrameResult] = Field(default_factory=list)
    scene_cuts: list[int] = Field(default_factory=list, description="first frame of each new shot")
    temporal: list[TemporalFinding] = Field(default_factory=list)
    face_tracks: list[FaceTrack] = Field(default_factory=list)
    provenance: list[Evidence] = Field(default_factory=list)
    llm: ClipLLM | None = None
    explanation: str = ""
    notes: list[str] = Field(default_factory=list, description="what could not be checked, and why")
    timings: dict[str, float] = Field(default_factory=dict)
    errors: list[ErrorInfo] = Field(default_factory=list)
