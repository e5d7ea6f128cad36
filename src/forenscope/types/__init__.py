"""Every result model, in one package that imports nothing else of Forenscope.

- `common`: the small shared models (Evidence, BBox, ErrorInfo, Label);
- `faces`: face boxes, regions, checks and per-face reports;
- `llm`: the MLLM stages' answers and the comparison with the experts;
- `report`: expert specs and results, the verdict, regions and the Report itself.

Import them from `forenscope.types`; the Python API, `--json`, the service and the evaluation
all use these one definitions.
"""

from __future__ import annotations

from .common import BBox, ErrorInfo, Evidence, Label
from .faces import FaceBox, FaceCheck, FaceRegion, FaceReport
from .llm import LLMAssessment, Stage1Result, Stage2Answer, Stage2Result
from .report import (
    SCHEMA_VERSION,
    Attribution,
    ExpertKind,
    ExpertResult,
    ExpertSpec,
    FileFailure,
    HeatmapField,
    ImageInfo,
    Method,
    Outcome,
    Region,
    Report,
    Scope,
    Target,
    Verdict,
)
from .video import (
    BlinkRate,
    ClipInfo,
    ClipLLM,
    ClipVerdict,
    FaceTrack,
    FrameResult,
    TemporalFinding,
    VideoReport,
)

__all__ = [
    "SCHEMA_VERSION",
    "Attribution",
    "BBox",
    "BlinkRate",
    "ClipInfo",
    "ClipLLM",
    "ClipVerdict",
    "ErrorInfo",
    "Evidence",
    "ExpertKind",
    "ExpertResult",
    "ExpertSpec",
    "FaceBox",
    "FaceCheck",
    "FaceRegion",
    "FaceReport",
    "FaceTrack",
    "FileFailure",
    "FrameResult",
    "HeatmapField",
    "ImageInfo",
    "LLMAssessment",
    "Label",
    "Method",
    "Outcome",
    "Region",
    "Report",
    "Scope",
    "Stage1Result",
    "Stage2Answer",
    "Stage2Result",
    "Target",
    "TemporalFinding",
    "Verdict",
    "VideoReport",
]
