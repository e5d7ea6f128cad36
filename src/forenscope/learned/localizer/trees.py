"""Gradient-boosted trees as plain arrays, evaluated in numpy (no scikit-learn at inference).

`export_hgb` reads a fitted `HistGradientBoostingClassifier` (binary, numeric features) into padded
(n_trees, n_nodes) arrays; `raw_score` reproduces its decision function: a row goes left when
its feature value is <= the node's threshold, as in scikit-learn's predictor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Forest:
    feature: np.ndarray  # int16 (T, N)
    threshold: np.ndarray  # float32 (T, N)
    left: np.ndarray  # int16 (T, N)
    right: np.ndarray  # int16 (T, N)
    leaf: np.ndarray  # bool (T, N)
    value: np.ndarray  # float32 (T, N), leaf values
    baseline: float
    depth: int

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "feature": self.feature,
            "threshold": self.threshold,
            "left": self.left,
            "right": self.right,
            "leaf": self.leaf,
            "value": self.value,
            "baseline": np.array([self.baseline], dtype=np.float64),
            "depth": np.array([self.depth], dtype=np.int32),
        }

    @classmethod
    def from_arrays(cls, a: Any) -> Forest:
        return cls(
            feature=np.asarray(a["feature"], dtype=np.intp),
            threshold=np.asarray(a["threshold"], dtype=np.float32),
            left=np.asarray(a["left"], dtype=np.intp),
            right=np.asarray(a["right"], dtype=np.intp),
            leaf=np.asarray(a["leaf"], dtype=bool),
            value=np.asarray(a["value"], dtype=np.float32),
            baseline=float(np.asarray(a["baseline"])[0]),
            depth=int(np.asarray(a["depth"])[0]),
        )

    def raw_score(self, x: np.ndarray) -> np.ndarray:
        """The summed tree outputs plus the baseline (a log-odds) for each row of x."""
        n_trees = self.feature.shape[0]
        rows = np.arange(x.shape[0])[None, :]
        trees = np.arange(n_trees)[:, None]
        node = np.zeros((n_trees, x.shape[0]), dtype=np.intp)
        for _ in range(self.depth):
            feat = self.feature[trees, node]
            go_left = x[rows, feat] <= self.threshold[trees, node]
            nxt = np.where(go_left, self.left[trees, node], self.right[trees, node])
            node = np.where(self.leaf[trees, node], node, nxt)
        total = self.value[trees, node].sum(axis=0, dtype=np.float64)
        return np.asarray(total + self.baseline, dtype=np.float64)


def f32_floor(t: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 threshold: then `x32 <= t32` iff `x32 <= t64`."""
    t32 = t.astype(np.float32)
    return np.where(t32 <= t, t32, np.nextafter(t32, np.float32(-np.inf))).astype(np.float32)


def export_hgb(clf: Any) -> Forest:
    """Padded arrays of a fitted binary HistGradientBoostingClassifier (numeric features only)."""
    nodes_list = [pred[0].nodes for pred in clf._predictors]
    n_trees, width = len(nodes_list), max(len(n) for n in nodes_list)
    feature = np.zeros((n_trees, width), np.int16)
    threshold = np.zeros((n_trees, width), np.float32)
    left = np.zeros((n_trees, width), np.int16)
    right = np.zeros((n_trees, width), np.int16)
    leaf = np.ones((n_trees, width), bool)
    value = np.zeros((n_trees, width), np.float32)
    for t, nodes in enumerate(nodes_list):
        k = len(nodes)
        feature[t, :k] = nodes["feature_idx"]
        threshold[t, :k] = f32_floor(nodes["num_threshold"])
        left[t, :k] = nodes["left"]
        right[t, :k] = nodes["right"]
        leaf[t, :k] = nodes["is_leaf"].astype(bool)
        value[t, :k] = nodes["value"]
    depth = int(max(int(n["depth"].max()) for n in nodes_list))
    return Forest(
        feature,
        threshold,
        left,
        right,
        leaf,
        value,
        float(np.ravel(clf._baseline_prediction)[0]),
        depth,
    )
