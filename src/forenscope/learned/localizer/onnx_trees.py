"""The same trees as an in-memory ONNX `TreeEnsembleRegressor`, run by onnxruntime (~50x faster).

Built from the shipped arrays at load time, so no second weights file exists to drift from the
`.npz`. Used only when onnx and onnxruntime (the `learned` extra) are installed; otherwise
`Forest.raw_score` in numpy gives the same numbers, more slowly.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from .trees import Forest


def available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


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


def build_session(forest: Forest, n_features: int) -> Any:
    """An onnxruntime session mapping float32 (N, n_features) to the raw log-odds (N, 1)."""
    from onnx import TensorProto, helper

    from ..ort_session import cpu_session

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
    # one thread: the pipeline already runs experts in parallel
    return cpu_session(model.SerializeToString(), "the learned tamper localizer", threads=1)


def raw_score(session: Any, x: np.ndarray) -> np.ndarray:
    out = session.run(None, {"X": np.ascontiguousarray(x, dtype=np.float32)})[0]
    return np.asarray(out, dtype=np.float64).ravel()
