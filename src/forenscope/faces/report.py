"""Turn detections and the face experts' results into one FaceReport per face."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..types import BBox, ExpertResult
from ..types.faces import FaceBox, FaceCheck, FaceReport
from .detect import Face
from .regions import face_regions

SIDE_NOTE = "left/right name the person's own sides (their left eye is on the image's right)"


def face_bbox(face: Face, shape: tuple[int, int]) -> BBox:
    h, w = shape
    x0, y0 = int(max(0, math.floor(face.box[0]))), int(max(0, math.floor(face.box[1])))
    x1, y1 = int(min(w, math.ceil(face.box[2]))), int(min(h, math.ceil(face.box[3])))
    return BBox(x=x0, y=y0, width=max(0, x1 - x0), height=max(0, y1 - y0))


def face_box(face: Face, shape: tuple[int, int]) -> FaceBox:
    return FaceBox(
        bbox=face_bbox(face, shape),
        score=None if face.score is None else float(np.clip(face.score, 0.0, 1.0)),
        detector=face.detector,
        keypoints={k: (round(x, 1), round(y, 1)) for k, (x, y) in face.keypoints.items()},
        landmark_count=0 if face.mesh is None else int(face.mesh.shape[0]),
        roll_degrees=round(math.degrees(face.roll), 1),
    )


def face_reports(
    faces: Sequence[Face], shape: tuple[int, int], results: Sequence[ExpertResult] = ()
) -> list[FaceReport]:
    """One report per face (1-based, left to right) with its regions and per-face checks.

    Face experts put `details["per_face"] = [{"face": i, "score", "abstain_reason",
    "evidence": [indices into result.evidence]}]`; anything else is ignored.
    """
    reports = []
    for i, face in enumerate(faces, start=1):
        notes = [SIDE_NOTE]
        if face.mesh is None:
            notes.append(
                "regions estimated from the detector box and keypoints (no landmark mesh): "
                "treat part names as approximate"
            )
        reports.append(
            FaceReport(
                index=i,
                face=face_box(face, shape),
                regions=face_regions(face, shape),
                checks=_checks(i, results),
                notes=notes,
            )
        )
    return reports


def _checks(index: int, results: Sequence[ExpertResult]) -> list[FaceCheck]:
    checks = []
    for res in results:
        for entry in res.details.get("per_face", []):
            if entry.get("face") != index:
                continue
            ev = [res.evidence[j] for j in entry.get("evidence", []) if j < len(res.evidence)]
            checks.append(
                FaceCheck(
                    expert=res.expert,
                    score=entry.get("score"),
                    abstain_reason=entry.get("abstain_reason"),
                    evidence=ev,
                )
            )
    return checks
