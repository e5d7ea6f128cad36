"""What `evaluate()` runs and what a system answers: the `System` protocol, the per-image
`Prediction`, and the settings a run passes down. The bottom of the eval package's systems:
the runner, the image systems, the LLM system and the registry (`systems.py`) all import it,
and it imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .align import Preprocess
from .datasets import Sample
from .journal import Journal
from .records import SampleRecord


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
        self, samples: Sequence[Sample], pre: Preprocess, journal: Journal, run: RunSettings
    ) -> dict[str, Any] | None:
        """Journal a record for each sample not yet journaled; returns usage totals or None."""
        ...

    def finalize(self, records: list[SampleRecord]) -> None:
        """A pass over all records once scored (e.g. out-of-fold fits); usually nothing."""
        ...


class ImageScorer(Protocol):
    """What a worker process builds from a spec and calls per image (an image system)."""

    produces_heatmap: bool

    def predict(self, data: bytes, sample: Sample) -> Prediction: ...


ScorerFactory = Callable[[str], ImageScorer]
