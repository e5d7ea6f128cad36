"""Runs analyses for the service: sniff, decode under limits, analyse, store files and row."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .. import __version__
from ..errors import ImageTooLargeError, InputError
from ..io import ImageInput, load_image
from ..io.image import probe_image
from ..io.limits import MB, Limits
from ..types import Report
from .blobs import BlobStore, params_key
from .metrics import Metrics
from .security import NAME_PATTERN, sniff_image
from .settings import Settings
from .store import AnalysisRow, Store, utcnow
from .workers import AnalysisProcesses, analyze_into

_log = logging.getLogger(__name__)
WARM_UP_SIDE = 256
HEAD_PROBE_BYTES = 256 * 1024  # holds the header of nearly every image
MAX_THREADS_COUNTED = 4  # the memory estimate was measured for 1-2 expert threads; capped
OVERLAY_SIDE = 800
PREVIEW_SIDE = 1600
_NAME_RE = re.compile(NAME_PATTERN)


class UnsupportedMediaError(InputError):
    """The bytes do not start like any accepted image format (whatever the name says)."""


class BusyError(Exception):
    """Too many analyses are already waiting."""


class MemoryGate:
    """Admits analyses while the sum of their estimated peaks stays within the budget.

    An image whose own estimate is over the whole budget never gets here (it is refused at
    upload); the others wait until enough running analyses have finished.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, need: int) -> None:
        need = min(need, self.budget)
        with self._cond:
            self._cond.wait_for(lambda: self.used + need <= self.budget)
            self.used += need

    def release(self, need: int) -> None:
        with self._cond:
            self.used -= min(need, self.budget)
            self._cond.notify_all()


@dataclass(frozen=True)
class StoredAnalysis:
    row: AnalysisRow
    cached: bool


def display_name(name: str | None) -> str | None:
    """A client file name reduced to a label for display; it is never used as a path."""
    if not name:
        return None
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(ch for ch in base if ch.isprintable())[:200].strip()
    return base or None


class Analyzer:
    def __init__(self, settings: Settings, store: Store, blobs: BlobStore, metrics: Metrics):
        self.settings = settings
        self.store = store
        self.blobs = blobs
        self.metrics = metrics
        self.limits = Limits(
            max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels,
            max_memory_bytes=settings.memory_budget_mb * MB,
            expert_threads=settings.expert_threads or min(os.cpu_count() or 1, MAX_THREADS_COUNTED),
        )  # fmt: skip
        self.memory = MemoryGate(self.limits.max_memory_bytes)
        self.processes = (
            AnalysisProcesses(
                settings.workers, settings.analysis_timeout_s, settings.experts, self.limits
            )
            if settings.isolation == "process"
            else None
        )
        self._slots = threading.BoundedSemaphore(settings.workers)
        self._count_lock = threading.Lock()
        self.busy = 0
        self.pending = 0

    def warm_up(self) -> None:
        """Load every model of the server's experts before serving (in each worker process,
        or here): a model's first use builds its session (ONNX, TFLite) holding the GIL for up
        to a second, which stalled every route, /v1/health included, under the first analyses."""
        if self.processes is not None:
            self.processes.warm_up()
        else:
            warm_up_analysis(self.settings.experts, self.limits)

    def close(self) -> None:
        if self.processes is not None:
            self.processes.close()

    def refuse_over_budget(self, head: bytes, name: str = "upload") -> None:
        """ImageTooLargeError (413) when the first bytes of an upload already show an image over
        the pixel or memory limit, before the rest is read into memory (32 uploads of 19 MB
        each held 600 MB only to be refused). A header not within `head` is checked later, on
        the whole upload."""
        try:
            probe_image(head, self.limits, name)
        except ImageTooLargeError:
            raise
        except Exception:  # cut off mid-header, or not an image: the full checks decide
            return

    def check_experts(self, names: Sequence[str] | None) -> list[str] | None:
        """The request's experts, deduplicated and checked; None = the server's set.

        An empty list is refused (InputError): no expert would vote and the verdict would say
        nothing. So is an unknown name (UnknownExpertError) or an absurdly long list.
        """
        if names is None:
            return self.settings.experts
        from ..experts.registry import check_expert_names

        return check_expert_names(names)

    def analyze_bytes(
        self, data: bytes, *, filename: str | None, source: str, url: str | None = None,
        experts: Sequence[str] | None = None, threshold: float | None = None,
        job_id: str | None = None,
    ) -> StoredAnalysis:  # fmt: skip
        """Analyse (or reuse the stored report of) these bytes and record a new analysis."""
        self.limits.check_bytes(len(data), "upload")
        if sniff_image(data) is None:
            raise UnsupportedMediaError(
                "the content is not an image of a supported format (checked by its leading "
                "bytes, not its name or declared type)"
            )
        names = self.check_experts(experts)
        # Header only: an image over the memory budget is refused now, before it waits in the
        # queue or a pixel is decoded.
        width, height = probe_image(data, self.limits)
        thr = self.settings.threshold if threshold is None else threshold
        sha = hashlib.sha256(data).hexdigest()
        key = params_key(names, thr, __version__)
        cached = self.blobs.has_report(sha, key)
        if cached:
            report = self.read_report(sha, key)
        else:
            report = self._run(data, sha, key, names, thr, (width, height))
        row = AnalysisRow(
            id=uuid.uuid4().hex, created_at=utcnow(), sha256=sha, params_key=key,
            filename=display_name(filename), source=source, url=url,
            label=report.verdict.label, probability=report.verdict.probability,
            decided_by=report.verdict.decided_by, width=report.image.width,
            height=report.image.height, job_id=job_id,
        )  # fmt: skip
        self.store.add_analysis(row)
        self.metrics.observe_analysis(row.label, cached)
        return StoredAnalysis(row, cached)

    def _run(
        self, data: bytes, sha: str, key: str, names: list[str] | None, thr: float,
        size: tuple[int, int],
    ) -> Report:  # fmt: skip
        from ..pipeline import analyze_image

        with self._count_lock:
            if self.pending >= self.settings.max_pending:
                raise BusyError("too many analyses are waiting; retry later")
            self.pending += 1
        try:
            self._slots.acquire()
        finally:
            with self._count_lock:
                self.pending -= 1
        need = self.limits.estimated_bytes(*size)
        try:
            self.memory.acquire(need)
            with self._count_lock:
                self.busy += 1
            try:
                if self.processes is not None:
                    run = self.processes.call
                    self.blobs.write_report_dir(sha, key, lambda d: run(
                        analyze_into, data, self.limits, names, thr,
                        self.settings.expert_threads, str(d)))  # fmt: skip
                    report = self.read_report(sha, key)
                else:
                    image = load_image(data, limits=self.limits)
                    report = analyze_image(
                        image, experts=names, threshold=thr, threads=self.settings.expert_threads
                    )
                    self.blobs.write_report_dir(sha, key, lambda d: write_files(report, image, d))
            finally:
                with self._count_lock:
                    self.busy -= 1
                self.memory.release(need)
        finally:
            self._slots.release()
        return report

    def read_report(self, sha: str, key: str) -> Report:
        path = self.blobs.report_dir(sha, key) / "report.json"
        return Report.model_validate_json(path.read_text(encoding="utf-8"))

    def overlay_names(self, row: AnalysisRow) -> list[str]:
        path = self.blobs.artefact(row.sha256, row.params_key, "index.json")
        if path is None:
            return []
        names = json.loads(path.read_text(encoding="utf-8")).get("overlays", [])
        return [str(n) for n in names if isinstance(n, str) and _NAME_RE.fullmatch(n)]


def warm_up_analysis(experts: Sequence[str] | None, limits: Limits) -> None:
    """Analyse a small synthetic picture with `experts`, so their models are loaded. A failure
    is logged, not raised: the same error then reaches the request that hits it."""
    from ..pipeline import analyze_image

    rgb = np.random.default_rng(0).integers(0, 256, (WARM_UP_SIDE, WARM_UP_SIDE, 3), np.uint8)
    try:
        image = load_image(png_bytes(rgb), limits=limits)
        analyze_image(image, experts=experts, threads=1)
    except Exception:  # logged: see the docstring
        _log.warning("warm-up analysis failed", exc_info=True)


def write_files(report: Report, image: ImageInput, out: Path) -> None:
    """Everything the API serves for one report, written into `out`."""
    from ..report import write_report
    from ..report.overlays import heatmap_rgba, mask_outline_rgba

    write_report(report, image, out, stem="report")  # report.{json,md,html} + map sidecars
    size = _fit(image.width, image.height, OVERLAY_SIDE)
    overlays: list[str] = []
    for result in report.experts:
        if result.heatmap is not None and _NAME_RE.fullmatch(result.expert):
            rgba = heatmap_rgba(result.heatmap, size=size)
            (out / f"overlay.expert.{result.expert}.png").write_bytes(png_bytes(rgba))
            overlays.append(result.expert)
    if report.fused_heatmap is not None:
        rgba = heatmap_rgba(report.fused_heatmap, size=size)
        (out / "overlay.fused.png").write_bytes(png_bytes(rgba))
    if report.fused_mask is not None:
        outline = mask_outline_rgba(report.fused_mask, size=size, width=3)
        (out / "overlay.mask.png").write_bytes(png_bytes(outline))
    (out / "preview.jpg").write_bytes(preview_jpeg(image.rgb))
    (out / "original.bin").write_bytes(image.data)  # for the analyst's tools (routes_inspect)
    (out / "index.json").write_text(json.dumps({"overlays": overlays}), encoding="utf-8")


def png_bytes(array: np.ndarray) -> bytes:
    """Fast PNG (zlib level 3, no optimise pass): overlays are written once per analysis."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def preview_jpeg(rgb: np.ndarray) -> bytes:
    """A re-encoded copy of the picture for the browser (never the uploaded bytes themselves)."""
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).convert("RGB")
    img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=88)
    return buf.getvalue()


def _fit(width: int, height: int, side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))
