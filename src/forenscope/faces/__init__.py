"""Faces: detection + landmarks (offline, CPU), named facial regions and per-face checks.

The TFLite runtime and scikit-image load on first use, inside the functions that need them.
"""

from __future__ import annotations

from ..types.faces import FaceBox, FaceCheck, FaceRegion, FaceReport
from .describe import describe_region_on_faces, faces_for_prompt
from .detect import Face, FaceDetectorUnavailable, detect_faces
from .report import face_reports

__all__ = [
    "Face",
    "FaceBox",
    "FaceCheck",
    "FaceDetectorUnavailable",
    "FaceRegion",
    "FaceReport",
    "describe_region_on_faces",
    "detect_faces",
    "face_reports",
    "faces_for_prompt",
]
