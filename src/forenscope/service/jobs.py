"""Batch jobs: items are recorded before they run, so a restart resumes what was left.

A running item can be followed (its staged results, stages.py) and a job cancelled: queued
items are marked cancelled and a running one's worker process is killed (the pool replaces it).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Sequence

from .blobs import BlobStore
from .engine import Analyzer
from .fetch import FetchPolicy, fetch_image_bytes
from .stages import Stages, read_stages, staged_overlay
from .store import Store
from .workers import AnalysisCancelledError, RunHandle

WorkItem = tuple[str, int]


class JobRunner:
    """`threads` background threads (one per analysis slot) work through job items in
    submission order, so one upload's job does not wait behind another's."""

    def __init__(
        self, analyzer: Analyzer, store: Store, blobs: BlobStore, policy: FetchPolicy,
        threads: int = 1,
    ) -> None:  # fmt: skip
        self.analyzer = analyzer
        self.store = store
        self.blobs = blobs
        self.policy = policy
        self.threads = max(1, threads)
        self._queue: queue.Queue[WorkItem | None] = queue.Queue()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # Items being analysed; the lock makes "queued -> running" and "cancel" atomic.
        self._running: dict[WorkItem, RunHandle] = {}
        self._items_lock = threading.Lock()

    def start(self) -> None:
        """Start the workers and requeue items a previous process did not finish."""
        with self._lock:
            if self._workers:
                return
            for item in self.store.unfinished_items():
                self._queue.put((item.job_id, item.idx))
            for n in range(self.threads):
                thread = threading.Thread(target=self._work, name=f"forenscope-jobs-{n}",
                                          daemon=True)  # fmt: skip
                thread.start()
                self._workers.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the items being analysed, leave the rest queued in the store for next start."""
        with self._lock:
            workers, self._workers = self._workers, []
        if workers:
            self._stopping.set()
            for _ in workers:
                self._queue.put(None)
            for thread in workers:
                thread.join(timeout)

    def cancel(self, job_id: str) -> bool:
        """Cancel the job's queued items and stop its running ones; False: no such job. The
        running items become 'cancelled' once their worker is gone (milliseconds)."""
        found = self.store.get_job(job_id)
        if found is None:
            return False
        refs = []
        with self._items_lock:
            for item in found[2]:
                if item.status == "queued":
                    self.store.set_item(job_id, item.idx, "cancelled")
                    if item.kind == "upload":
                        refs.append(item.ref)
                elif (handle := self._running.get((job_id, item.idx))) is not None:
                    handle.cancel()
        if refs:
            self.blobs.unstage(refs, keep=self.store.staged_refs_in_use())
        return True

    def stages(self, job_id: str, idx: int) -> Stages | None:
        """What the running item has produced so far; None when it is not running here."""
        handle = self._running.get((job_id, idx))
        if handle is None:
            return None
        if handle.workdir is None:  # waiting for a slot, or its report was stored already
            return Stages(elapsed_s=round(time.monotonic() - handle.started, 3))
        stages = read_stages(handle.workdir, handle.started)
        base = f"/v1/jobs/{job_id}/items/{idx}/overlays"
        return stages.model_copy(update={"overlays": {n: f"{base}/{n}.png" for n in stages.maps}})

    def staged_overlay(self, job_id: str, idx: int, name: str) -> bytes | None:
        """A map the running item has written so far; None when it has not, or is not running."""
        handle = self._running.get((job_id, idx))
        if handle is None or handle.workdir is None:
            return None
        return staged_overlay(handle.workdir, name)

    def submit(
        self, entries: Sequence[tuple[str | None, str, str]], experts: list[str] | None,
        threshold: float | None, reused: dict[int, str] | None = None,
    ) -> str:  # fmt: skip
        """entries: (display name, "upload" | "url", staged sha256 | URL); `reused`: items
        (by index) already analysed, with the id of that analysis. Returns the job id."""
        job_id = uuid.uuid4().hex
        params = json.dumps({"experts": experts, "threshold": threshold})
        self.store.add_job(job_id, list(entries), params)
        for idx in range(len(entries)):
            if reused and idx in reused:
                self.store.set_item(job_id, idx, "done", analysis_id=reused[idx])
            else:
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
        with self._items_lock:
            item = self.store.get_item(job_id, idx)
            if item is None or item.status in ("done", "failed", "cancelled"):
                return
            self.store.set_item(job_id, idx, "running")
            handle = self._running[(job_id, idx)] = RunHandle()
        params = json.loads(self.store.job_params(job_id))
        try:
            if item.kind == "upload":
                data = self.blobs.staged(item.ref)
                url = None
            else:
                data, url = fetch_image_bytes(item.ref, self.policy)
            outcome = self.analyzer.analyze_bytes(
                data, filename=item.name, source="batch", url=url, job_id=job_id,
                experts=params.get("experts"), threshold=params.get("threshold"), handle=handle,
            )  # fmt: skip
        except AnalysisCancelledError:
            self.store.set_item(job_id, idx, "cancelled")
        except Exception as exc:  # stored as a value: one bad item must not stall the queue
            self.store.set_item(job_id, idx, "failed", error=f"{type(exc).__name__}: {exc}")
            self.analyzer.metrics.observe_failure(type(exc).__name__)
        else:
            self.store.set_item(job_id, idx, "done", analysis_id=outcome.row.id)
        finally:
            with self._items_lock:
                self._running.pop((job_id, idx), None)
        if item.kind == "upload":  # its bytes now live with the report (or are not wanted)
            in_use = self.store.staged_refs_in_use()
            self.blobs.unstage([item.ref], keep=in_use)
            self.blobs.unstage_except(in_use)
