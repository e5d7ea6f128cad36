"""The systems `forenscope eval` can score, behind one small protocol.

A system spec is a string: an expert name (`ela`, `clip_detector`, ...), `analysis` (the fused
offline pipeline), `format-only` (the container baseline, see `baseline.py`), `noop` (a hash
of the bytes: measures harness overhead only) or `llm:<config file>` (the MLLM engine, async).
Every system returns a `Prediction` per image; refusals, abstentions and errors are values.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .datasets import Sample

# The pipeline's labels -> the dataset's labels.
LABEL_MAP = {"real": "real", "ai_generated": "fake", "tampered": "tampered"}


@dataclass
class Prediction:
    """One system's answer on one image.

    `fake_probability` is P(not real) in [0, 1], or None when the system gave no score (then
    `refusal` or `error` says why). `scores` holds per-label probabilities when the system has
    them; `label` is the predicted dataset label (real | fake | tampered) when it names one.
    """

    fake_probability: float | None = None
    scores: dict[str, float] | None = None
    label: str | None = None
    heatmap: np.ndarray | None = None
    refusal: str | None = None
    error: str | None = None
    attribution: str | None = None
    usage: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LLMOptions:
    """What an `llm:` system takes beyond its config file: `pipeline` changes the config's
    `pipeline:` block (names and ranges as there; None = the config's value), `protocol` names a
    preset applied under them (`paper`), `stage2` also scores stage-2 explanations, `judge` is
    the LLM config file of a judge of their object-relative positions (needs `stage2`)."""

    pipeline: Mapping[str, Any] = field(default_factory=dict)
    protocol: str | None = None
    stage2: bool = False
    judge: str | None = None

    def as_dict(self) -> dict[str, Any]:
        given = {k: v for k, v in self.pipeline.items() if v is not None}
        return {"pipeline": given, "protocol": self.protocol, "stage2": self.stage2,
                "judge": self.judge}  # fmt: skip


@dataclass
class RunSettings:
    """How a run is executed, not what it computes (never part of the run identity)."""

    jobs: int = 1
    engine: str = "local"  # local | ray (image systems)
    ray_address: str | None = None
    progress: Callable[[int], None] | None = None


class System(Protocol):
    """What `evaluate()` runs: every system scores samples into the journal its own way."""

    name: str
    produces_heatmap: bool

    def describe(self) -> dict[str, Any]:
        """Versions and settings recorded in the run record."""
        ...

    def identity(self) -> dict[str, Any]:
        """The resolved settings that change its results: part of the run's config hash, so a
        resume under other settings is refused instead of mixing rows."""
        ...

    def score(
        self, samples: Sequence[Sample], pre: Any, journal: Any, run: RunSettings
    ) -> dict[str, Any] | None:
        """Journal a record for each sample not yet journaled; returns usage totals or None."""
        ...

    def finalize(self, records: list[dict[str, Any]]) -> None:
        """A pass over all records once scored (e.g. out-of-fold fits); usually nothing."""
        ...


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
        self, samples: Sequence[Sample], pre: Any, journal: Any, run: RunSettings
    ) -> dict[str, Any] | None:
        from .runner import run_sync

        opts: dict[str, Any] = {"jobs": run.jobs, "progress": run.progress}
        if run.engine == "ray":
            from .ray_engine import run_ray

            run_ray(self.spec, samples, pre, journal, address=run.ray_address, **opts)
        else:
            run_sync(self.spec, samples, pre, journal, system=self, **opts)
        return None

    def finalize(self, records: list[dict[str, Any]]) -> None:
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
        from .baseline import FormatOnlySystem

        return FormatOnlySystem()
    if spec.startswith("llm:"):
        raise ValueError("llm: systems score asynchronously, not in image workers")
    return ExpertSystem(spec.removeprefix("expert:"))
