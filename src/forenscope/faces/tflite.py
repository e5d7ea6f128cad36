"""A TFLite interpreter from whichever maintained runtime is installed (numpy-2 compatible).

`ai-edge-litert` (Google's successor of tflite-runtime) is preferred; `tflite-runtime` is the
fallback. Imported only when a face model is used, so `import forenscope` stays light.
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependencyError

RUNTIMES = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")


def runtime_module() -> str | None:
    """Name of the first importable TFLite runtime module, or None."""
    import importlib.util

    for name in RUNTIMES:
        top = name.split(".")[0]
        if importlib.util.find_spec(top) is not None:
            return name
    return None


class TFLiteModel:
    """One loaded .tflite model; `run` is serialised because interpreters are not reentrant."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        name = runtime_module()
        if name is None:
            raise MissingDependencyError("face detection", "ai-edge-litert", "faces")
        interpreter_cls: Any = importlib.import_module(name).Interpreter
        self._it = interpreter_cls(model_path=str(path), num_threads=threads)
        self._it.allocate_tensors()
        self._input = self._it.get_input_details()[0]
        self._outputs = self._it.get_output_details()
        self._lock = threading.Lock()
        self.input_shape = tuple(int(v) for v in self._input["shape"])

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Run on one float32 input tensor; the outputs in the model's declared order."""
        with self._lock:
            self._it.set_tensor(self._input["index"], tensor.astype(np.float32))
            self._it.invoke()
            return [np.array(self._it.get_tensor(o["index"])) for o in self._outputs]
