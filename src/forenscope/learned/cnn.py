"""Inference of the CNNSpot-style baseline: an ONNX file run by onnxruntime + a JSON sidecar.

The sidecar (`<name>.json` beside `<name>.onnx`) holds the sha256 of the .onnx (checked at
load, so a swapped or corrupted file is refused), the input convention, the Platt calibration
of the logit and the training metadata. The graph takes format-aligned RGB images as float32
(N, 3, H, W) in 0..255 (it normalises internally) and returns one logit per image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ModelError
from ..models.cache import file_sha256
from .heads import HEADS_PACKAGE, sigmoid
from .preprocess import ALIGN_SIZE, align_image

CNN_NAME = "cnn-generated"
INPUT_NAME, OUTPUT_NAME = "image", "logit"


@dataclass
class CnnSidecar:
    """Everything about the .onnx that is not weights; one JSON file."""

    name: str
    onnx_file: str
    onnx_sha256: str
    input_size: int = ALIGN_SIZE
    classes: tuple[str, str] = ("real", "generated")
    calibration: dict[str, Any] = field(default_factory=lambda: {"method": "none"})
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "onnx_file": self.onnx_file,
            "onnx_sha256": self.onnx_sha256,
            "input": {
                "name": INPUT_NAME,
                "layout": "NCHW float32 RGB in 0..255, format-aligned (see meta.alignment)",
                "size": self.input_size,
            },
            "output": OUTPUT_NAME,
            "classes": list(self.classes),
            "calibration": self.calibration,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CnnSidecar:
        try:
            return cls(
                name=str(d["name"]),
                onnx_file=str(d["onnx_file"]),
                onnx_sha256=str(d["onnx_sha256"]).lower(),
                input_size=int(d["input"]["size"]),
                classes=(str(d["classes"][0]), str(d["classes"][1])),
                calibration=dict(d.get("calibration", {"method": "none"})),
                meta=dict(d.get("meta", {})),
            )
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ModelError(f"malformed CNN sidecar: {exc}") from exc

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")


def calibrate_logit(z: np.ndarray, calibration: dict[str, Any]) -> np.ndarray:
    """Same conventions as LinearHead: Platt (sigmoid(a*z + b)), isotonic, or plain sigmoid."""
    method = calibration.get("method", "none")
    if method == "platt":
        p = sigmoid(float(calibration["a"]) * z + float(calibration["b"]))
    elif method == "isotonic":
        p = np.interp(z, np.asarray(calibration["x"]), np.asarray(calibration["y"]))
    else:
        p = sigmoid(z)
    return np.asarray(np.clip(p, 0.0, 1.0), dtype=np.float64)


def to_input(aligned: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) aligned images -> float32 (N, 3, H, W) in 0..255 (the graph input)."""
    if aligned.ndim != 4 or aligned.shape[-1] != 3 or aligned.dtype != np.uint8:
        raise ValueError(f"expected uint8 (N, H, W, 3), got {aligned.dtype} {aligned.shape}")
    return np.ascontiguousarray(aligned.transpose(0, 3, 1, 2), dtype=np.float32)


class CnnModel:
    """The exported CNN as an onnxruntime session; `predict` returns calibrated P(generated)."""

    def __init__(self, onnx_path: Path, sidecar: CnnSidecar, threads: int | None = None) -> None:
        from .ort_session import cpu_session

        if not onnx_path.is_file():
            raise ModelError(f"CNN weights {onnx_path} not found")
        digest = file_sha256(onnx_path)
        if digest != sidecar.onnx_sha256:
            raise ModelError(
                f"{onnx_path.name}: sha256 {digest[:12]}... does not match the sidecar's "
                f"{sidecar.onnx_sha256[:12]}...; refusing to load"
            )
        self.session = cpu_session(onnx_path, "the CNN baseline", threads)
        self.path = onnx_path
        self.sidecar = sidecar

    @classmethod
    def load(
        cls, name: str = CNN_NAME, directory: Path | None = None, threads: int | None = None
    ) -> CnnModel:
        """The shipped model (`models/heads/<name>.{json,onnx}`) or one from `directory`."""
        files = resources.files(HEADS_PACKAGE) if directory is None else directory
        ref = files.joinpath(f"{name}.json")
        if directory is None and not ref.is_file():
            raise ModelError(f"no shipped CNN named {name!r}; train it with `forenscope train`")
        try:
            sidecar = CnnSidecar.from_dict(json.loads(ref.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(f"cannot read CNN sidecar {ref}: {exc}") from exc
        # as_file: a real path for onnxruntime even if the package is zipped
        with resources.as_file(files.joinpath(Path(sidecar.onnx_file).name)) as onnx_path:
            return cls(Path(onnx_path), sidecar, threads)

    def logits(self, aligned: np.ndarray, batch: int = 16) -> np.ndarray:
        """Uncalibrated logits for uint8 (N, S, S, 3) aligned images."""
        x = to_input(aligned)
        out = [
            np.asarray(self.session.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + batch]})[0])
            for i in range(0, len(x), batch)
        ]
        return np.concatenate(out).astype(np.float64).reshape(-1)

    def predict_aligned(self, aligned: np.ndarray) -> np.ndarray:
        """Calibrated P(generated) for already aligned images."""
        return calibrate_logit(self.logits(aligned), self.sidecar.calibration)

    def predict(self, rgbs: list[np.ndarray]) -> np.ndarray:
        """Calibrated P(generated) for decoded uint8 RGB images of any size."""
        size = self.sidecar.input_size
        aligned = np.stack([align_image(Image.fromarray(r), size) for r in rgbs])
        return self.predict_aligned(aligned)
