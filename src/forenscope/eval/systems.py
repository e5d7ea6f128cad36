"""The systems `forenscope eval` can score (behind the `System` protocol of `protocol.py`) and
the registry that builds one from its spec.

A system spec is a string: an expert name (`ela`, `clip_detector`, ...), `analysis` (the fused
offline pipeline), `format-only` (the container baseline, see `baseline.py`), `noop` (a hash
of the bytes: measures harness overhead only) or `llm:<config file>` (the MLLM engine, async).
Every system returns a `Prediction` per image; refusals, abstentions and errors are values.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .align import Preprocess
from .baseline import FEATURES, container_features, out_of_fold
from .datasets import Sample
from .journal import Journal
from .protocol import LLMOptions, Prediction, RunSettings, System
from .records import SampleRecord
from .runner import run_sync

__all__ = [
    "LLMOptions",
    "Prediction",
    "RunSettings",
    "System",
    "make_image_system",
    "make_system",
]

# The pipeline's labels -> the dataset's labels.
LABEL_MAP = {"real": "real", "ai_generated": "fake", "tampered": "tampered"}


def _decode(data: bytes) -> Any:
    from ..io import load_image

    return load_image(data)


class ImageSystem:
    """A system that scores one image at a time in worker processes (`predict`), rebuilt in
    each worker from its spec string; `--engine ray` runs the same work as Ray tasks."""

    name = "image"
    spec = "image"
    produces_heatmap = False

    def describe(self) -> dict[str, Any]:
        return {"system": self.name}

    def identity(self) -> dict[str, Any]:
        """The resolved analysis switches (fusion, map fusion, CLIP heads, DAAM) and the
        fingerprints of the weights they select."""
        from ..config import AnalysisConfig

        return {"analysis_config": AnalysisConfig.current().record()}

    def predict(self, data: bytes, sample: Sample) -> Prediction:
        raise NotImplementedError

    def score(
        self, samples: Sequence[Sample], pre: Preprocess, journal: Journal, run: RunSettings
    ) -> dict[str, Any] | None:
        # Workers rebuild the system from its spec with `make_image_system` (passed down, so
        # the runner and the Ray engine need not import this module).
        opts: dict[str, Any] = {"jobs": run.jobs, "progress": run.progress}
        if run.engine == "ray":
            from .ray_engine import run_ray

            run_ray(make_image_system, self.spec, samples, pre, journal, **opts,
                    address=run.ray_address)  # fmt: skip
        else:
            run_sync(make_image_system, self.spec, samples, pre, journal, system=self, **opts)
        return None

    def finalize(self, records: list[SampleRecord]) -> None:
        return None


class NoopSystem(ImageSystem):
    """Not a detector: a deterministic pseudo-score from the bytes, for overhead benchmarks and
    resume tests (`noop:MS` sleeps MS milliseconds per image to stand in for a slow system)."""

    name = "noop"

    def __init__(self, sleep_ms: float = 0.0) -> None:
        self.sleep_s = sleep_ms / 1000.0
        self.spec = f"noop:{sleep_ms:g}" if sleep_ms else "noop"

    def describe(self) -> dict[str, Any]:
        return {"system": "noop", "note": "score = first sha256 byte / 255; not a detector"}

    def identity(self) -> dict[str, Any]:
        return {}  # a hash of the bytes: no setting changes it

    def predict(self, data: bytes, sample: Sample) -> Prediction:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return Prediction(fake_probability=hashlib.sha256(data).digest()[0] / 255.0)


class ExpertSystem(ImageSystem):
    """One registered expert: its score is P(fake); an abstention is kept as a refusal value."""

    def __init__(self, name: str) -> None:
        from ..experts import get_expert

        self.name = self.spec = name
        self.expert = get_expert(name)
        self.produces_heatmap = self.expert.spec.produces_heatmap

    def describe(self) -> dict[str, Any]:
        spec = self.expert.spec
        return {"system": "expert", "expert": spec.name, "version": spec.version}

    def predict(self, data: bytes, sample: Sample) -> Prediction:
        res = self.expert.analyze(_decode(data))
        if res.error is not None:
            return Prediction(error=f"{res.error.type}: {res.error.message}")
        if res.score is None:
            return Prediction(refusal=f"abstained: {res.abstain_reason}")
        return Prediction(fake_probability=float(res.score), heatmap=res.heatmap)


class AnalysisSystem(ImageSystem):
    """The fused offline analysis (`forenscope.pipeline.analyze_image`)."""

    name = "analysis"
    produces_heatmap = True

    def __init__(self, experts: list[str] | None = None, threshold: float = 0.5) -> None:
        self.experts = experts
        self.threshold = threshold
        self.spec = "analysis:" + ",".join(experts) if experts else "analysis"

    def describe(self) -> dict[str, Any]:
        from .. import __version__
        from ..experts import get_expert
        from ..pipeline import default_experts

        names = self.experts if self.experts is not None else default_experts()
        versions = {n: get_expert(n).spec.version for n in names}
        return {"system": "analysis", "forenscope": __version__, "experts": versions}

    def predict(self, data: bytes, sample: Sample) -> Prediction:
        from ..pipeline import analyze_image

        report = analyze_image(
            _decode(data), experts=self.experts, threshold=self.threshold, threads=1
        )
        probs = {LABEL_MAP[k]: float(v) for k, v in report.verdict.probabilities.items()}
        method = report.attribution.method
        abstained = sum(1 for r in report.experts if r.score is None)
        return Prediction(
            fake_probability=1.0 - probs.get("real", 0.0),
            scores=probs,
            label=LABEL_MAP.get(report.verdict.label, report.verdict.label),  # or "inconclusive"
            heatmap=report.fused_heatmap,
            attribution=method if method in ("gan", "diffusion") else None,
            error="; ".join(f"{e.type}: {e.message}" for e in report.errors) or None,
            extra={
                "decided_by": report.verdict.decided_by,
                "experts_abstained": abstained,
                "inconclusive": not report.verdict.decided,
            },
        )


class FormatOnlySystem(ImageSystem):
    """The container baseline (`baseline.py`): JPEG quality, file size, chroma subsampling...
    through a 5-fold out-of-fold logistic regression, fitted once every record is in."""

    name = spec = "format-only"

    def describe(self) -> dict[str, Any]:
        return {"system": "format-only", "features": list(FEATURES), "model": "5-fold OOF L2 logit"}

    def identity(self) -> dict[str, Any]:
        return {}  # container features only: no analysis switch changes them

    def predict(self, data: bytes, sample: Sample) -> Prediction:
        return Prediction(extra={"container": container_features(data)})

    def finalize(self, records: list[SampleRecord]) -> None:
        """Fill every record's score with its out-of-fold probability (needs the whole set)."""
        rows = [r for r in records if r.error is None and "container" in r.extra]
        if not rows:
            return
        x = np.array([[r.extra["container"][f] for f in FEATURES] for r in rows])
        y = np.array([r.label != "real" for r in rows], dtype=float)
        for r, p in zip(rows, out_of_fold(x, y), strict=True):
            r.fake_probability = None if math.isnan(p) else float(p)
            if r.fake_probability is None:
                r.refusal = "format-only: a training fold held one class"


def make_system(spec: str, llm: LLMOptions | None = None) -> System:
    """A system from its spec; `llm` holds what an `llm:` system takes beyond its config."""
    if spec.startswith("llm:"):
        from .llm_system import LLMSystem

        return LLMSystem(spec.removeprefix("llm:"), llm or LLMOptions())
    return make_image_system(spec)


def make_image_system(spec: str) -> ImageSystem:
    """An image system from its spec: what each worker process builds once."""
    if spec == "noop" or spec.startswith("noop:"):
        return NoopSystem(float(spec.partition(":")[2] or 0))
    if spec == "analysis" or spec.startswith("analysis:"):
        names = spec.partition(":")[2]
        return AnalysisSystem([n for n in names.split(",") if n] or None)
    if spec == "format-only":
        return FormatOnlySystem()
    if spec.startswith("llm:"):
        raise ValueError("llm: systems score asynchronously, not in image workers")
    return ExpertSystem(spec.removeprefix("expert:"))
