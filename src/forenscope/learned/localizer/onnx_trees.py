"""The same trees as an in-memory ONNX `TreeEnsembleRegressor`, run by onnxruntime (~50x faster).

Built from the shipped arrays, so no second weights file exists to drift from the `.npz`; the
serialized graph is kept in the user cache (else beside the weights) under the `.npz`'s sha256,
so a new process opens the session from those bytes without importing onnx (~0.75 s). Used only when
onnxruntime (the `learned` extra) is installed and onnx is too or the graph is cached; otherwise
`Forest.raw_score` in numpy gives the same numbers, more slowly.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from .trees import Forest

# Cached graph file: this tag, the sha256 of the ONNX bytes that follow, then the bytes. Bump the
# tag's number when `build_model` changes what it writes, so older caches are not used.
_MAGIC = b"forenscope-trees-onnx-1\n"


def available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def cache_paths(weights: Path) -> list[Path]:
    """Where the graph of `weights` is kept: the user cache directory, else beside the weights
    (the shipped ones sit in the package, which a cache file should not grow unless needed)."""
    from ...models.cache import cache_dir, file_sha256

    name = f"{weights.stem}.trees-{file_sha256(weights)[:16]}.onnx.bin"
    return [cache_dir() / "models" / "localizer" / name, weights.with_name(name)]


def read_cached(weights: Path) -> bytes | None:
    """The cached graph bytes of `weights`, or None (absent, unreadable or not intact)."""
    for path in cache_paths(weights):
        try:
            blob = path.read_bytes()
        except OSError:
            continue
        n = len(_MAGIC)
        head, digest, body = blob[:n], blob[n : n + 32], blob[n + 32 :]
        if head == _MAGIC and hashlib.sha256(body).digest() == digest:
            return body
    return None


def write_cached(weights: Path, model: bytes) -> Path | None:
    """Keep `model` for the next process, in the first writable place of `cache_paths` (best
    effort: read-only folders and a full disk only cost the next process the rebuild)."""
    from ...errors import ModelError
    from ...models.cache import write_atomic

    blob = [_MAGIC, hashlib.sha256(model).digest(), model]
    for path in cache_paths(weights):
        try:
            write_atomic(path, blob)
            return path
        except (OSError, ModelError):
            continue
    return None


def model_bytes(forest: Forest, n_features: int, weights: Path | None = None) -> bytes | None:
    """The serialized graph: cached for `weights` if there, else built (needs onnx) and cached.
    None when onnx is missing and nothing is cached."""
    if weights is not None and (cached := read_cached(weights)) is not None:
        return cached
    if importlib.util.find_spec("onnx") is None:
        return None
    model = build_model(forest, n_features)
    if weights is not None:
        write_cached(weights, model)
    return model


def _node_lists(forest: Forest) -> dict[str, list[Any]]:
    lists: dict[str, list[Any]] = {
        k: [] for k in ("tree", "node", "feat", "val", "mode", "true", "false")
    }
    targets: dict[str, list[Any]] = {"tree": [], "node": [], "weight": []}
    for t in range(forest.feature.shape[0]):
        for n in _reachable(forest, t):
            leaf = bool(forest.leaf[t, n])
            lists["tree"].append(t)
            lists["node"].append(n)
            lists["feat"].append(0 if leaf else int(forest.feature[t, n]))
            lists["val"].append(0.0 if leaf else float(forest.threshold[t, n]))
            lists["mode"].append("LEAF" if leaf else "BRANCH_LEQ")
            lists["true"].append(0 if leaf else int(forest.left[t, n]))
            lists["false"].append(0 if leaf else int(forest.right[t, n]))
            if leaf:
                targets["tree"].append(t)
                targets["node"].append(n)
                targets["weight"].append(float(forest.value[t, n]))
    return {**lists, **{f"t_{k}": v for k, v in targets.items()}}


def _reachable(forest: Forest, t: int) -> list[int]:
    """Node ids of tree t reachable from its root (padding nodes are left out)."""
    out, stack = [], [0]
    while stack:
        n = stack.pop()
        out.append(n)
        if not forest.leaf[t, n]:
            stack += [int(forest.right[t, n]), int(forest.left[t, n])]
    return sorted(out)


def session(model: bytes) -> Any:
    """An onnxruntime session mapping float32 (N, n_features) to the raw log-odds (N, 1)."""
    from ..ort_session import cpu_session

    # one thread: the pipeline already runs experts in parallel
    return cpu_session(model, "the learned tamper localizer", threads=1)


def build_session(forest: Forest, n_features: int) -> Any:
    """`session` of the graph built afresh (no cache)."""
    return session(build_model(forest, n_features))


def build_model(forest: Forest, n_features: int) -> bytes:
    """The trees as a serialized ONNX `TreeEnsembleRegressor` graph (needs the onnx package)."""
    from onnx import TensorProto, helper

    nl = _node_lists(forest)
    node = helper.make_node(
        "TreeEnsembleRegressor",
        ["X"],
        ["Y"],
        domain="ai.onnx.ml",
        n_targets=1,
        aggregate_function="SUM",
        base_values=[forest.baseline],
        nodes_treeids=nl["tree"],
        nodes_nodeids=nl["node"],
        nodes_featureids=nl["feat"],
        nodes_values=nl["val"],
        nodes_modes=nl["mode"],
        nodes_truenodeids=nl["true"],
        nodes_falsenodeids=nl["false"],
        target_treeids=nl["t_tree"],
        target_nodeids=nl["t_node"],
        target_ids=[0] * len(nl["t_tree"]),
        target_weights=nl["t_weight"],
    )
    graph = helper.make_graph(
        [node],
        "forenscope_localizer",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n_features])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    return bytes(model.SerializeToString())


def raw_score(session: Any, x: np.ndarray) -> np.ndarray:
    out = session.run(None, {"X": np.ascontiguousarray(x, dtype=np.float32)})[0]
    return np.asarray(out, dtype=np.float64).ravel()
