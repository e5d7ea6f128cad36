"""CNNSpot-style baseline expert: a small CNN trained from scratch, run by onnxruntime.

A comparison baseline for issue 3 (not in the default analysis): score = calibrated
P(generated) of `models/heads/cnn-generated.onnx` on the format-aligned image, with a
confidence of 2 * (held-out AUC - 0.5) like the other baselines.
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import MissingDependencyError, ModelError
from ..io.input import ImageInput
from ..types import ExpertResult, ExpertSpec
from .base import Expert
from .clip_detector import baseline_result
from .registry import register_expert

_lock = threading.Lock()
_model: list[Any] = []  # the loaded CnnModel, once


def _load() -> Any:
    from ..learned.cnn import CnnModel

    with _lock:
        if not _model:
            _model.append(CnnModel.load())
        return _model[0]


@register_expert
class CnnBaseline(Expert):
    spec = ExpertSpec(
        name="cnn_baseline",
        version="0.1.0",
        kind="learned",
        targets="ai_generated",
        description=(
            "Baseline: small CNNSpot-style CNN (trained from scratch, blur + JPEG augmentation) "
            "on the re-encoded 224 px image, ONNX"
        ),
        requires=["onnxruntime"],
        extra="learned",
        default=False,
        licence="Apache-2.0 code; weights research-use (non-commercial training data)",
        reference="Wang et al. 2020, CNN-generated images are surprisingly easy to spot... for now",
    )

    def _analyze(self, image: ImageInput) -> ExpertResult:
        try:
            model = _load()
        except (ModelError, MissingDependencyError) as exc:
            return self.abstain(str(exc))
        p = float(model.predict([image.rgb])[0])
        auc = float(model.sidecar.meta.get("metrics", {}).get("auc", 0.5))
        summary = (
            f"CNNSpot-style small CNN on the re-encoded 224 px image: P(generated) = {p:.2f} "
            f"(weak baseline trained from scratch, held-out AUC {auc:.2f})"
        )
        return baseline_result(self, p, auc, summary)
