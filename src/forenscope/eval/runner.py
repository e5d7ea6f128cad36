"""Run one system over samples: per-sample records into a resumable journal, bounded workers.

Each worker process builds the system once (from its spec string, with the factory the caller
passes: this module imports no system) and scores samples: read the file, check its sha256
against the manifest (a mismatch is a recorded error, the image is not scored), align/perturb
it, predict, and compute localization numbers against the mask in the same geometry. The parent
process is the only journal writer.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

import numpy as np

from .align import Preprocess, prepare
from .datasets import Sample, load_mask
from .journal import Journal
from .metrics import localization_record
from .protocol import ImageScorer, Prediction, ScorerFactory
from .records import Localization, SampleRecord

Progress = Callable[[int], None]


def sample_key(sample: Sample) -> str:
    return sample.path


def base_record(sample: Sample) -> SampleRecord:
    """A sample's record before scoring: its manifest row, every answer field empty."""
    return SampleRecord(
        key=sample_key(sample),
        path=sample.path,
        label=sample.label,
        generator=sample.generator,
        family=sample.family,
        scope=sample.scope,
        source=sample.source,
        format=sample.format,
        sha256_expected=sample.sha256 or None,
    )


def error_text(exc: BaseException) -> str:
    """An exception as a record's `error` value: its type and the start of its message."""
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def load_input(
    sample: Sample, pre: Preprocess, rec: SampleRecord
) -> tuple[bytes, np.ndarray | None] | None:
    """(bytes the system sees, truth mask in the same geometry), or None after recording why not."""
    try:
        data = sample.file.read_bytes()
    except OSError as exc:
        rec.error = error_text(exc)
        return None
    seen = rec.sha256_seen = hashlib.sha256(data).hexdigest()
    if sample.sha256 and seen != sample.sha256.lower():
        rec.error = f"sha256 mismatch: manifest {sample.sha256[:12]}..., file {seen[:12]}..."
        return None
    try:
        truth = load_mask(sample.mask_file) if sample.mask_file and sample.is_fake else None
        return prepare(data, pre, sample_key(sample), truth)
    except Exception as exc:  # undecodable image or mask: a value, never a crash
        rec.error = error_text(exc)
        return None


def fill(rec: SampleRecord, pred: Prediction, truth: np.ndarray | None, wants_map: bool) -> None:
    p = pred.fake_probability
    rec.fake_probability = None if p is None or not np.isfinite(p) else float(p)
    rec.scores, rec.pred_label, rec.attribution = pred.scores, pred.label, pred.attribution
    rec.refusal, rec.error, rec.usage, rec.extra = pred.refusal, pred.error, pred.usage, pred.extra
    if truth is not None and truth.any():
        hm = pred.heatmap
        if hm is None and wants_map:  # a map-producing system that flagged nothing
            hm = np.zeros(truth.shape, np.float32)
        if hm is not None:
            rec.loc = Localization.model_validate(localization_record(hm, truth))


def score_sample(system: ImageScorer, sample: Sample, pre: Preprocess) -> SampleRecord:
    start = time.perf_counter()
    rec = base_record(sample)
    loaded = load_input(sample, pre, rec)
    if loaded is not None:
        data, truth = loaded
        try:
            pred = system.predict(data, sample)
        except Exception as exc:  # one bad sample never stops a run
            pred = Prediction(error=error_text(exc))
        fill(rec, pred, truth, bool(getattr(system, "produces_heatmap", False)))
    rec.elapsed_s = round(time.perf_counter() - start, 6)
    return rec


_WORKER: dict[str, Any] = {}


def _init_worker(build: ScorerFactory, spec: str, pre: Preprocess) -> None:
    _WORKER["system"] = build(spec)
    _WORKER["pre"] = pre
    _WORKER["key"] = (spec, pre)


def _work(sample: Sample) -> SampleRecord:
    return score_sample(_WORKER["system"], sample, _WORKER["pre"])


def worker_score(build: ScorerFactory, spec: str, pre: Preprocess, sample: Sample) -> SampleRecord:
    """The pool's per-sample work for engines whose workers outlive one run (Ray): the system is
    built once per worker process and (spec, preprocess)."""
    if _WORKER.get("key") != (spec, pre):
        _init_worker(build, spec, pre)
    return _work(sample)


def pending(samples: Sequence[Sample], journal: Journal) -> list[Sample]:
    """The samples the journal has no record of: the one resume rule every engine uses."""
    return [s for s in samples if sample_key(s) not in journal.records]


def run_sync(
    build: ScorerFactory,
    spec: str,
    samples: Sequence[Sample],
    pre: Preprocess,
    journal: Journal,
    *,
    jobs: int = 1,
    progress: Progress | None = None,
    system: ImageScorer | None = None,
) -> None:
    """Score every sample not yet in the journal with the system `build(spec)` makes (or
    `system`, already built). jobs=1 runs in this process (no pickling)."""
    todo = pending(samples, journal)
    tick = progress or (lambda n: None)
    if jobs <= 1:
        sysm = system or build(spec)
        for s in todo:
            journal.add(score_sample(sysm, s, pre))
            tick(1)
        return
    with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(build, spec, pre)) as pool:
        for rec in _bounded(pool, todo, 4 * jobs):
            journal.add(rec)
            tick(1)


def _bounded(
    pool: ProcessPoolExecutor, items: Iterable[Sample], limit: int
) -> Iterable[SampleRecord]:
    """Results as they finish, with at most `limit` samples in flight (bounded memory)."""
    pending: set[Future[SampleRecord]] = set()
    for item in items:
        pending.add(pool.submit(_work, item))
        if len(pending) >= limit:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in done)
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        yield from (f.result() for f in done)
