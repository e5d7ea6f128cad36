"""The shipped localizer: features -> trees -> calibrated per-block probability -> pixel map."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

from .features import BLOCK, image_features
from .trees import Forest

WEIGHTS = Path(__file__).resolve().parent / "weights" / "localizer.npz"


@dataclass(frozen=True)
class Localizer:
    forest: Forest
    feature_names: tuple[str, ...]
    calib_a: float  # Platt scaling fitted on held-out synthetic forgeries
    calib_b: float
    smooth: float  # Gaussian sigma (in blocks) applied to the block log-odds
    version: str
    # Threshold with the best mean F1 on the synthetic validation forgeries: an alternative
    # operating point to 0.5, reported next to it (never tuned on real tampered images).
    val_threshold: float = 0.5
    # The .npz the model was loaded from: keys the cached ONNX graph of its trees.
    source: Path | None = field(default=None, compare=False)
    _session: list[Any] = field(default_factory=list, compare=False, repr=False)

    def raw_score(self, x: np.ndarray) -> np.ndarray:
        """Tree log-odds per row: onnxruntime when the `learned` extra is there, else numpy."""
        if not self._session:  # built once per model; a list keeps the dataclass frozen
            self._session.append(self._new_session())
        if self._session[0] is None:
            return self.forest.raw_score(x)
        from . import onnx_trees

        return onnx_trees.raw_score(self._session[0], x)

    def _new_session(self) -> Any:
        """The onnxruntime session of the trees, or None without onnxruntime (or without onnx
        and a cached graph)."""
        import importlib.util

        from . import onnx_trees

        if importlib.util.find_spec("onnxruntime") is None:
            return None
        model = onnx_trees.model_bytes(self.forest, len(self.feature_names), self.source)
        return None if model is None else onnx_trees.session(model)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            **self.forest.arrays(),
            "feature_names": np.array(self.feature_names),
            "calibration": np.array([self.calib_a, self.calib_b, self.smooth, self.val_threshold]),
            "version": np.array(self.version),
        }
        np.savez_compressed(path, allow_pickle=False, **arrays)

    @classmethod
    def load(cls, path: Path = WEIGHTS) -> Localizer:
        with np.load(path, allow_pickle=False) as a:
            cal = a["calibration"]
            return cls(
                Forest.from_arrays(a),
                tuple(str(n) for n in a["feature_names"]),
                float(cal[0]),
                float(cal[1]),
                float(cal[2]),
                str(a["version"]),
                float(cal[3]) if len(cal) > 3 else 0.5,
                source=Path(path),
            )

    def block_logits(self, x: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
        """Uncalibrated log-odds per block, (rows, cols), after the spatial smoothing."""
        raw = self.raw_score(x).reshape(grid)
        return ndimage.gaussian_filter(raw, self.smooth, mode="nearest") if self.smooth else raw

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-(self.calib_a * logits + self.calib_b))))

    def block_map(self, rgb: np.ndarray) -> np.ndarray:
        """Calibrated probability that each 16 px block was manipulated, (rows, cols)."""
        x, grid, names = image_features(rgb)
        if tuple(names) != self.feature_names:
            raise ValueError("feature set differs from the one the weights were trained on")
        return self.calibrate(self.block_logits(x, grid)).astype(np.float32)

    def pixel_map(self, rgb: np.ndarray) -> np.ndarray:
        """The block map resized (bilinear, block centres aligned) to the image's size."""
        return to_pixels(self.block_map(rgb), rgb.shape[:2])


def to_pixels(
    block_map: np.ndarray, shape: tuple[int, int], out_shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Bilinear upsampling of a block map onto the covered pixels; the remainder edge-padded.

    With `out_shape` (smaller than `shape`) the same map is drawn at that working size: the
    blocks keep their place in the image, each `BLOCK * out / shape` map pixels wide.
    """
    rows, cols = block_map.shape
    out_h, out_w = out_shape or shape
    sy, sx = out_h / shape[0], out_w / shape[1]
    size = (max(1, round(cols * BLOCK * sx)), max(1, round(rows * BLOCK * sy)))
    im = Image.fromarray(block_map.astype(np.float32), mode="F")
    up = np.asarray(im.resize(size, Image.Resampling.BILINEAR))
    pad = ((0, max(0, out_h - up.shape[0])), (0, max(0, out_w - up.shape[1])))
    return np.pad(up, pad, mode="edge")[:out_h, :out_w].astype(np.float32)


@lru_cache(maxsize=1)
def shipped() -> Localizer:
    """The weights shipped in the package (loaded once)."""
    return Localizer.load(WEIGHTS)
