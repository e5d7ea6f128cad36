"""The learned CLIP detector scored on each face, cropped and aligned like a CelebA portrait.

A face can be swapped or generated inside an otherwise real photo; the whole-image detector then
sees mostly real pixels. Scoring an eye-levelled square crop around each face (1.6x the face box,
the framing of the CelebA-style faces the heads saw in training) asks the same question of the
face alone. Uses the CLIP encoder and heads of `forenscope.learned` (never downloads).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..errors import ModelError
from ..faces.detect import Face
from ..io.input import ImageInput
from ..types import Evidence, ExpertResult, ExpertSpec
from ..types.faces import FaceReport
from .base import Expert
from .face_common import FaceCheckResult, run_per_face
from .registry import register_expert

CROP_SCALE = 1.6
CROP_SIZE = 256  # resampled side before the detector's own 224 alignment
MIN_FACE_PX = 48  # below this the crop is an upscaled blur the heads never saw


def aligned_crop(rgb: np.ndarray, face: Face) -> np.ndarray:
    """Square crop around the face, rotated so the eyes are level, CROP_SIZE x CROP_SIZE."""
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    side = max(face.width, face.height) * CROP_SCALE
    c, s = math.cos(face.roll) * side / CROP_SIZE, math.sin(face.roll) * side / CROP_SIZE
    half = CROP_SIZE / 2
    coeffs = (c, -s, cx - c * half + s * half, s, c, cy - s * half - c * half)
    out = Image.fromarray(rgb).transform(
        (CROP_SIZE, CROP_SIZE),
        Image.Transform.AFFINE,
        tuple(float(v) for v in coeffs),
        resample=Image.Resampling.BICUBIC,
        fillcolor=tuple(int(v) for v in np.median(rgb.reshape(-1, 3), axis=0)),  # not black
    )
    return np.asarray(out)


def check_face(image: ImageInput, face: Face, report: FaceReport) -> FaceCheckResult:
    side = min(face.width, face.height)
    if side < MIN_FACE_PX:
        return FaceCheckResult(reason=f"face too small ({side:.0f} px < {MIN_FACE_PX} px)")
    from .clip_detector import score_images

    pred = score_images([aligned_crop(image.rgb, face)])[0]
    ev = Evidence(
        kind="faces.clip",
        summary=(
            f"{report.label}: the CLIP real-vs-generated head on the eye-levelled crop of this "
            f"face ({CROP_SCALE}x its box, rolled {math.degrees(face.roll):+.0f} deg) gives "
            f"P(generated) = {pred.p_generated:.2f}"
        ),
        value=round(float(pred.p_generated), 4),
        bbox=report.face.bbox,
    )
    return FaceCheckResult(score=float(pred.p_generated), evidence=[ev])


@register_expert
class FaceClipExpert(Expert):
    spec = ExpertSpec(
        name="face_clip",
        version="0.1.1",
        kind="faces",
        targets="ai_generated",
        description="the CLIP real-vs-generated head on each aligned face crop",
        licence="MIT encoder; heads research-use (non-commercial training data)",
        requires=["onnxruntime"],
        extra="learned",
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        from ..faces.detect import FaceDetectorUnavailable
        from .clip_detector import _load

        try:
            _load()  # abstain before looking for faces when the encoder is absent
            return run_per_face(self, image, check_face)
        except (FaceDetectorUnavailable, ModelError) as exc:
            return self.abstain(str(exc))
