"""A TFLite interpreter from whichever maintained runtime is installed (numpy-2 compatible).

`ai-edge-litert` (Google's successor of tflite-runtime) is preferred; `tflite-runtime` is the
fallback. Imported only when a face model is used, so `import forenscope` stays light.

The runtime's C++ logger prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on
stderr when a model loads; it reads no environment variable or log level we could set, so that
one line is filtered out of file descriptor 2 while the interpreter is built.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
        with drop_native_stderr(RUNTIME_CHATTER):
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


# What the runtime prints at load time and nobody needs to read (the delegate it always uses).
RUNTIME_CHATTER = re.compile(rb"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.\r?\n?$")
_STDERR_LOCK = threading.Lock()  # one redirection of fd 2 at a time


@contextmanager
def drop_native_stderr(pattern: re.Pattern[bytes]) -> Iterator[None]:
    """Run the block with fd 2 captured; afterwards pass on every captured line except those
    matching `pattern`, so other warnings written meanwhile (by any thread) still show."""
    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no usable fd 2 (a closed stderr): nothing to filter
            yield
            return
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield
            finally:
                try:
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                kept = [ln for ln in capture.read().splitlines(True) if not pattern.match(ln)]
                if kept:
                    os.write(2, b"".join(kept))
