"""The expert contract: a spec (what it is) and `analyze(image) -> ExpertResult`."""

from __future__ import annotations

import importlib.util
import sys
import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from ..errors import MissingDependencyError
from ..io.input import ImageInput
from ..types import ErrorInfo, Evidence, ExpertResult, ExpertSpec


class Expert(ABC):
    """Subclass, set `spec`, implement `_analyze`, and decorate with `@register_expert`."""

    spec: ClassVar[ExpertSpec]

    def available(self) -> str | None:
        """None when every optional module in `spec.requires` can be imported, else why not."""
        for module in self.spec.requires:
            if not _importable(module):
                return str(MissingDependencyError(self.spec.name, module, self.spec.extra or "all"))
        return None

    def analyze(self, image: ImageInput) -> ExpertResult:
        """Run the expert; never raises for a bad image: the error is returned as a value."""
        start = time.perf_counter()
        missing = self.available()
        if missing is not None:
            result = self.abstain(missing)
        else:
            try:
                result = self._analyze(image)
            except Exception as exc:  # an expert bug must not kill the analysis
                error = ErrorInfo(type=type(exc).__name__, message=str(exc)[:500])
                result = self.abstain(f"failed: {type(exc).__name__}")
                result = result.model_copy(update={"error": error})
        return result.model_copy(update={"elapsed_s": time.perf_counter() - start})

    def warm_up(self) -> None:
        """Load the models `_analyze` needs (once per process), ahead of the first image; may
        raise, as loading on first use would. Experts without models keep this no-op."""
        return None

    @abstractmethod
    def _analyze(self, image: ImageInput) -> ExpertResult: ...

    # -- helpers for subclasses -------------------------------------------------------------
    def result(
        self,
        score: float,
        *,
        evidence: list[Evidence] | None = None,
        heatmap: np.ndarray | None = None,
        confidence: float = 1.0,
        details: dict[str, Any] | None = None,
    ) -> ExpertResult:
        """A judged result; the heatmap is clipped to [0, 1] float32."""
        hm = None
        if heatmap is not None:
            hm = np.clip(np.nan_to_num(heatmap.astype(np.float32)), 0.0, 1.0)
        return ExpertResult(
            expert=self.spec.name,
            version=self.spec.version,
            targets=self.spec.targets,
            score=float(np.clip(score, 0.0, 1.0)),
            confidence=float(np.clip(confidence, 0.0, 1.0)),
            evidence=evidence or [],
            heatmap=hm,
            has_heatmap=hm is not None,
            details=details or {},
        )

    def abstain(
        self,
        reason: str,
        *,
        evidence: list[Evidence] | None = None,
        details: dict[str, Any] | None = None,
    ) -> ExpertResult:
        """The expert cannot judge this image; it says why and does not vote."""
        return ExpertResult(
            expert=self.spec.name,
            version=self.spec.version,
            targets=self.spec.targets,
            score=None,
            abstain_reason=reason,
            evidence=evidence or [],
            details=details or {},
        )


def _importable(module: str) -> bool:
    """Whether `module` can be imported, without importing it.

    A module already in sys.modules counts as present: find_spec() raises ValueError for one
    whose `__spec__` is None, which is what another thread's import in progress (or cv2's
    self-replacing loader) leaves behind.
    """
    if sys.modules.get(module) is not None:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ValueError, ImportError):
        return module in sys.modules
