"""The order the expert threads take the experts of one image in, and the models loaded ahead.

With two threads the wall time of an analysis depends on the order: in registry (alphabetical)
order the two slowest experts start late (11th and 12th of 15) and one thread can finish alone.
Here the longest tasks start first (LPT: longest processing time), from a static estimate of each
expert's cost that is replaced by the thread CPU time it took on the last image of this process.
The face experts are one task, run in turn on one thread: the first detects the faces and the
others read its memo, instead of two threads detecting the same faces at once. The results keep
the caller's order.

On a large image two memory-heavy experts side by side hold their temporaries at once
(copy_move beside ela, spectrum or jpeg_artifacts made the 48 MP peak 2.0-2.1 GB against 1.8 GB
on one thread). `Dispatcher` hands the tasks out in the planned order but holds back one whose
estimated memory, with the running tasks', would exceed the budget: a free thread takes the next
task that fits (a light one beside copy_move), or waits for a running task to end; and the
heaviest task starts first. Below about 33 MP (copy_move and jpeg_artifacts within
`MEMORY_BUDGET_BYTES`) every pair fits and the order is the plain LPT one.

`warm_up` runs each expert's own `warm_up` (the CLIP sessions, the localizer's tree session) on
a background thread while this process hashes and decodes the image; an expert whose models are
still loading waits for that instead of loading them a second time.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, NamedTuple

from ..map_geometry import averaging
from ._working import COPY_MOVE_MAX_PIXELS

if TYPE_CHECKING:
    from .base import Expert


class Profile(NamedTuple):
    """What the schedule assumes of an expert, before it has measured one image of its own."""

    fixed_s: float  # single-thread seconds on a warm process, whatever the size ...
    per_mp_s: float  # ... plus this per megapixel (only the order matters)
    bytes_per_pixel: float  # peak bytes it allocates per decoded pixel when it runs alone
    # It works on at most this many pixels, averaged over f x f above (`map_geometry.averaging`):
    # its time is that of the averaged image's pixels (its memory estimate stays per decoded
    # pixel, see PROFILES).
    max_pixels: float = float("inf")


# Seconds: the 12 MP profile of issue 15 (the measured thread CPU time replaces them). Bytes:
# its 48 MP figures (MB above the decoded image) / 48e6; models are loaded by `warm_up` and not
# counted (clip_detector's 423 MB with its model, about 200 MB without). face_clip stands for
# the face detection, paid by the first face expert. copy_move now allocates about 11 bytes a
# pixel (its inverse FFT works in place), but keeps its old 22.8 on purpose: with 10.8 the
# dispatcher paired its full-size search with jpeg_artifacts at 48 MP and the peak grew from
# 1.28 to 1.51 GB. Above 24 MP it now searches a 2x2-averaged plane (0.8 s instead of 4 s at
# 48 MP), and still keeps 22.8 bytes per decoded pixel: estimated at its averaged size, it ran
# beside ela and jpeg_artifacts at 48 MP and the peak grew from 1166-1206 to 1308-1324 MiB.
PROFILES: dict[str, Profile] = {
    "jpeg_artifacts": Profile(0.02, 0.19, 7.6),
    "learned_localizer": Profile(0.05, 0.18, 1.6),
    "copy_move": Profile(0.02, 0.14, 22.8, COPY_MOVE_MAX_PIXELS),
    "spectrum": Profile(0.01, 0.06, 7.6),
    "ela": Profile(0.01, 0.057, 0.15),  # re-saved strip by strip since the eighth round
    "noise": Profile(0.01, 0.04, 3.9),
    "face_clip": Profile(0.05, 0.04, 1.9),
    "clip_detector": Profile(0.15, 0.004, 4.1),
    "watermark": Profile(0.01, 0.01, 0.6),
}
# A plugin or a comparison baseline: somewhere in the middle, as much memory as a mid-weight one.
UNKNOWN_PROFILE = Profile(0.05, 0.05, 8.0)
# Provenance (metadata) experts and the face experts after the first.
_SMALL_PROFILE = Profile(0.0, 0.001, 0.5)
# Tasks run side by side only while their estimates add up to this, or to a fifth more than the
# heaviest task alone (so a light expert can still run beside copy_move on a huge image).
MEMORY_BUDGET_BYTES = 1.0e9
OVERLAP_ALLOWANCE = 1.2

_observed: dict[str, tuple[float, float]] = {}  # expert -> (megapixels, thread CPU seconds)
_observed_lock = threading.Lock()


def profile(name: str, kind: str) -> Profile:
    """The expert's static profile: its own entry, else the one of its kind."""
    default = _SMALL_PROFILE if kind in ("provenance", "faces") else UNKNOWN_PROFILE
    return PROFILES.get(name, default)


def _working_pixels(p: Profile, pixels: float) -> float:
    return pixels / averaging(pixels, p.max_pixels) ** 2


def _static(name: str, kind: str, megapixels: float) -> float:
    p = profile(name, kind)
    return p.fixed_s + p.per_mp_s * _working_pixels(p, megapixels * 1e6) / 1e6


def estimated_cost(name: str, kind: str, megapixels: float) -> float:
    """Seconds the expert is expected to take: its CPU time on the last image this process
    analysed, scaled to this size by the static shape; else the static estimate."""
    with _observed_lock:
        seen = _observed.get(name)
    now = _static(name, kind, megapixels)
    if seen is None:
        return now
    then = _static(name, kind, seen[0])
    return seen[1] * now / then if then > 0 else seen[1]


def observe(name: str, megapixels: float, cpu_s: float) -> None:
    """Record what an expert took (its thread's CPU time), for the next image's order."""
    with _observed_lock:
        _observed[name] = (megapixels, cpu_s)


def plan(experts: Sequence[Expert], megapixels: float) -> list[list[int]]:
    """Tasks for the thread pool, longest first: each a list of indices into `experts`, run in
    turn on one thread. The face experts form one task (one face detection per image)."""
    tasks: list[list[int]] = []
    faces: list[int] = []
    for i, expert in enumerate(experts):
        if expert.spec.kind == "faces":
            if not faces:
                tasks.append(faces)
            faces.append(i)
        else:
            tasks.append([i])

    def cost(task: list[int]) -> float:
        # The first face expert pays the detection; the face_clip estimate stands for it.
        first = experts[task[0]].spec
        if first.kind == "faces":
            return _static("face_clip", "", megapixels) + 0.01 * len(task)
        return estimated_cost(first.name, first.kind, megapixels)

    return sorted(tasks, key=cost, reverse=True)  # stable: ties keep the registry order


def memory_estimate(name: str, kind: str, pixels: int) -> float:
    """Bytes the expert is expected to allocate on an image of `pixels` (static, per pixel)."""
    return profile(name, kind).bytes_per_pixel * pixels


def _task_memory(experts: Sequence[Expert], task: list[int], pixels: int) -> float:
    first = experts[task[0]].spec
    if first.kind == "faces":  # the first face expert detects the faces for the others
        return memory_estimate("face_clip", "faces", pixels)
    return max(memory_estimate(experts[i].spec.name, experts[i].spec.kind, pixels) for i in task)


class Dispatcher:
    """Hands the tasks of `plan` to the expert threads in order, keeping the running tasks'
    estimated memory within the budget: `take` gives the first waiting task that fits beside
    those running (any task when none runs), blocks while none fits, and returns None when all
    are taken; `done` must follow each task taken, also when it failed."""

    def __init__(self, experts: Sequence[Expert], tasks: list[list[int]], pixels: int) -> None:
        self._tasks = tasks
        self._memory = [_task_memory(experts, task, pixels) for task in tasks]
        by_memory = sorted(range(len(tasks)), key=self._memory.__getitem__, reverse=True)
        heaviest = self._memory[by_memory[0]] if tasks else 0.0
        self.budget = max(MEMORY_BUDGET_BYTES, OVERLAP_ALLOWANCE * heaviest)
        self._waiting = list(range(len(tasks)))  # indices into tasks, in the planned order
        if len(tasks) > 1 and heaviest + self._memory[by_memory[1]] > MEMORY_BUDGET_BYTES:
            # The heaviest starts first, on a heap that nothing else holds yet: the others then
            # reuse the pages it frees. Started later, beside blocks other experts keep, its
            # temporaries would extend the heap (glibc's, never trimmed: see allocator) further.
            self._waiting.remove(by_memory[0])
            self._waiting.insert(0, by_memory[0])
        self._running: dict[int, float] = {}  # id(task) -> its estimate
        self._changed = threading.Condition()

    def _fitting(self) -> int | None:
        in_use = sum(self._running.values())
        for k in self._waiting:
            if not self._running or in_use + self._memory[k] <= self.budget:
                return k
        return None

    def take(self) -> list[int] | None:
        with self._changed:
            while self._waiting:
                k = self._fitting()
                if k is not None:
                    self._waiting.remove(k)
                    self._running[id(self._tasks[k])] = self._memory[k]
                    return self._tasks[k]
                self._changed.wait()
            return None

    def done(self, task: list[int]) -> None:
        with self._changed:
            del self._running[id(task)]
            self._changed.notify_all()


# --- models loaded ahead ------------------------------------------------------------------

_warming: dict[str, Future[None]] = {}
_warming_lock = threading.Lock()


def warm_up(experts: Sequence[Expert]) -> None:
    """Load the models of `experts` on one background thread, those the expert threads take
    first first (the size is not known yet: a 12 MP photo's order); returns at once. Nothing
    here changes a result: an expert whose models failed to load meets the same error when it
    runs, and reports it as usual."""
    todo: list[tuple[Future[None], Callable[[], None]]] = []
    ordered = sorted(experts, key=lambda e: estimated_cost(e.spec.name, e.spec.kind, 12.0))
    with _warming_lock:
        for expert in reversed(ordered):
            name, load = expert.spec.name, _loader(expert)
            if load is None or name in _warming:
                continue
            future: Future[None] = Future()
            _warming[name] = future
            todo.append((future, load))
    if todo:
        thread = threading.Thread(target=_load_all, args=(todo,), name="forenscope-models",
                                  daemon=True)  # fmt: skip
        thread.start()
        atexit.register(_stop_loading, thread)


def _loader(expert: Expert) -> Callable[[], None] | None:
    from .base import Expert

    return expert.warm_up if type(expert).warm_up is not Expert.warm_up else None


_stopping = threading.Event()


def _stop_loading(thread: threading.Thread) -> None:
    """At exit (a bad file ends the run at once): load no further model, and let the one being
    loaded finish before the interpreter goes away under it."""
    _stopping.set()
    thread.join()


def _load_all(todo: list[tuple[Future[None], Callable[[], None]]]) -> None:
    for future, load in todo:
        if not future.set_running_or_notify_cancel():
            continue
        if _stopping.is_set():
            future.set_result(None)
            continue
        try:
            load()
        except Exception:  # only a head start: the expert meets the same error, as a value
            pass
        future.set_result(None)


def wait_for_models(name: str) -> None:
    """Before an expert runs: wait until the warm-up of its models has finished (a no-op when
    none was started, and at once after the first image)."""
    with _warming_lock:
        future = _warming.get(name)
    if future is not None:
        future.result()
