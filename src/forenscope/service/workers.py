"""Analyses in worker processes: a wall-clock limit per image, and a crash costs one analysis.

Each of the server's analysis slots owns one process (a `batch.WorkerPool` of one). A worker
that overruns `timeout_s` is killed and replaced and its request gets an error; one killed by
the OOM killer or a crash in native code costs its own request alone. Workers die with the
server (PR_SET_PDEATHSIG) and hold their own models, so a long analysis never holds the
server's GIL: /v1/health and the other routes stay responsive.
"""

from __future__ import annotations

import logging
import pickle
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .. import allocator
from ..batch import WorkerFailure, WorkerPool
from ..errors import ForenscopeError, InputError
from ..io.limits import Limits

_log = logging.getLogger(__name__)
WARM_UP_SIDE = 256


class AnalysisTimeoutError(InputError):
    """The analysis overran the server's per-image time limit; its worker was replaced."""


class WorkerCrashedError(ForenscopeError):
    """The worker process analysing this image died (out of memory, or a native crash)."""


class AnalysisCancelledError(ForenscopeError):
    """The client cancelled the analysis; its worker (if it had started) was replaced."""


class RunHandle:
    """One analysis that a client follows (its working folder, see stages.py) and may cancel
    from another thread: `cancel` kills the worker process running it, if any."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.workdir: Path | None = None
        self._lock = threading.Lock()
        self._cancelled = False
        self._kill: Callable[[], None] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            kill = self._kill
        if kill is not None:
            kill()

    def check(self) -> None:
        if self._cancelled:
            raise AnalysisCancelledError("the analysis was cancelled")

    def bind(self, kill: Callable[[], None] | None) -> None:
        """`kill` stops the run from now on (None: it cannot be stopped); raises if cancelled."""
        with self._lock:
            self.check()
            self._kill = kill

    def unbind(self) -> None:
        with self._lock:
            self._kill = None


def run_task(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """In a worker: `fn(*args)`, with an exception returned as a value (so the worker lives
    on). An exception that cannot cross the pipe comes back as a RuntimeError with its text."""
    try:
        return fn(*args)
    except Exception as exc:
        try:
            pickle.loads(pickle.dumps(exc))
        except Exception:
            return RuntimeError(f"{type(exc).__name__}: {exc}")
        return exc
    finally:
        # The analysis kept its freed arrays' pages for reuse (allocator.tune); an idle worker
        # gives them back, so the memory budget stays an honest account of the machine.
        allocator.release()


def analyze_into(
    data: bytes, limits: Limits, experts: Sequence[str] | None, threshold: float,
    threads: int | None, out_dir: str,
) -> None:  # fmt: skip
    """In a worker: decode, analyse and write every file the API serves into `out_dir`, with
    each stage logged there as it finishes (stages.py): metadata, experts, verdict, maps."""
    from ..inspect import metadata_panel
    from ..io import load_image
    from ..pipeline import analyze_image
    from .report_files import write_files
    from .stages import StageWriter

    out = Path(out_dir)
    stages = StageWriter(out)
    image = load_image(data, limits=limits)
    stages.metadata(metadata_panel(image))
    report = analyze_image(
        image, experts=experts, threshold=threshold, threads=threads, on_expert=stages.expert
    )
    stages.verdict(report.verdict)
    write_files(report, image, out, on_map=stages.map_written)


def analyze_to_json(
    data: bytes, limits: Limits, experts: Sequence[str] | None, threshold: float,
    threads: int | None,
) -> str:  # fmt: skip
    """In a worker: decode and analyse; the report as JSON, which leaves its maps behind (a
    12 MP photo's heatmaps are hundreds of MB; the JSON is a few KB through the pipe)."""
    from ..io import load_image
    from ..pipeline import analyze_image

    image = load_image(data, limits=limits)
    report = analyze_image(image, experts=experts, threshold=threshold, threads=threads)
    return report.model_dump_json()


def warm_up_analysis(experts: Sequence[str] | None, limits: Limits) -> None:
    """Analyse a small synthetic picture with `experts`, so their models are loaded (in a
    worker, or in the server with isolation='thread'). A failure is logged, not raised: the
    same error then reaches the request that hits it."""
    import numpy as np

    from ..io import load_image
    from ..pipeline import analyze_image
    from .report_files import png_bytes

    rgb = np.random.default_rng(0).integers(0, 256, (WARM_UP_SIDE, WARM_UP_SIDE, 3), np.uint8)
    try:
        image = load_image(png_bytes(rgb), limits=limits)
        analyze_image(image, experts=experts, threads=1)
    except Exception:  # logged: see the docstring
        _log.warning("warm-up analysis failed", exc_info=True)


class AnalysisProcesses:
    """`count` worker processes, one per analysis slot; `call` runs a task on a free one.

    A worker that was stopped or died is replaced at once and warmed (its models loaded, with
    no time limit) before it takes the next analysis, so a new worker's start-up never counts
    against an image's time limit."""

    def __init__(
        self, count: int, timeout_s: float | None, experts: Sequence[str] | None,
        limits: Limits,
    ) -> None:  # fmt: skip
        self.timeout_s = timeout_s
        self._warm_args = (experts, limits)
        self._pools: list[WorkerPool[int, Any]] = [
            WorkerPool(run_task, 1, timeout_s=timeout_s) for _ in range(count)
        ]
        self._free: queue.SimpleQueue[WorkerPool[int, Any]] = queue.SimpleQueue()
        for pool in self._pools:
            self._free.put(pool)
        # Every worker is started on this one thread, which lives as long as the pools: a
        # worker dies with the thread that started it (PR_SET_PDEATHSIG), and the threads that
        # run requests come and go.
        self._spawner = ThreadPoolExecutor(1, thread_name_prefix="forenscope-spawner")

    def call(self, fn: Callable[..., Any], *args: Any, handle: RunHandle | None = None) -> Any:
        """`fn(*args)` in a worker; its exception is raised here. Past the time limit:
        AnalysisTimeoutError; a dead worker: WorkerCrashedError; cancelled through `handle`:
        AnalysisCancelledError (the worker, if it was running it, is replaced)."""
        pool = self._free.get()
        try:
            result = self._run_one(pool, fn, args, handle)
        except AnalysisCancelledError:  # before the task was given: the worker is untouched
            self._free.put(pool)
            raise
        if not isinstance(result, WorkerFailure):
            self._free.put(pool)
            if handle is not None:
                handle.check()  # it finished as it was cancelled: the client asked for nothing
        elif handle is not None and handle.cancelled:
            self._rewarm(pool)
            raise AnalysisCancelledError("the analysis was cancelled; its worker was stopped")
        elif result.timed_out:
            self._rewarm(pool)
            raise AnalysisTimeoutError(
                f"the analysis took longer than the server's limit of {self.timeout_s:g} s; "
                "it was stopped"
            )
        else:
            self._rewarm(pool)
            raise WorkerCrashedError(result.reason.replace("this file", "this image"))
        if isinstance(result, BaseException):
            raise result
        return result

    def warm_up(self) -> None:
        """Start every worker and load its models, all at once; returns when all are ready."""
        pools = [self._free.get() for _ in self._pools]
        threads = [self._rewarm(pool) for pool in pools]
        for t in threads:
            t.join()

    def _rewarm(self, pool: WorkerPool[int, Any]) -> threading.Thread:
        """Warm `pool`'s (new) worker on a thread of its own, then free the pool for work."""

        def warm() -> None:
            try:
                self._warm(pool)
            finally:
                self._free.put(pool)

        thread = threading.Thread(target=warm, name="forenscope-warm-up", daemon=True)
        thread.start()
        return thread

    def _warm(self, pool: WorkerPool[int, Any]) -> None:
        """Start `pool`'s worker if it has none and load its models, with no time limit."""
        pool.timeout_s = None  # starting Python and loading models is not an analysis
        try:
            self._spawner.submit(pool.fill).result()
            _run_task_on(pool, warm_up_analysis, self._warm_args)
        except Exception:  # closed while warming (stopping), or could not start one
            _log.warning("could not start an analysis worker", exc_info=True)
        finally:
            pool.timeout_s = self.timeout_s

    def worker_pids(self) -> list[int]:
        return [w.process.pid for p in self._pools for w in p.workers if w.process.pid]

    def close(self) -> None:
        for pool in self._pools:
            pool.close()
        self._spawner.shutdown(wait=False)

    def _run_one(
        self, pool: WorkerPool[int, Any], fn: Callable[..., Any], args: tuple[Any, ...],
        handle: RunHandle | None,
    ) -> Any:  # fmt: skip
        try:
            started = self._spawner.submit(pool.fill).result()
        except RuntimeError:  # the spawner is shut down: close() has run
            raise WorkerCrashedError("the server is stopping; retry shortly") from None
        if started:
            self._warm(pool)  # an idle worker had died: its successor's start-up is not timed
        if handle is not None:
            handle.bind(lambda: _kill_busy(pool))
        try:
            return _run_task_on(pool, fn, args)
        finally:
            if handle is not None:
                handle.unbind()


def _kill_busy(pool: WorkerPool[int, Any]) -> None:
    """Kill the worker holding a task (a cancelled analysis); `run` then reports it dead."""
    for worker in list(pool.workers):
        if worker.busy and worker.process.is_alive():
            worker.process.kill()


def _run_task_on(pool: WorkerPool[int, Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    ((_, result),) = list(pool.run([(0, (fn, args))]))
    return result
