"""A folder run gives the same reports with -j 1 (in this process, expert threads) and -j 2
(worker processes with one thread each, warmed before their first file): only timings differ."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from forenscope.batch import INDEX_NAME, WorkerPool, analyze_batch

# Pure-numpy experts and one ONNX model (the localizer), whose thread count differs between
# the two runs.
EXPERTS = ("exif", "ela", "noise", "copy_move", "spectrum", "learned_localizer")
TIMING_KEYS = {"timings", "elapsed_s"}


def _photos(folder: Path) -> list[Path]:
    folder.mkdir()
    rng = np.random.default_rng(3)
    paths = []
    for i in range(3):
        rgb = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        rgb[30:70, 40:90] = rgb[0:40, 0:50]  # a copied patch, so the maps are not flat
        path = folder / f"p{i}.jpg"
        Image.fromarray(rgb).save(path, quality=85)
        paths.append(path)
    return paths


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _run(paths: list[Path], out: Path, jobs: int) -> dict[str, Any]:
    outcomes = list(analyze_batch(paths, out_dir=out, experts=EXPERTS, jobs=jobs))
    assert [o.status for o in outcomes].count("error") == 0, [o.summary for o in outcomes]
    index = {}
    for line in (out / INDEX_NAME).read_text().splitlines():
        rec = json.loads(line)
        rec["outputs"] = {k: str(Path(v).relative_to(out)) for k, v in rec["outputs"].items()}
        index[rec["path"]] = rec
    files = {}
    for f in sorted(p for p in out.rglob("*") if p.is_file() and p.name != INDEX_NAME):
        rel = str(f.relative_to(out))
        if f.suffix == ".json":
            files[rel] = _without_timings(json.loads(f.read_text()))
        elif f.suffix == ".png":
            files[rel] = f.read_bytes()
    return {"index": index, "files": files}


def test_one_and_two_jobs_write_the_same_reports(tmp_path: Path) -> None:
    paths = _photos(tmp_path / "in")
    one = _run(paths, tmp_path / "j1", 1)
    two = _run(paths, tmp_path / "j2", 2)
    assert len(one["index"]) == 3
    assert sum(n.endswith(".png") for n in one["files"]) >= 6  # heatmap and mask per file
    assert one == two


def _stamp() -> None:
    os.environ["FORENSCOPE_TEST_WARMED"] = "yes"


def _broken_warm() -> None:
    raise RuntimeError("warm-up failed")


def warmed(_: str) -> str | None:
    """A WorkerPool task: what the warm-up left in this worker."""
    return os.environ.get("FORENSCOPE_TEST_WARMED")


def test_warm_runs_in_each_worker_before_its_first_task() -> None:
    with WorkerPool(warmed, 2, warm=_stamp) as pool:
        results = sorted(str(r) for _, r in pool.run([(k, (k,)) for k in "ab"]))
    assert results == ["yes", "yes"]
    assert "FORENSCOPE_TEST_WARMED" not in os.environ  # it ran there, not here


def test_a_failing_warm_up_costs_no_task() -> None:
    with WorkerPool(warmed, 1, warm=_broken_warm) as pool:
        results = [r for _, r in pool.run([("a", ("a",))])]
    assert results == [None]
