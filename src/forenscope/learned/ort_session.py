"""One way to open an onnxruntime session on the CPU for every learned model of the package."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, ModelError
from ..io.limits import usable_cores

# Graphs this large are worth a rewritten copy (the 90 MB CLIP encoder: 0.08 s CPU of every
# new process); small ones open about as fast as their copy would.
OPTIMIZE_MIN_BYTES = 16 << 20


def cpu_session(
    model: Path | bytes, what: str, threads: int | None = None, *, cache_optimized: bool = False
) -> Any:
    """An InferenceSession on the CPU provider with full graph optimisation.

    `what` names the feature for the error messages ("the CLIP detector"); `threads` sizes the
    intra-op pool (None: one thread per physical core the process may use); inter-op is 1
    because our graphs are chains.
    With `cache_optimized`, a file model of OPTIMIZE_MIN_BYTES or more is opened from its graph
    with the portable (extended) optimisations already applied, saved once per model and
    onnxruntime version under the cache directory (see `optimized_graph`).
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependencyError(what, "onnxruntime", "learned") from exc
    opts = _options(ort, threads)
    source = model if isinstance(model, bytes) else str(model)
    if cache_optimized and isinstance(model, Path) and _size(model) >= OPTIMIZE_MIN_BYTES:
        source = str(optimized_graph(model))
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        name = "an in-memory graph" if isinstance(model, bytes) else str(model)
        raise ModelError(f"cannot load {what} from {name}: {exc}") from exc


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # onnxruntime reports the missing file


def _options(ort: Any, threads: int | None) -> Any:
    opts = ort.SessionOptions()
    # Always a count: left to itself onnxruntime starts one thread per physical core and pins
    # each to a core, outside the affinity `taskset` or a cpuset gives the process, and onto
    # the same cores as the pool of every other process doing the same. Given a count, it pins
    # nothing; physical cores, as its default counts them (hyperthreads add little to a GEMM).
    opts.intra_op_num_threads = threads or usable_cores(physical=True)
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return opts


def optimized_graph(model: Path) -> Path:
    """`model` with onnxruntime's basic and extended graph rewrites applied, or `model` itself
    when that copy cannot be written.

    Opening it with ORT_ENABLE_ALL re-runs those passes (they find nothing left) and adds the
    machine-specific layout ones, so the session computes exactly what one opened from `model`
    does, but skips most of the rewriting: the CLIP graph's session opens in 0.21 instead of
    0.29 s CPU. The copy is keyed by the model's sha256 and the onnxruntime version (whose
    rewrites it holds); only the extended level is saved, the layout passes being per machine.
    """
    import onnxruntime as ort

    from ..models.cache import cache_dir, file_sha256

    try:
        tag = f"{file_sha256(model)[:16]}-ort{ort.__version__}"
        dest = cache_dir() / "ort-optimized" / f"{model.stem}-{tag}.onnx"
        if dest.is_file():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        os.close(fd)
    except OSError:
        return model  # no writable cache: open the original graph, as before
    try:
        opts = _options(ort, 1)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        opts.optimized_model_filepath = tmp
        ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
        os.chmod(tmp, 0o644)  # a shared cache must be readable
        os.replace(tmp, dest)  # no half-written copy is ever visible
    except Exception:  # onnxruntime's own errors or a full disk: the original still works
        Path(tmp).unlink(missing_ok=True)
        return model
    return dest
