"""Memory-aware dispatch of the expert threads (issue 15): on a large image no two memory-heavy
experts run side by side, a light one runs beside copy_move, and below the budget the order is
the plain longest-first one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from forenscope import pipeline
from forenscope.experts import schedule as scheduling
from forenscope.experts.base import Expert
from forenscope.io import load_image
from forenscope.types import ExpertResult, ExpertSpec
from stub_experts import stub_spec as _spec

NAMES = ("copy_move", "ela", "jpeg_artifacts", "learned_localizer", "noise", "spectrum")
# ela re-saves strip by strip since the eighth round of issue 15: a light expert now
HEAVY = {"copy_move", "jpeg_artifacts", "spectrum"}
MP48 = 8486 * 5656


class _Timed(Expert):
    """Logs when it starts and ends, and takes a little while so threads overlap."""

    spec: ClassVar[ExpertSpec] = _spec("stub")
    events: ClassVar[list[tuple[str, str]]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def _analyze(self, image: Any) -> ExpertResult:
        with self.lock:
            self.events.append(("start", self.spec.name))
        time.sleep(0.1 if self.spec.name == "copy_move" else 0.02)  # the others could pair
        with self.lock:
            self.events.append(("end", self.spec.name))
        return self.result(0.5)


@pytest.fixture
def classes(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, type[_Timed]]]:
    made = {n: type(f"T_{n}", (_Timed,), {"spec": _spec(n)}) for n in NAMES}
    made["face_one"] = type("T_face_one", (_Timed,), {"spec": _spec("face_one", "faces")})
    monkeypatch.setattr(pipeline, "get_expert", lambda name: made[name]())
    monkeypatch.setattr(scheduling, "_observed", {})
    _Timed.events.clear()
    yield made


def _dispatcher(
    classes: dict[str, type[_Timed]], pixels: int
) -> tuple[scheduling.Dispatcher, list[Expert]]:
    experts: list[Expert] = [cls() for cls in classes.values()]
    tasks = scheduling.plan(experts, pixels / 1e6)
    return scheduling.Dispatcher(experts, tasks, pixels), experts


def _name(experts: list[Expert], task: list[int] | None) -> str:
    assert task is not None
    return experts[task[0]].spec.name


def test_below_the_budget_the_tasks_go_in_the_planned_order(
    classes: dict[str, type[_Timed]],
) -> None:
    pixels = 12_000_000
    dispatcher, experts = _dispatcher(classes, pixels)
    planned = scheduling.plan(experts, pixels / 1e6)
    taken = [dispatcher.take(), dispatcher.take()]  # two threads busy at once
    for _ in planned[2:]:
        finished = taken[-2]
        assert finished is not None
        dispatcher.done(finished)
        taken.append(dispatcher.take())
    assert taken == planned
    assert dispatcher.take() is None


def test_at_48_mp_copy_move_starts_first_and_only_beside_light_experts(
    classes: dict[str, type[_Timed]],
) -> None:
    dispatcher, experts = _dispatcher(classes, MP48)
    first, second = dispatcher.take(), dispatcher.take()
    # jpeg_artifacts leads the plan, but copy_move (the heaviest) starts on the empty heap, and
    # beside it the longest task that fits: the localizer
    assert _name(experts, first) == "copy_move"
    assert _name(experts, second) == "learned_localizer"
    assert second is not None
    dispatcher.done(second)
    # jpeg_artifacts and spectrum come next in the plan but do not fit beside copy_move; ela,
    # the next, does
    assert _name(experts, dispatcher.take()) == "ela"
    assert first is not None
    dispatcher.done(first)
    assert _name(experts, dispatcher.take()) == "jpeg_artifacts"


def test_a_task_list_without_a_heavy_pair_keeps_its_order(
    classes: dict[str, type[_Timed]],
) -> None:
    del classes["copy_move"]  # the rest fit two by two at 48 MP
    dispatcher, experts = _dispatcher(classes, MP48)
    planned = scheduling.plan(experts, MP48 / 1e6)
    assert [dispatcher.take(), dispatcher.take()] == planned[:2]


def test_a_thread_waits_while_only_heavy_tasks_are_left(
    classes: dict[str, type[_Timed]],
) -> None:
    for name in ("ela", "face_one", "learned_localizer", "noise", "spectrum"):
        del classes[name]
    dispatcher, experts = _dispatcher(classes, MP48)
    heavy = dispatcher.take()
    assert _name(experts, heavy) == "copy_move"
    got: list[list[int] | None] = []
    thread = threading.Thread(target=lambda: got.append(dispatcher.take()))
    thread.start()
    thread.join(0.2)
    assert not got  # jpeg_artifacts does not fit beside copy_move: the thread waits
    assert heavy is not None
    dispatcher.done(heavy)
    thread.join(5)
    assert len(got) == 1 and _name(experts, got[0]) == "jpeg_artifacts"
    assert dispatcher.take() is None


def test_run_experts_never_overlaps_two_heavy_experts_on_a_large_image(
    classes: dict[str, type[_Timed]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((64, 96, 3), np.uint8)).save(path)
    image = load_image(path)
    # scale the budget to the tiny test image: what 48 MP gives at the real figures
    monkeypatch.setattr(scheduling, "MEMORY_BUDGET_BYTES", 1e9 * image.width * image.height / MP48)
    names = list(classes)
    results = pipeline.run_experts(image, names, threads=2)
    assert [r.expert for r in results] == names
    running: set[str] = set()
    overlapped = False
    for what, name in _Timed.events:
        if what == "start":
            now = running | {name}
            assert "copy_move" not in now or len(now & HEAVY) == 1, now
            overlapped |= bool(running)
            running.add(name)
        else:
            running.discard(name)
    assert overlapped  # still two threads at work


def test_a_failing_task_does_not_stop_the_others(
    classes: dict[str, type[_Timed]], tmp_path: Path
) -> None:
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    done: list[str] = []

    def callback(result: ExpertResult, total: int) -> None:
        done.append(result.expert)
        if result.expert == "copy_move":
            raise RuntimeError("client gone")

    with pytest.raises(RuntimeError, match="client gone"):
        pipeline.run_experts(load_image(path), list(classes), threads=2, on_expert=callback)
    assert sorted(done) == sorted(classes)
