"""Runs analyses for the service: sniff, decode under limits, analyse, store files and row."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import ImageTooLargeError, InputError
from ..io.image import probe_image
from ..types import Report, VideoReport
from ..video.options import DEFAULT_MAX_SIDE
from .admission import AnalysisGate
from .blobs import BlobStore, params_key
from .clips import analyze_clip_into, check_clip_bytes, is_clip_upload
from .metrics import Metrics
from .report_files import NAME_RE
from .security import sniff_image
from .settings import Settings
from .store import AnalysisRow, Store, utcnow
from .workers import RunHandle, analyze_into

HEAD_PROBE_BYTES = 256 * 1024  # holds the header of nearly every image


class UnsupportedMediaError(InputError):
    """The bytes do not start like any accepted image or clip format (whatever the name says)."""


UNSUPPORTED = (
    "is not an image or a video clip of a supported format (checked by its leading bytes, not "
    "its name or declared type)"
)


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
        self.gate = AnalysisGate(settings, settings.max_upload_bytes, settings.max_pending)
        self.limits = self.gate.limits

    @property
    def busy(self) -> int:
        return self.gate.busy

    @property
    def pending(self) -> int:
        return self.gate.pending

    def warm_up(self) -> None:
        self.gate.warm_up()

    def close(self) -> None:
        self.gate.close()

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
        job_id: str | None = None, handle: RunHandle | None = None,
    ) -> StoredAnalysis:  # fmt: skip
        """Analyse (or reuse the stored report of) these bytes and record a new analysis.
        `handle`: the caller follows the stages and may cancel (AnalysisCancelledError)."""
        kind = self.media_kind(data)
        names = self.check_experts(experts)
        # Header only: an image over the memory budget is refused now, before it waits in the
        # queue or a pixel is decoded. A clip's frames are analysed at most this size.
        size = (DEFAULT_MAX_SIDE,) * 2 if kind == "clip" else probe_image(data, self.limits)
        thr = self.settings.threshold if threshold is None else threshold
        sha = hashlib.sha256(data).hexdigest()
        key = params_key(names, thr, __version__)
        cached = self.blobs.has_report(sha, key)
        if not cached:
            self._run(data, sha, key, names, thr, size, handle, kind)
        report = self.read_kind_report(sha, key, kind)
        shape = report.clip if isinstance(report, VideoReport) else report.image
        row = AnalysisRow(
            id=uuid.uuid4().hex, created_at=utcnow(), sha256=sha, params_key=key,
            filename=display_name(filename), source=source, url=url,
            label=report.verdict.label, probability=report.verdict.probability,
            decided_by=report.verdict.decided_by, width=shape.width, height=shape.height,
            job_id=job_id, kind=kind,
        )  # fmt: skip
        self.store.add_analysis(row)
        self.metrics.observe_analysis(row.label, cached)
        return StoredAnalysis(row, cached)

    def media_kind(self, data: bytes, name: str = "upload") -> str:
        """ "clip" or "image" for these bytes, each within its own byte limit; 413 over it,
        UnsupportedMediaError (415) when they are neither."""
        if is_clip_upload(data):
            check_clip_bytes(len(data), self.settings.max_clip_bytes, name)
            return "clip"
        self.limits.check_bytes(len(data), name)
        if sniff_image(data) is None:
            raise UnsupportedMediaError(f"{name!r} {UNSUPPORTED}")
        return "image"

    def analysed_before(
        self, entries: Sequence[tuple[str | None, str, str]], names: list[str] | None,
        threshold: float | None,
    ) -> dict[int, str]:  # fmt: skip
        """Job entries (uploads, by the sha256 the server computed) already analysed with these
        parameters: index -> the newest such analysis."""
        thr = self.settings.threshold if threshold is None else threshold
        key = params_key(names, thr, __version__)
        found = {}
        for idx, (_name, kind, ref) in enumerate(entries):
            if kind == "upload" and (analysis := self.store.analysis_of(ref, key)) is not None:
                if self.blobs.has_report(ref, key):
                    found[idx] = analysis
        return found

    def _run(
        self, data: bytes, sha: str, key: str, names: list[str] | None, thr: float,
        size: tuple[int, int], handle: RunHandle | None = None, kind: str = "image",
    ) -> None:  # fmt: skip
        threads = self.settings.expert_threads

        def fill(folder: Path) -> None:
            if handle is not None:
                handle.workdir = folder  # where the worker logs its stages
            if kind == "clip":  # same workers, slots and per-item time limit as an image
                self.gate.run(analyze_clip_into, data, names, thr, threads, str(folder),
                              handle=handle)  # fmt: skip
            else:
                self.gate.run(analyze_into, data, self.limits, names, thr, threads,
                              str(folder), handle=handle)  # fmt: skip

        with self.gate.admitted(*size):
            if handle is not None:
                handle.check()  # cancelled while it waited for a slot
            self.blobs.write_report_dir(sha, key, fill)

    def read_report(self, sha: str, key: str) -> Report:
        """An image's report (see read_kind_report for a row that may be a clip)."""
        path = self.blobs.report_dir(sha, key) / "report.json"
        return Report.model_validate_json(path.read_text(encoding="utf-8"))

    def read_kind_report(self, sha: str, key: str, kind: str) -> Report | VideoReport:
        if kind != "clip":
            return self.read_report(sha, key)
        path = self.blobs.report_dir(sha, key) / "report.json"
        return VideoReport.model_validate_json(path.read_text(encoding="utf-8"))

    def overlay_names(self, row: AnalysisRow) -> list[str]:
        path = self.blobs.artefact(row.sha256, row.params_key, "index.json")
        if path is None:
            return []
        names = json.loads(path.read_text(encoding="utf-8")).get("overlays", [])
        return [str(n) for n in names if isinstance(n, str) and NAME_RE.fullmatch(n)]
