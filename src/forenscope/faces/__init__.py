"""Faces: detection + landmarks (offline, CPU), named facial regions and per-face checks.

Names load lazily, so `forenscope.types` can import `forenscope.faces.types` without pulling the
detector (or the experts package) in; the TFLite runtime or scikit-image load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analysis import analyze_faces
    from .describe import describe_region_on_faces, faces_for_prompt
    from .detect import Face, FaceDetectorUnavailable, detect_faces
    from .report import face_reports
    from .types import FaceBox, FaceCheck, FaceRegion, FaceReport

_WHERE = {
    "analyze_faces": "analysis",
    "describe_region_on_faces": "describe",
    "faces_for_prompt": "describe",
    "Face": "detect",
    "FaceDetectorUnavailable": "detect",
    "detect_faces": "detect",
    "face_reports": "report",
    "FaceBox": "types",
    "FaceCheck": "types",
    "FaceRegion": "types",
    "FaceReport": "types",
}
__all__ = [
    "Face",
    "FaceBox",
    "FaceCheck",
    "FaceDetectorUnavailable",
    "FaceRegion",
    "FaceReport",
    "analyze_faces",
    "describe_region_on_faces",
    "detect_faces",
    "face_reports",
    "faces_for_prompt",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
