"""Batch jobs: items are recorded before they run, so a restart resumes what was left."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Sequence

from .blobs import BlobStore
from .engine import Analyzer
from .fetch import FetchPolicy, fetch_image_bytes
from .store import Store

WorkItem = tuple[str, int]


class JobRunner:
    """One background thread works through job items in submission order."""

    def __init__(
        self, analyzer: Analyzer, store: Store, blobs: BlobStore, policy: FetchPolicy
    ) -> None:
        self.analyzer = analyzer
        self.store = store
        self.blobs = blobs
        self.policy = policy
        self._queue: queue.Queue[WorkItem | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> None:
        """Start the worker and requeue items a previous process did not finish."""
        with self._lock:
            if self._thread is not None:
                return
            for item in self.store.unfinished_items():
                self._queue.put((item.job_id, item.idx))
            self._thread = threading.Thread(target=self._work, name="forenscope-jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the item being analysed, leave the rest queued in the store for next start."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._queue.put(None)
            thread.join(timeout)

    def submit(
        self, entries: Sequence[tuple[str | None, str, str]], experts: list[str] | None,
        threshold: float | None,
    ) -> str:  # fmt: skip
        """entries: (display name, "upload" | "url", staged sha256 | URL). Returns the job id."""
        job_id = uuid.uuid4().hex
        params = json.dumps({"experts": experts, "threshold": threshold})
        self.store.add_job(job_id, list(entries), params)
        for idx in range(len(entries)):
            self._queue.put((job_id, idx))
        self.start()
        return job_id

    def _work(self) -> None:
        while not self._stopping.is_set():
            work = self._queue.get()
            if work is None or self._stopping.is_set():
                return
            self._run_item(*work)

    def _run_item(self, job_id: str, idx: int) -> None:
        item = self.store.get_item(job_id, idx)
        if item is None or item.status in ("done", "failed"):
            return
        self.store.set_item(job_id, idx, "running")
        params = json.loads(self.store.job_params(job_id))
        try:
            if item.kind == "upload":
                data = self.blobs.staged(item.ref)
                url = None
            else:
                data, url = fetch_image_bytes(item.ref, self.policy)
            outcome = self.analyzer.analyze_bytes(
                data, filename=item.name, source="batch", url=url, job_id=job_id,
                experts=params.get("experts"), threshold=params.get("threshold"),
            )  # fmt: skip
        except Exception as exc:  # stored as a value: one bad item must not stall the queue
            self.store.set_item(job_id, idx, "failed", error=f"{type(exc).__name__}: {exc}")
            self.analyzer.metrics.observe_failure(type(exc).__name__)
        else:
            self.store.set_item(job_id, idx, "done", analysis_id=outcome.row.id)
        if item.kind == "upload":
            self.blobs.unstage_except(self.store.staged_refs_in_use())
