"""Learned detector: linear heads on frozen CLIP ViT-B/16 features, with a patch map.

score = calibrated P(generated) from a head trained on format-aligned data; the method
(GAN vs diffusion) comes from a second head; the heatmap scores each of the 196 patch tokens
against the same learned class direction (projected into the pooled embedding space), in the
manner of seed 003's knowledge-guided forgery detector.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ..errors import ModelError
from ..io.input import ImageInput
from ..types import Evidence, ExpertResult, ExpertSpec
from .base import Expert
from .registry import register_expert

if TYPE_CHECKING:
    from ..learned.daam import DaamExplainer, DaamResult
    from ..learned.detector import ClipDetectorModel, DetectorOutput

HEATMAP_MAX_SIDE = 1024

_lock = threading.Lock()
_models: dict[str, Any] = {}  # "encoder path|heads dir" -> ClipDetectorModel
_daams: dict[int, Any] = {}  # id(model) -> DaamExplainer, or the reason it is unavailable


def _load() -> ClipDetectorModel:
    """The detector model, once per encoder path; raises ModelError when unavailable.
    Its encoder session is created on first use: with DAAM on, the block-output graph's
    session serves everything and the plain one is never loaded (~200 MB saved)."""
    from ..learned.detector import ClipDetectorModel
    from ..models.sources import encoder_path

    path = encoder_path()  # never downloads unless FORENSCOPE_AUTO_PULL=1
    key = f"{path}|{os.environ.get('FORENSCOPE_CLIP_HEADS', '')}"
    with _lock:
        if key not in _models:
            _models[key] = ClipDetectorModel.load(path, lazy=True)
        model: ClipDetectorModel = _models[key]
        return model


def full_heatmap(grid: np.ndarray, box: tuple[float, ...], width: int, height: int) -> np.ndarray:
    """Paste the upsampled patch grid onto the crop box; outside it, the grid's mean."""
    scale = min(1.0, HEATMAP_MAX_SIDE / max(width, height))
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    out = np.full((h, w), float(grid.mean()), dtype=np.float32)
    left, top, right, bottom = (round(v * scale) for v in box)
    bw, bh = max(1, min(w, right) - left), max(1, min(h, bottom) - top)
    up = Image.fromarray(grid.astype(np.float32), mode="F").resize(
        (bw, bh), Image.Resampling.BILINEAR
    )
    out[top : top + bh, left : left + bw] = np.asarray(up)
    return out


@register_expert
class ClipDetector(Expert):
    spec = ExpertSpec(
        name="clip_detector",
        version="0.1.0",
        kind="learned",
        targets="ai_generated",
        description=(
            "Linear heads on frozen CLIP ViT-B/16 (INT8 ONNX) features: calibrated "
            "P(generated), GAN vs diffusion, and a 14x14 patch map"
        ),
        licence="MIT encoder; heads research-use (non-commercial training data)",
        produces_heatmap=True,
        requires=["onnxruntime"],
        extra="learned",
        reference="UnivFD (Ojha et al. 2023); seed 003 knowledge-guided forgery detector",
    )

    def warm_up(self) -> None:
        """The encoder session the analysis will run: DAAM's block-output graph when it is on
        (it serves the score too), else the plain one."""
        if self.available() is not None:
            return
        model = _load()
        explainer = _daam_if_on(model)
        if explainer is None or isinstance(explainer, str):
            model.encoder.session  # noqa: B018 (opens the deferred session)

    def _analyze(self, image: ImageInput) -> ExpertResult:
        try:
            model = _load()
            pred, flow = _encode(model, image.rgb)
        except ModelError as exc:  # includes an encoder session that cannot be created
            return self.abstain(str(exc))
        evidence = [_score_evidence(model, pred)]
        details: dict[str, Any] = {
            "p_generated": round(pred.p_generated, 4),
            "logit": round(pred.logit, 3),
            "calibration": model.generated.calibration.get("method"),
        }
        if pred.p_diffusion is not None:
            method = "diffusion" if pred.p_diffusion >= 0.5 else "gan"
            prob = max(pred.p_diffusion, 1.0 - pred.p_diffusion)
            details.update(method=method, method_probability=round(prob, 4))
            evidence.append(
                Evidence(
                    kind="clip.method",
                    summary=(
                        f"If generated, the attribution head says {method} "
                        f"(P(diffusion) = {pred.p_diffusion:.2f}, "
                        f"P(GAN) = {1 - pred.p_diffusion:.2f})"
                    ),
                    value=method,
                )
            )
        heatmap = None
        if pred.grid is not None:
            box = _crop_box(image.width, image.height)
            heatmap = full_heatmap(pred.grid, box, image.width, image.height)
            evidence.append(_patch_evidence(pred.grid, box, model.patch.name))
            details["patch_grid"] = np.round(pred.grid, 3).tolist()
        if isinstance(flow, str):
            details["daam_unavailable"] = flow
        elif flow is not None:
            evidence.append(_attention_flow(flow, details))
        return self.result(pred.p_generated, evidence=evidence, heatmap=heatmap, details=details)


def score_images(rgbs: list[np.ndarray]) -> list[DetectorOutput]:
    """P(generated) (no patch maps) of uint8 images through the encoder session this expert
    already holds, so other experts (face crops) do not load a second ~200 MB session.
    Raises ModelError when the encoder is unavailable."""
    from ..learned.detector import aligned_tensor

    model = _load()
    explainer = _daam_if_on(model)
    if explainer is None or isinstance(explainer, str):
        return model.predict(rgbs, patches=False)
    (embeds,) = explainer.blocks.run([explainer.blocks.embed_name], aligned_tensor(rgbs))
    return model.predictions(embeds, None)


def _daam_if_on(model: ClipDetectorModel) -> DaamExplainer | str | None:
    """The model's DAAM explainer, why there is none (str), or None when
    FORENSCOPE_CLIP_DAAM=0 turns the view (and its block-output session) off."""
    if os.environ.get("FORENSCOPE_CLIP_DAAM", "1") == "0":
        return None
    from ..learned.daam import DaamExplainer

    with _lock:
        if id(model) not in _daams:
            try:
                _daams[id(model)] = DaamExplainer(model.encoder, model.generated, model.patch)
            except ModelError as exc:
                _daams[id(model)] = str(exc)
        found: DaamExplainer | str = _daams[id(model)]
        return found


def _encode(
    model: ClipDetectorModel, rgb: np.ndarray
) -> tuple[DetectorOutput, DaamResult | str | None]:
    """(DetectorOutput, DaamResult | why DAAM is unavailable | None when off) from ONE encoder
    pass: with DAAM on (FORENSCOPE_CLIP_DAAM != 0) the block-output graph also gives the
    embeddings and the last hidden state, so it serves the score and the patch map as well."""
    explainer = _daam_if_on(model)
    if explainer is None or isinstance(explainer, str):
        return model.predict([rgb])[0], explainer
    return explainer.predict_and_explain(model, rgb)


def _attention_flow(result: DaamResult, details: dict[str, Any]) -> Evidence:
    """Seed 003's DAAM view into `details`, and its one-line evidence."""
    from ..learned.daam import compact_maps, flow_summary

    details["daam"] = compact_maps(result.accumulated)
    details["daam_flow"] = flow_summary(result)
    block, first, n = result.decision_block, result.first_block, len(result.cls_score)
    side = "generated" if result.cls_score[-1] >= 0.5 else "real"
    reached = "" if first == block else f", first reached at block {first + 1}"
    return Evidence(
        kind="clip.decision_block",
        summary=(
            f"Attention flow (DAAM): the decision forms at block {block + 1} of {n}: the class "
            f"token, read through the final layer norm, projection and head, stays on the "
            f"{side} side from block {block + 1} on{reached} "
            f"(P(generated) {result.cls_score[block]:.2f} there, {result.cls_score[-1]:.2f} at "
            f"the output)"
        ),
        value=block + 1,
    )


def _score_evidence(model: Any, pred: Any) -> Evidence:
    auc = model.generated.meta.get("metrics", {}).get("auc", "n/a")
    return Evidence(
        kind="clip.generated",
        summary=(
            f"CLIP ViT-B/16 linear head: P(generated) = {pred.p_generated:.2f} "
            f"(logit {pred.logit:+.2f}, {model.generated.calibration.get('method')}-calibrated; "
            f"held-out AUC {auc})"
        ),
        value=round(pred.p_generated, 4),
    )


def _crop_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The centre square the encoder sees, in image coordinates."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def _patch_evidence(
    grid: np.ndarray, box: tuple[float, float, float, float], head: str
) -> Evidence:
    side = grid.shape[0]
    row, col = np.unravel_index(int(np.argmax(grid)), grid.shape)
    cell = (box[2] - box[0]) / side
    x, y = box[0] + col * cell, box[1] + row * cell
    return Evidence(
        kind="clip.patch_max",
        summary=(
            # the composite-trained head also answers to pasted real content: say so
            f"Most {'pasted- or generated' if 'composite' in head else 'generated'}-looking "
            f"16 px patch of the {side}x{side} CLIP grid is at "
            f"x={x:.0f}, y={y:.0f} (P = {grid.max():.2f}); patch mean {grid.mean():.2f}, "
            f"{(grid >= 0.5).mean():.0%} of patches above 0.5"
        ),
        value=round(float(grid.max()), 4),
    )


class _BaselineExpert(Expert):
    """A weight-light baseline: hand-made features of the format-aligned image + linear head.

    Kept for comparison (issue 3); its confidence is 2 * (held-out AUC - 0.5), so the fusion
    can weigh a weak baseline below the CLIP detector.
    """

    head_name: str
    label: str

    def _analyze(self, image: ImageInput) -> ExpertResult:
        from ..learned.baselines import fredect_features, gram_features
        from ..learned.heads import load_head
        from ..learned.preprocess import align_image

        try:
            head = load_head(self.head_name)
        except ModelError as exc:
            return self.abstain(str(exc))
        fn = fredect_features if head.feature == "fredect" else gram_features
        feats = fn(align_image(Image.fromarray(image.rgb)))
        p = float(head.predict_proba(feats[None, :])[0])
        auc = float(head.meta.get("metrics", {}).get("auc", 0.5))
        summary = (
            f"{self.label} linear head on the re-encoded 224 px image: P(generated) = {p:.2f} "
            f"(weak baseline, held-out AUC {auc:.2f})"
        )
        return baseline_result(self, p, auc, summary)


def baseline_result(expert: Expert, p: float, auc: float, summary: str) -> ExpertResult:
    """A comparison baseline's result: its confidence is 2 * (held-out AUC - 0.5), so the fusion
    weighs a weak baseline below the CLIP detector."""
    return expert.result(
        p,
        evidence=[Evidence(kind=f"{expert.spec.name}.score", summary=summary, value=round(p, 4))],
        confidence=max(0.0, 2.0 * (auc - 0.5)),
        details={"p_generated": round(p, 4), "heldout_auc": auc},
    )


@register_expert
class FreDectBaseline(_BaselineExpert):
    head_name, label = "fredect-generated", "FreDect-style DCT log-spectrum"
    spec = ExpertSpec(
        name="fredect_baseline",
        version="0.1.0",
        kind="learned",
        targets="ai_generated",
        description="Baseline: 28x28 pooled log |DCT| of the luma + logistic head",
        default=False,
        licence="Apache-2.0 code; head research-use (non-commercial training data)",
        reference="Frank et al. 2020, frequency analysis for deep fake image recognition",
    )


@register_expert
class GramBaseline(_BaselineExpert):
    head_name, label = "gram-generated", "GramNet-style texture Gram statistics"
    spec = ExpertSpec(
        name="gram_baseline",
        version="0.1.0",
        kind="learned",
        targets="ai_generated",
        description="Baseline: Gram matrices of a fixed filter bank at 3 scales + logistic head",
        default=False,
        licence="Apache-2.0 code; head research-use (non-commercial training data)",
        reference="Liu et al. 2020, Global Texture Enhancement for Fake Face Detection (GramNet)",
    )
