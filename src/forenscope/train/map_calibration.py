"""Score fused tamper maps on cached expert outputs (`map_data`), the way a user gets them.

A map is judged at the fixed threshold 0.5: on a forged image by pixel F1 / IoU against the
mask (beside the oracle F1 of the best per-image threshold and the F1 of flagging every pixel),
on an untouched photo by the share of its pixels flagged. Everything runs at the cache's
working size (longer side 512), where the maps are smooth and the fitted map is computed
anyway (its `map_side`); `benchmarks/bench_localization.py` prints the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..types import ExpertResult
from .map_data import Entry

MapFn = Callable[[Entry], np.ndarray | None]


def as_results(entry: Entry) -> list[ExpertResult]:
    """The cached outputs as judged `ExpertResult`s (maps at the working size)."""
    out = []
    for name, e in entry.experts.items():
        if e.score is None or not e.judged:
            continue
        out.append(
            ExpertResult(
                expert=name,
                version="cached",
                targets=e.targets,
                score=min(1.0, max(0.0, e.score)),
                confidence=e.confidence,
                heatmap=e.heatmap,
            )
        )
    return out


def fused(entry: Entry, mode: str) -> np.ndarray | None:
    """The product's fused map (`fusion.maps.fuse_heatmaps`) at the working size."""
    from ..fusion.maps import fuse_heatmaps

    h, w = entry.truth.shape
    return fuse_heatmaps(as_results(entry), height=h, width=w, mode=mode)


@dataclass(frozen=True)
class Score:
    """One image under one map: forged images fill f1..all_forged, untouched ones `flagged`."""

    source: str
    group: str
    variant: str
    forged: bool
    f1: float = float("nan")
    iou: float = float("nan")
    oracle: float = float("nan")
    all_forged: float = float("nan")
    flagged: float = float("nan")


def _f1_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    tp = float(np.count_nonzero(pred & truth))
    fp = float(np.count_nonzero(pred & ~truth))
    fn = float(np.count_nonzero(~pred & truth))
    return (2 * tp / (2 * tp + fp + fn) if tp else 0.0), (tp / (tp + fp + fn) if tp else 0.0)


def oracle_f1(heatmap: np.ndarray, truth: np.ndarray, steps: int = 51) -> float:
    """ORACLE: the best F1 over thresholds, chosen with the ground truth (an upper bound)."""
    return max(_f1_iou(heatmap >= t, truth)[0] for t in np.linspace(0.0, 1.0, steps))


def score(entry: Entry, heatmap: np.ndarray | None, threshold: float = 0.5) -> Score:
    hm = np.zeros(entry.truth.shape, np.float32) if heatmap is None else heatmap
    pred = hm >= threshold
    base = (entry.sample.source, entry.group, entry.variant)
    if not entry.forged:
        return Score(*base, forged=False, flagged=float(pred.mean()))
    truth = entry.truth >= 0.5
    f1, iou = _f1_iou(pred, truth)
    all_forged = 2 * truth.mean() / (1 + truth.mean())
    return Score(*base, True, f1, iou, oracle_f1(hm, truth), float(all_forged))


def score_all(entries: Iterable[Entry], fn: MapFn) -> list[Score]:
    return [score(e, fn(e)) for e in entries]


def flagged_summary(scores: Iterable[Score], over: float = 0.01) -> tuple[float, float, float]:
    """(median flagged share, mean flagged share, share of photos over `over` flagged)."""
    f = np.array([s.flagged for s in scores if not s.forged])
    if not f.size:
        return float("nan"), float("nan"), float("nan")
    return float(np.median(f)), float(f.mean()), float(np.mean(f > over))
