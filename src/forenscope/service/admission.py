"""Admission of analyses, shared by `serve` and `serve-openai`: a cap on waiting analyses, the
analysis slots, a memory budget summed over the running analyses, and (isolation='process')
the worker processes that run them under a per-image time limit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..io.limits import Limits
from .settings import AnalysisSettings
from .workers import AnalysisProcesses, RunHandle, warm_up_analysis


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


class AnalysisGate:
    """Where every analysis of a server waits for its turn, and (with worker processes) runs.

    `admitted(width, height)` holds a slot and the image's share of the memory budget for the
    length of the block; with more than `max_pending` already waiting it raises BusyError.
    `processes` is None with isolation='thread'.
    """

    def __init__(self, settings: AnalysisSettings, max_bytes: int, max_pending: int) -> None:
        self.settings = settings
        self.limits: Limits = settings.limits(max_bytes)
        self.memory = MemoryGate(self.limits.max_memory_bytes)
        self.max_pending = max_pending
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

    @contextmanager
    def admitted(self, width: int, height: int) -> Iterator[None]:
        with self._count_lock:
            if self.pending >= self.max_pending:
                raise BusyError("too many analyses are waiting; retry later")
            self.pending += 1
        try:
            self._slots.acquire()
        finally:
            with self._count_lock:
                self.pending -= 1
        need = self.limits.estimated_bytes(width, height)
        try:
            self.memory.acquire(need)
            with self._count_lock:
                self.busy += 1
            try:
                yield
            finally:
                with self._count_lock:
                    self.busy -= 1
                self.memory.release(need)
        finally:
            self._slots.release()

    def run(
        self, in_worker: Callable[..., Any], *args: Any, handle: RunHandle | None = None
    ) -> Any:
        """`in_worker(*args)` in a worker process (time-limited; see AnalysisProcesses.call),
        or on this thread with isolation='thread'. Call it inside `admitted`. Cancelled through
        `handle`: AnalysisCancelledError (a thread cannot be stopped: its result is dropped)."""
        if self.processes is not None:
            return self.processes.call(in_worker, *args, handle=handle)
        if handle is not None:
            handle.check()
        result = in_worker(*args)
        if handle is not None:
            handle.check()
        return result
