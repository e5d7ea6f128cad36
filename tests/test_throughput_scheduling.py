"""The expert threads' order (longest first, face experts chained on one thread), the models
loaded ahead on a background thread, and a folder's largest files dispatched first."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from forenscope import batch, pipeline
from forenscope.experts import schedule as scheduling
from forenscope.experts.base import Expert
from forenscope.io import load_image
from forenscope.types import ExpertResult, ExpertSpec
from stub_experts import stub_spec as _spec


class _Stub(Expert):
    """Records the thread it ran on; `warmed` is set by its warm-up."""

    spec: ClassVar[ExpertSpec] = _spec("stub")
    log: ClassVar[list[tuple[str, int]]] = []
    gate: ClassVar[threading.Event | None] = None
    warmed: ClassVar[set[str]] = set()
    fail_warm_up: ClassVar[bool] = False

    def warm_up(self) -> None:
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail_warm_up:
            raise RuntimeError("no model")
        self.warmed.add(self.spec.name)

    def _analyze(self, image: Any) -> ExpertResult:
        self.log.append((self.spec.name, threading.get_ident()))
        return self.result(0.5, details={"warmed": self.spec.name in self.warmed})


def _stub(name: str, kind: str = "signal") -> type[_Stub]:
    return type(f"Stub_{name}", (_Stub,), {"spec": _spec(name, kind)})


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, type[_Stub]]]:
    classes = {
        "a_small": _stub("a_small", "provenance"),
        "copy_move": _stub("copy_move"),
        "face_one": _stub("face_one", "faces"),
        "face_two": _stub("face_two", "faces"),
        "jpeg_artifacts": _stub("jpeg_artifacts"),
        "noise": _stub("noise"),
    }
    monkeypatch.setattr(pipeline, "get_expert", lambda name: classes[name]())
    monkeypatch.setattr(scheduling, "_observed", {})
    monkeypatch.setattr(scheduling, "_warming", {})
    _Stub.log.clear()
    _Stub.warmed.clear()
    _Stub.gate, _Stub.fail_warm_up = None, False
    yield classes


def _image(tmp_path: Path) -> Any:
    from PIL import Image

    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((64, 96, 3), np.uint8)).save(path)
    return load_image(path)


def test_plan_starts_the_longest_and_chains_the_face_experts(
    stubs: dict[str, type[_Stub]],
) -> None:
    names = list(stubs)
    experts = [stubs[n]() for n in names]
    tasks = scheduling.plan(experts, megapixels=12.0)
    order = [[names[i] for i in task] for task in tasks]
    assert order[0] == ["jpeg_artifacts"] and order[1] == ["copy_move"]
    assert ["face_one", "face_two"] in order  # one task, in registry order
    assert order[-1] == ["a_small"]
    assert sorted(i for task in tasks for i in task) == list(range(len(names)))


def test_measured_cost_replaces_the_static_estimate(stubs: dict[str, type[_Stub]]) -> None:
    experts = [stubs["jpeg_artifacts"](), stubs["noise"]()]
    assert scheduling.plan(experts, 12.0)[0] == [0]
    scheduling.observe("noise", 12.0, 30.0)  # noise took far longer here than the table says
    assert scheduling.plan(experts, 12.0)[0] == [1]


def test_results_keep_the_callers_order_and_faces_share_a_thread(
    stubs: dict[str, type[_Stub]], tmp_path: Path
) -> None:
    names = list(stubs)
    done: list[str] = []
    results = pipeline.run_experts(
        _image(tmp_path), names, threads=2, on_expert=lambda r, n: done.append(r.expert)
    )
    assert [r.expert for r in results] == names
    assert sorted(done) == sorted(names)
    ran = dict(_Stub.log)
    assert ran["face_one"] == ran["face_two"]
    assert [n for n, _ in _Stub.log if n.startswith("face")] == ["face_one", "face_two"]


def test_an_expert_waits_for_its_models_loading_in_the_background(
    stubs: dict[str, type[_Stub]], tmp_path: Path
) -> None:
    _Stub.gate = threading.Event()
    scheduling.warm_up([stubs["noise"](), stubs["copy_move"]()])
    assert not _Stub.warmed  # warm_up returned at once: the loading waits on the gate
    threading.Timer(0.2, _Stub.gate.set).start()
    results = pipeline.run_experts(_image(tmp_path), ["noise", "copy_move"], threads=2)
    assert [r.details["warmed"] for r in results] == [True, True]
    scheduling.warm_up([stubs["noise"]()])  # once per process: nothing is loaded again
    assert len(scheduling._warming) == 2


def test_a_failed_warm_up_leaves_the_expert_to_run_as_usual(
    stubs: dict[str, type[_Stub]], tmp_path: Path
) -> None:
    _Stub.fail_warm_up = True
    scheduling.warm_up([stubs["noise"]()])
    (result,) = pipeline.run_experts(_image(tmp_path), ["noise"], threads=2)
    assert result.score == 0.5 and result.details["warmed"] is False


def test_experts_without_models_start_no_loader() -> None:
    from forenscope.experts import get_expert

    scheduling.warm_up([get_expert("ela"), get_expert("exif")])
    assert "ela" not in scheduling._warming and "exif" not in scheduling._warming


def test_a_folder_run_gives_its_workers_the_largest_files_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for name, size in (("small", 10), ("large", 3000), ("medium", 500)):
        path = tmp_path / f"{name}.jpg"
        path.write_bytes(b"x" * size)
        paths.append(path)
    given: list[str] = []

    def fake_run(pool: Any, tasks: Any, out_dir: Any, config: str) -> Iterator[Any]:
        given.extend(key for key, _ in tasks)
        return iter(())

    monkeypatch.setattr(batch, "run_in_pool", fake_run)
    assert list(batch.analyze_batch(paths, jobs=2)) == []
    assert [Path(p).stem for p in given] == ["large", "medium", "small"]
