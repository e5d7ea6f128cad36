"""Batch analysis of many files: parallel, resumable, and never stopped by one bad file.

Every finished file (report written, or error recorded) is appended to `<out>/index.jsonl` and
flushed before the next one is reported, so a killed run resumes where it stopped: files already
in the index are skipped, none is analysed twice and none is lost. An index entry counts only for
the same path, the same bytes (sha256) and the same settings (`batch_config_key`: the analysis
configuration, the experts, the threshold and the LLM); a rerun under other settings analyses
the file again, and an entry written before settings were recorded is stale.

With `jobs > 1` the files go to worker processes (`WorkerPool`) that each analyse one file at a
time with one BLAS/OpenMP/onnxruntime thread (`one_thread_per_process`): a worker that dies (the
OOM killer, a crash in native code) or overruns the per-file time limit costs only the file it
had, and is replaced; workers die with their parent.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from .errors import ForenscopeError, InputError

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from .io.limits import Limits
    from .mllm.config import LLMConfig
    from .pipeline import ExpertDone
    from .types import ExpertResult

Status = Literal["clean", "suspicious", "inconclusive", "error"]
INDEX_NAME = "index.jsonl"
IMAGE_SUFFIXES = {
    ".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif",
    ".heic", ".heif", ".avif",
}  # fmt: skip


@dataclass
class FileOutcome:
    """What happened to one input file."""

    path: str
    status: Status
    sha256: str | None = None
    label: str | None = None
    probability: float | None = None
    summary: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    error: dict[str, str] | None = None
    config: str = ""  # batch_config_key of the settings it was analysed under
    report_json: str | None = None  # not stored in the index

    def index_record(self) -> dict[str, Any]:
        record = asdict(self)
        record.pop("report_json")
        return record


def expand_inputs(items: Sequence[str]) -> list[Path]:
    """Files as given, folders (recursively, image suffixes only) and glob patterns, deduplicated.

    A named path that does not exist raises InputError; a pattern that matches nothing too.
    """
    found: dict[Path, None] = {}
    for item in items:
        path = Path(item)
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                    found[p] = None
        elif path.exists():
            found[path] = None
        elif glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            files = [p for p in matches if p.is_file()]
            if not files:
                raise InputError(f"no file matches {item!r}")
            found.update(dict.fromkeys(files))
        else:
            raise InputError(f"no such file or folder: {item}")
    return list(found)


def _file_sha256(path: Path, max_bytes: int | None = None) -> str:
    """sha256 of a regular file, its size checked first: a FIFO, a device (/dev/zero) or a
    40 GB file is refused (InputError) before a byte is read."""
    from .io.image import regular_file_sha256
    from .io.limits import Limits

    return regular_file_sha256(
        path, Limits.from_env().max_bytes if max_bytes is None else max_bytes
    )


IndexKey = tuple[str, str, str]  # (absolute path, sha256, batch_config_key)


def read_index(out_dir: Path) -> dict[IndexKey, dict[str, Any]]:
    """Finished entries keyed by (absolute path, sha256, settings key); a torn last line is
    ignored, and an entry without a settings key (older runs) keys on "" so it never matches."""
    index = out_dir / INDEX_NAME
    done: dict[IndexKey, dict[str, Any]] = {}
    if not index.exists():
        return done
    for line in index.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
            key = (str(Path(rec["path"]).resolve()), rec["sha256"] or "", rec.get("config") or "")
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            continue  # a line cut by a kill mid-write; that file is simply redone
        done[key] = rec
    return done


def batch_config_key(
    experts: Sequence[str] | None, threshold: float, llm: LLMConfig | None = None
) -> str:
    """Hash of every setting that changes a file's result: `AnalysisConfig.current()` (with the
    fingerprints of the weights it selects), the experts and their versions, the map threshold,
    and the LLM's model and request options. Time limits, retries and prices are left out, and
    the LLM config holds only the NAME of its key variable, never a key."""
    from .config import AnalysisConfig, config_key
    from .experts import expert_classes
    from .pipeline import default_experts

    classes = expert_classes()
    names = list(experts) if experts is not None else default_experts()
    record: dict[str, Any] = {
        **AnalysisConfig.current().record(),
        "experts": {n: classes[n].spec.version if n in classes else None for n in names},
        "threshold": threshold,
        "llm": llm.model_dump(mode="json", exclude=_LLM_RUN_ONLY) if llm is not None else None,
    }
    return config_key(record)


# LLMConfig fields that change how a call is made or accounted, not what it answers.
_LLM_RUN_ONLY = {
    "api_key_env", "timeout_s", "connect_timeout_s", "max_retries", "backoff_base_s",
    "backoff_max_s", "retry_after_max_s", "concurrency", "price_prompt_per_1m",
    "price_completion_per_1m", "cache", "audit_log",
}  # fmt: skip


def append_line(index: Path, record: dict[str, Any]) -> None:
    """One JSON line, flushed to disk before the next file starts (a kill loses no result)."""
    index.parent.mkdir(parents=True, exist_ok=True)
    with index.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


ExpertStatus = Literal["done", "abstained", "failed"]


def expert_status(result: ExpertResult) -> ExpertStatus:
    """How an expert's run ended, as the progress reports it."""
    return "failed" if result.error else "abstained" if result.score is None else "done"


@dataclass(frozen=True)
class ExpertStep:
    """One expert of a file finished in a worker process: what the CLI's progress shows, small
    enough to cross the pipe (an ExpertResult carries image-sized maps)."""

    path: str
    expert: str
    status: ExpertStatus
    elapsed_s: float
    total: int  # experts run on the file


ExpertStepDone = Callable[[ExpertStep], None]


def analyze_file_reporting(
    path: str, out_dir: str | None, formats: tuple[str, ...], experts: tuple[str, ...] | None,
    threshold: float, threads: int | None = None, llm: LLMConfig | None = None,
    limits: Limits | None = None, *, report: ExpertStepDone,
) -> FileOutcome:  # fmt: skip
    """`analyze_file` in a worker, with an ExpertStep sent to `report` as each expert of the
    file finishes."""

    def finished(result: ExpertResult, total: int) -> None:
        report(ExpertStep(path, result.expert, expert_status(result), result.elapsed_s, total))

    return analyze_file(
        path, out_dir, formats, experts, threshold, threads, llm, limits, on_expert=finished
    )


def analyze_file(
    path: str,
    out_dir: str | None,
    formats: tuple[str, ...],
    experts: tuple[str, ...] | None,
    threshold: float,
    threads: int | None = None,
    llm: LLMConfig | None = None,
    limits: Limits | None = None,
    on_expert: ExpertDone | None = None,
) -> FileOutcome:
    """Analyse one file (with the MLLM stages when `llm` is given) and write its reports;
    errors come back as values (runs in a worker). `on_expert`: see pipeline.run_experts."""
    from .io import load_image
    from .io.limits import Limits

    sha = None
    outputs: dict[str, str] = {}
    limits = limits or Limits.from_env()
    try:
        from .pipeline import analyze_image, warm_up

        warm_up(experts)  # the first file's models load while it is hashed and decoded
        sha = _file_sha256(Path(path), limits.max_bytes)
        image = load_image(path, limits=limits)
        report = analyze_image(
            image, experts=experts, threshold=threshold, threads=threads, llm=llm,
            on_expert=on_expert,
        )  # fmt: skip
        if out_dir is not None:
            from .report import write_report

            target = Path(out_dir) / f"{Path(path).stem}-{report.image.sha256[:10]}"
            written = write_report(report, image, target, formats=formats)
            outputs = {k: str(v) for k, v in written.items()}
    except Exception as exc:  # bad input or a bug costs this one file, never the batch
        return failure_outcome(path, exc, sha)
    verdict = report.verdict
    summary = f"{verdict.label} (p={verdict.probability:.2f})"
    if not verdict.decided:
        summary = f"leaning {verdict.leaning} (p={verdict.probability:.2f})"
        if verdict.conflicts:
            summary += f"; conflict: {verdict.conflicts[0]}"
    if report.llm is not None:
        p = report.llm.stage1.probability
        llm_says = f"{p:.2f}" if p is not None else report.llm.stage1.status
        summary += f"; LLM P(fake) {llm_says} ({report.llm.verdict_agreement})"
    if report.regions:
        summary += f"; {len(report.regions)} region(s), first: {report.regions[0].description}"
    return FileOutcome(
        path=path,
        status=_status(verdict.label),
        sha256=report.image.sha256,
        label=verdict.label,
        probability=verdict.probability,
        summary=summary,
        outputs=outputs,
        report_json=report.model_dump_json(),
    )


def _status(label: str) -> Status:
    if label == "real":
        return "clean"
    return "inconclusive" if label == "inconclusive" else "suspicious"


def analyze_batch(
    paths: Sequence[Path],
    *,
    out_dir: Path | None = None,
    formats: tuple[str, ...] = ("json", "md", "html"),
    experts: tuple[str, ...] | None = None,
    threshold: float = 0.5,
    jobs: int = 1,
    llm: LLMConfig | None = None,
    timeout_s: float | None = None,
    on_expert: ExpertDone | None = None,
    on_step: ExpertStepDone | None = None,
) -> Iterator[FileOutcome]:
    """Yield one FileOutcome per file, in completion order; skips files in `out_dir`'s index.

    `timeout_s` bounds each file's wall-clock time: past it, the worker is killed and replaced
    and the file is an error (files then always run in worker processes, even with jobs=1).
    As each expert of a file finishes, `on_expert(result, total)` is called for the files
    analysed in this process (jobs=1 without `timeout_s`), and `on_step(step)` for those
    analysed in worker processes (in this process, as the workers report them).
    """
    pending = [str(p) for p in paths]
    out = str(out_dir) if out_dir is not None else None
    limits = batch_limits(jobs)
    in_process = jobs <= 1 and timeout_s is None
    pool: WorkerPool[str, FileOutcome] = WorkerPool(
        analyze_file if on_step is None else analyze_file_reporting, jobs, timeout_s=timeout_s,
        warm=partial(import_analysis, experts), on_report=on_step,
    )  # fmt: skip
    with pool:
        if not in_process and pending and not _has_index(out_dir):
            # Nothing can be skipped: the workers start Python and import the analysis while
            # this process hashes the settings (a fresh folder run's serial part).
            pool.fill()
        config = ""
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            config = batch_config_key(experts, threshold, llm)
            done = read_index(out_dir)
            if done:
                pending = [p for p in pending if _index_key(p, limits, config) not in done]
        if in_process:
            for p in pending:
                outcome = analyze_file(
                    p, out, formats, experts, threshold, None, llm, limits, on_expert
                )
                yield record_outcome(out_dir, outcome, config)
            return
        # Each worker analyses one image with a single expert thread: the pool parallelises
        # images, the largest files first, so the run does not end on one worker alone with a
        # big photo while the other idles.
        threads = 1 if jobs > 1 else None
        if jobs > 1:
            pending.sort(key=_file_size, reverse=True)
        tasks = ((p, (p, out, formats, experts, threshold, threads, llm, limits)) for p in pending)
        yield from run_in_pool(pool, tasks, out_dir, config)


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0  # reported as an error by its worker


def _has_index(out_dir: Path | None) -> bool:
    return out_dir is not None and (out_dir / INDEX_NAME).exists()


def import_analysis(experts: Sequence[str] | None = None) -> None:
    """In a new worker, before its first task: import the pipeline, the report writers and
    every expert's modules, and start loading the models of `experts` on a background thread
    (seconds of a cold start that then overlap the parent's own set-up and the first file's
    decoding). Nothing here changes a result."""
    from . import pipeline, report  # noqa: F401
    from .experts.registry import preload_experts

    preload_experts()
    pipeline.warm_up(experts)


def finished_outcomes(
    paths: Sequence[Path],
    out_dir: Path,
    *,
    experts: tuple[str, ...] | None = None,
    threshold: float = 0.5,
    jobs: int = 1,
    llm: LLMConfig | None = None,
) -> list[FileOutcome]:
    """The outcomes `out_dir`'s index already holds for `paths` under these settings: the files
    a resumed `analyze_batch` with the same arguments skips, read back so they can be counted."""
    done = read_index(out_dir)
    if not done:
        return []
    limits, config = batch_limits(jobs), batch_config_key(experts, threshold, llm)
    names = [f.name for f in dataclasses.fields(FileOutcome)]
    records = (done.get(_index_key(str(p), limits, config)) for p in paths)
    return [FileOutcome(**{n: rec[n] for n in names if n in rec}) for rec in records if rec]


def _index_key(path: str, limits: Limits, config: str) -> IndexKey:
    try:
        sha = _file_sha256(Path(path), limits.max_bytes)
    except (OSError, ForenscopeError):
        sha = ""  # a file that cannot be read matches its recorded error, if any
    return (str(Path(path).resolve()), sha, config)


def batch_limits(jobs: int) -> Limits:
    """The environment's limits, with the memory budget shared by the `jobs` processes and the
    estimate made for the expert threads each one runs (one per image with jobs > 1)."""
    from .io.limits import Limits

    base = Limits.from_env()
    threads = 1 if jobs > 1 else min(os.cpu_count() or 1, 4)
    budget = max(base.max_memory_bytes // max(jobs, 1), 1)
    return dataclasses.replace(base, max_memory_bytes=budget, expert_threads=threads)


class WorkerDiedError(ForenscopeError):
    """The worker process analysing this file died or overran its time limit."""


def failure_outcome(path: str, exc: BaseException, sha: str | None = None) -> FileOutcome:
    """The outcome of a file that could not be analysed (an image or a clip)."""
    return FileOutcome(
        path=path, status="error", sha256=sha, summary=str(exc) or type(exc).__name__,
        error={"type": type(exc).__name__, "message": str(exc)},
    )  # fmt: skip


def record_outcome(out_dir: Path | None, outcome: FileOutcome, config: str) -> FileOutcome:
    """`outcome` under its settings key, appended to `out_dir`'s index when there is one."""
    outcome.config = config
    if out_dir is not None:
        append_line(out_dir / INDEX_NAME, outcome.index_record())
    return outcome


def run_in_pool(
    pool: WorkerPool[str, FileOutcome],
    tasks: Iterable[tuple[str, tuple[Any, ...]]],
    out_dir: Path | None,
    config: str,
) -> Iterator[FileOutcome]:
    """The pool's outcomes, recorded; a dead or timed-out worker costs its own file only."""
    for path, result in pool.run(tasks):
        if isinstance(result, WorkerFailure):
            result = failure_outcome(path, WorkerDiedError(f"{path}: {result.reason}"))
        yield record_outcome(out_dir, result, config)


# --- worker processes ---------------------------------------------------------------------

K = TypeVar("K")
R = TypeVar("R")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerFailure:
    """Stands in for the result of a task whose worker died or overran its time limit."""

    reason: str
    timed_out: bool = False  # overran the time limit (else the worker died)


def die_with_parent(parent_pid: int | None = None) -> None:
    """In a worker process: get SIGKILL when the parent dies (Linux `prctl(PR_SET_PDEATHSIG)`),
    and exit now if it already has. Usable as a pool initializer. Elsewhere a no-op, except
    that each worker also exits when its task pipe to the parent closes."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent died before prctl: we were already re-parented


# BLAS/OpenMP pools (numpy, scipy, torch). The experts' own threads are the parallelism of one
# analysis: a BLAS pool per core beside them only spins (OpenBLAS busy-waits after each call),
# which cost a 16 MP `forenscope analyze` about 0.8 s of CPU that the other expert thread needed.
MATH_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)
# A worker also caps onnxruntime's intra-op pool (FORENSCOPE_ORT_THREADS, read by
# learned.encoder): the processes are the parallelism, and N workers each spinning up a pool per
# core fight over the same cores.
ONE_THREAD_VARS = (*MATH_THREAD_VARS, "FORENSCOPE_ORT_THREADS")


def one_math_thread() -> None:
    """Cap the BLAS/OpenMP pools at one thread (a value the user set is kept), for a process
    that analyses in expert threads. The variables are read when numpy loads, so this must run
    before it is imported; afterwards it is a no-op."""
    if "numpy" not in sys.modules:
        for name in MATH_THREAD_VARS:
            os.environ.setdefault(name, "1")


def one_thread_per_process() -> None:
    """Cap this process's thread pools at one thread (a value the user set is kept).

    The variables are read when a library loads, so this runs before the analysis imports
    numpy; pools that are loaded already are capped through threadpoolctl when it is there."""
    for name in ONE_THREAD_VARS:
        os.environ.setdefault(name, "1")
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
        except ImportError:  # the variables still cap every pool loaded from now on
            return
        value = os.environ["OMP_NUM_THREADS"]
        threadpool_limits(int(value) if value.isdigit() and int(value) > 0 else 1)


@dataclass(frozen=True)
class _Report:
    """A message a worker sends while it works on a task (see WorkerPool's `on_report`)."""

    payload: Any


def _worker_main(
    conn: Connection, parent_pid: int, fn: Callable[..., Any], warm: Callable[[], None] | None,
    reports: bool = False,
) -> None:  # fmt: skip
    one_thread_per_process()
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent to handle
    if warm is not None:
        try:
            warm()
        except Exception:  # only a head start: the task meets the same error, as a value
            pass
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if task is None:
            return
        key, args = task
        if reports:
            conn.send((key, fn(*args, report=partial(_send_report, conn, threading.Lock()))))
        else:
            conn.send((key, fn(*args)))


def _send_report(conn: Connection, lock: threading.Lock, payload: Any) -> None:
    with lock:  # the task may report from several threads
        conn.send(_Report(payload))


@dataclass
class _Worker(Generic[K]):
    process: BaseProcess
    conn: Connection
    key: K | None = None
    started: float = 0.0
    busy: bool = False


class WorkerPool(Generic[K, R]):
    """`jobs` processes running `fn` (a module-level function) one task at a time.

    Unlike ProcessPoolExecutor, which marks every queued task failed once a single worker is
    killed, this pool knows which task each worker holds: a dead or overdue worker costs that
    task alone (a WorkerFailure in its place) and a fresh worker takes its place.
    """

    def __init__(
        self, fn: Callable[..., R], jobs: int, *, timeout_s: float | None = None,
        warm: Callable[[], None] | None = None,
        on_report: Callable[[Any], None] | None = None,
    ) -> None:  # fmt: skip
        """`warm` (a module-level function) runs in each new worker before its first task.
        With `on_report`, tasks run as `fn(*args, report=send)`, and whatever a task passes to
        `send` reaches `on_report` in this process (while `run` waits for results)."""
        self.fn = fn
        self.warm = warm
        self.on_report = on_report
        self.jobs = max(1, jobs)
        self.timeout_s = timeout_s
        # spawn: the parent of each worker is this process (so PDEATHSIG follows it), and no
        # thread of the parent is forked half-way through holding a lock.
        self._ctx = multiprocessing.get_context("spawn")
        self.workers: list[_Worker[K]] = []

    def __enter__(self) -> WorkerPool[K, R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> _Worker[K]:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main, daemon=True, name="forenscope-worker",
            args=(child, os.getpid(), self.fn, self.warm, self.on_report is not None),
        )  # fmt: skip
        process.start()
        child.close()
        return _Worker(process, parent)

    def fill(self) -> int:
        """Replace idle workers that died and start the missing ones, on the calling thread;
        returns how many were started.

        Linux sends PR_SET_PDEATHSIG when the *thread* that started a worker ends, not its
        process: a caller whose threads come and go (a server's thread pool) calls this from
        one long-lived thread before `run`, which then starts no process itself."""
        for worker in list(self.workers):
            if not worker.busy and _exited(worker.process):
                self._replace(worker)
        started = 0
        while len(self.workers) < self.jobs:
            self.workers.append(self._start())
            started += 1
        return started

    def run(
        self, tasks: Iterable[tuple[K, tuple[Any, ...]]]
    ) -> Iterator[tuple[K, R | WorkerFailure]]:
        """Yield (key, result or WorkerFailure) per task, in completion order."""
        todo = iter(tasks)
        exhausted = False
        while True:
            for worker in list(self.workers):
                if not worker.busy and _exited(worker.process):
                    self._replace(worker)  # died while idle: it held no task
                elif not worker.busy and not exhausted:
                    exhausted = not self._give(worker, todo)
            while not exhausted and len(self.workers) < self.jobs:
                worker = self._start()
                self.workers.append(worker)
                exhausted = not self._give(worker, todo)
            busy = [w for w in self.workers if w.busy]
            if not busy:
                return
            handles: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            wait(handles, timeout=self._wait_time(busy))
            for worker in busy:
                outcome = self._collect(worker)
                if outcome is not None:
                    yield outcome

    def _give(self, worker: _Worker[K], todo: Iterator[tuple[K, tuple[Any, ...]]]) -> bool:
        task = next(todo, None)
        if task is None:
            return False
        worker.key, worker.started, worker.busy = task[0], time.monotonic(), True
        try:
            worker.conn.send(task)
        except OSError:
            pass  # it has just died: _collect reports the task and the worker is replaced
        return True

    def _wait_time(self, busy: list[_Worker[K]]) -> float | None:
        if self.timeout_s is None:
            return None
        first = min(w.started for w in busy) + self.timeout_s
        return max(0.0, first - time.monotonic())

    def _collect(self, worker: _Worker[K]) -> tuple[K, R | WorkerFailure] | None:
        key = worker.key
        assert key is not None
        try:
            while worker.conn.poll():
                message = worker.conn.recv()
                if isinstance(message, _Report):
                    if self.on_report is not None:
                        self.on_report(message.payload)
                    continue
                got_key, result = message
                worker.busy, worker.key = False, None
                return got_key, result
        except (EOFError, OSError):
            pass  # the pipe broke: the worker died mid-send
        timed_out = worker.process.is_alive()
        if timed_out:
            overdue = self.timeout_s is not None and (
                time.monotonic() - worker.started > self.timeout_s
            )
            if not overdue:
                return None
            reason = f"took longer than the limit of {self.timeout_s:g} s; its worker was stopped"
        else:
            reason = _death_reason(worker.process.exitcode)
        self._replace(worker)
        return key, WorkerFailure(reason, timed_out)

    def _replace(self, worker: _Worker[K]) -> None:
        _stop(worker)
        if worker in self.workers:  # close() may have emptied the list meanwhile
            self.workers.remove(worker)  # a fresh one is started when there is work for it

    def close(self) -> None:
        for worker in self.workers:
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 5.0
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()) if not worker.busy else 0)
            _stop(worker)
        self.workers = []


def _exited(process: Any) -> bool:
    """True once the worker's main thread has exited. `is_alive()` stays true until every thread
    of a killed worker is gone (onnxruntime's threads take a moment), so a task sent in between
    would be lost with it; /proc shows the main thread as a zombie at once (Linux)."""
    if not process.is_alive():
        return True
    try:
        stat = Path(f"/proc/{process.pid}/stat").read_text()
    except OSError:
        return False  # no /proc (not Linux): is_alive() is all there is
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _stop(worker: _Worker[Any]) -> None:
    if worker.process.is_alive():
        worker.process.kill()
    worker.process.join(5.0)
    worker.conn.close()


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the out-of-memory killer sends this)" if name == "SIGKILL" else ""
        return f"the worker process analysing this file was killed by {name}{hint}"
    return f"the worker process analysing this file exited unexpectedly (code {exitcode})"
