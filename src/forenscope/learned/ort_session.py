"""One way to open an onnxruntime session on the CPU for every learned model of the package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, ModelError


def cpu_session(model: Path | bytes, what: str, threads: int | None = None) -> Any:
    """An InferenceSession on the CPU provider with full graph optimisation.

    `what` names the feature for the error messages ("the CLIP detector"); `threads` caps the
    intra-op pool (None: onnxruntime's default); inter-op is 1 because our graphs are chains.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependencyError(what, "onnxruntime", "learned") from exc
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        name = "an in-memory graph" if isinstance(model, bytes) else str(model)
        raise ModelError(f"cannot load {what} from {name}: {exc}") from exc
