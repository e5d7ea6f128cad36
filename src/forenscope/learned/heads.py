"""Linear heads (numpy only at inference) with Platt or isotonic calibration, stored as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError

HEADS_PACKAGE = "forenscope.models.heads"


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0))))


@dataclass
class LinearHead:
    """logit = ((x - mean) / scale) . weights + bias, then calibrated to a probability.

    `classes` = (negative, positive); the probability is that of `classes[1]`.
    `calibration` is {"method": "platt", "a", "b"} (p = sigmoid(a*logit + b)),
    {"method": "isotonic", "x": [...], "y": [...]} (p = interp(logit)), or {"method": "none"}.
    """

    name: str
    feature: str
    classes: tuple[str, str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    calibration: dict[str, Any] = field(default_factory=lambda: {"method": "none"})
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])

    def standardise(self, x: np.ndarray) -> np.ndarray:
        return np.asarray((np.asarray(x, dtype=np.float64) - self.mean) / self.scale)

    def logit(self, x: np.ndarray) -> np.ndarray:
        """Uncalibrated decision value for features (N, D) or (D,)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.dim:
            raise ModelError(f"head {self.name} expects {self.dim} features, got {x.shape[-1]}")
        return np.asarray(self.standardise(x) @ self.weights + self.bias)

    def calibrate_logit(self, z: np.ndarray) -> np.ndarray:
        method = self.calibration.get("method", "none")
        if method == "platt":
            return sigmoid(self.calibration["a"] * z + self.calibration["b"])
        if method == "isotonic":
            xs = np.asarray(self.calibration["x"], dtype=np.float64)
            ys = np.asarray(self.calibration["y"], dtype=np.float64)
            return np.asarray(np.interp(z, xs, ys))
        return sigmoid(z)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probability of `classes[1]`."""
        return np.asarray(np.clip(self.calibrate_logit(self.logit(x)), 0.0, 1.0))

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "feature": self.feature,
            "classes": list(self.classes),
            "mean": _round(self.mean),
            "scale": _round(self.scale),
            "weights": _round(self.weights),
            "bias": float(self.bias),
            "calibration": self.calibration,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LinearHead:
        try:
            head = cls(
                name=str(d["name"]),
                feature=str(d["feature"]),
                classes=(str(d["classes"][0]), str(d["classes"][1])),
                mean=np.asarray(d["mean"], dtype=np.float64),
                scale=np.asarray(d["scale"], dtype=np.float64),
                weights=np.asarray(d["weights"], dtype=np.float64),
                bias=float(d["bias"]),
                calibration=dict(d.get("calibration", {"method": "none"})),
                meta=dict(d.get("meta", {})),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ModelError(f"malformed head file: {exc}") from exc
        if not (head.mean.shape == head.scale.shape == head.weights.shape):
            raise ModelError(f"head {head.name}: mean/scale/weights shapes differ")
        if not np.all(np.isfinite(head.weights)) or np.linalg.norm(head.weights) < 1e-12:
            raise ModelError(f"head {head.name}: weights are zero or non-finite")
        return head

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> LinearHead:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read head {path}: {exc}") from exc
        return cls.from_dict(data)


def _round(a: np.ndarray) -> list[float]:
    # 7 significant digits keeps the JSON small and the float32 precision we compute in.
    return [float(f"{v:.7g}") for v in np.asarray(a, dtype=np.float64).ravel()]


def load_head(name: str, directory: Path | None = None) -> LinearHead:
    """Load a shipped head (`models/heads/<name>.json`) or one from `directory`."""
    if directory is not None:
        return LinearHead.load(directory / f"{name}.json")
    ref = resources.files(HEADS_PACKAGE).joinpath(f"{name}.json")
    if not ref.is_file():
        raise ModelError(f"no shipped head named {name!r}; train it with `forenscope train`")
    return LinearHead.from_dict(json.loads(ref.read_text(encoding="utf-8")))
