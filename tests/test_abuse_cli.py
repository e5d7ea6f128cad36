"""Issue 16 against `forenscope analyze`: special files, huge files, dead workers, orphaned
workers, empty or repeated expert lists, memory budgets and file names that talk to terminals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import abuse_fixtures as fx
from forenscope.batch import FileOutcome, analyze_batch
from forenscope.cli import EXIT_ERRORS, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


def photo(path: Path, seed: int = 0, size: tuple[int, int] = (120, 160)) -> Path:
    rng = np.random.default_rng(seed)
    arr = np.clip(rng.normal(128, 30, (*size, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, quality=90)
    return path


def run_batch(paths: list[Path], timeout: float = 60.0, **kw: object) -> list[FileOutcome]:
    """analyze_batch in a thread, so a hang fails the test instead of stalling the suite."""
    got: list[FileOutcome] = []
    t = threading.Thread(target=lambda: got.extend(analyze_batch(paths, **kw)), daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        for p in paths:  # unblock a reader stuck on a FIFO, then fail
            if p.is_fifo():
                with open(p, "wb"):
                    pass
        pytest.fail(f"the batch did not finish within {timeout}s (got {len(got)} of {len(paths)})")
    return got


# -- Medium 1: only regular files reach the decoder; the size is checked before hashing ---------


@linux_only
def test_fifo_dev_zero_and_huge_sparse_file_are_refused_and_the_batch_goes_on(
    tmp_path: Path,
) -> None:
    good = photo(tmp_path / "good.jpg")
    fifo = fx.write_fifo(tmp_path)
    zero = fx.link_dev_zero(tmp_path)
    huge = fx.write_sparse(tmp_path, 40 * 1024**3)  # 40 GB, no disk space
    start = time.monotonic()
    outcomes = {Path(o.path).name: o for o in run_batch([fifo, zero, huge, good],
                                                        experts=("exif",))}  # fmt: skip
    assert time.monotonic() - start < 30, "a 40 GB file must not be hashed"
    assert outcomes["good.jpg"].status != "error", outcomes["good.jpg"]
    for name, why in (("pipe.jpg", "not a regular file"), ("zero.jpg", "not a regular file"),
                      ("huge.jpg", "over the limit")):  # fmt: skip
        o = outcomes[name]
        assert o.status == "error" and why in o.summary, o


# -- High 3 / Medium 8: expert lists ------------------------------------------------------------


def test_empty_expert_list_is_a_usage_error(tmp_path: Path) -> None:
    img = photo(tmp_path / "a.jpg")
    for value in (",", "", " , "):
        result = CliRunner().invoke(main, ["analyze", str(img), "--experts", value])
        assert result.exit_code == EXIT_USAGE, (value, result.output)
        assert "empty" in result.output


def test_repeated_experts_run_once(tmp_path: Path) -> None:
    img = photo(tmp_path / "a.jpg")
    result = CliRunner().invoke(main, ["analyze", str(img), "--experts", "ela,ela,ela", "--json"])
    line = next(ln for ln in result.output.splitlines() if ln.startswith("{"))
    report = json.loads(line)
    assert [e["expert"] for e in report["experts"]] == ["ela"]


# -- High 4: memory budget before decoding --------------------------------------------------------


def test_cli_refuses_an_image_over_the_memory_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORENSCOPE_MAX_MEMORY_MB", "100")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(fx.png_bomb(2000, 1000))  # 2 MP: ~220 MB estimated
    start = time.monotonic()
    result = CliRunner().invoke(main, ["analyze", str(bomb), "--experts", "ela"])
    assert result.exit_code == EXIT_ERRORS, result.output
    assert "memory budget" in result.output and "FORENSCOPE_MAX_MEMORY_MB" in result.output
    assert time.monotonic() - start < 10


# -- Low 6: file names cannot drive the terminal ------------------------------------------------


def test_ansi_escapes_in_file_names_are_shown_not_obeyed(tmp_path: Path) -> None:
    img = photo(tmp_path / fx.ANSI_NAME)
    result = CliRunner().invoke(main, ["analyze", str(img), "--experts", "exif"])
    assert "\x1b" not in result.output
    assert "\\x1b[2K" in result.output  # shown, escaped


# -- Medium 3: a killed worker costs its own image only; workers die with their parent ----------


def test_pool_replaces_a_dead_worker_and_fails_only_its_task() -> None:
    from forenscope.batch import WorkerFailure, WorkerPool

    tasks = [(k, (k, 0.2)) for k in ("a", "b", "kill-1", "c", "d", "e", "f")]
    with WorkerPool(fx.pool_task, 2) as pool:
        results = dict(pool.run(tasks))
    failed = {k: v for k, v in results.items() if isinstance(v, WorkerFailure)}
    assert list(failed) == ["kill-1"] and "SIGKILL" in failed["kill-1"].reason
    assert {k: v for k, v in results.items() if k not in failed} == {k: k for k in "abcdef"}


def test_pool_time_limit_stops_an_overdue_worker() -> None:
    from forenscope.batch import WorkerFailure, WorkerPool

    with WorkerPool(fx.pool_task, 1, timeout_s=1.0) as pool:
        results = dict(pool.run([("slow", ("slow", 30.0)), ("fast", ("fast", 0.0))]))
    assert isinstance(results["slow"], WorkerFailure) and "longer" in results["slow"].reason
    assert results["fast"] == "fast"


@linux_only
def test_killed_worker_in_a_parallel_batch_costs_one_image(tmp_path: Path) -> None:
    paths = [photo(tmp_path / f"img{i}.jpg", seed=i, size=(600, 800)) for i in range(8)]
    outcomes: list[FileOutcome] = []
    killed = False
    for outcome in analyze_batch(paths, experts=("ela", "noise"), jobs=2):
        outcomes.append(outcome)
        if not killed:
            workers = fx.worker_children(os.getpid())  # not the resource tracker
            assert workers, "no worker process found"
            os.kill(workers[0], signal.SIGKILL)  # as the OOM killer would
            killed = True
    assert sorted(Path(o.path).name for o in outcomes) == sorted(p.name for p in paths)
    errors = [o for o in outcomes if o.status == "error"]
    assert len(errors) <= 1, [o.summary for o in errors]
    assert all("SIGKILL" in o.summary for o in errors)


PARENT = """
import sys, time
sys.path.insert(0, {tests!r})
from forenscope.batch import analyze_batch
from pathlib import Path
paths = [Path(p) for p in sys.argv[1:]]
for outcome in analyze_batch(paths, experts=("ela", "noise"), jobs=2):
    print("DONE", flush=True)
    time.sleep(600)
"""


@linux_only
def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    paths = [str(photo(tmp_path / f"img{i}.jpg", seed=i, size=(300, 400))) for i in range(6)]
    script = PARENT.format(tests=str(ROOT / "tests"))
    parent = subprocess.Popen([sys.executable, "-c", script, *paths], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "DONE"
        workers = fx.children_of(parent.pid)
        assert workers, "no worker process found"
    finally:
        parent.kill()
        parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(fx.alive(w) for w in workers):
        time.sleep(0.1)
    left = [w for w in workers if fx.alive(w)]
    for w in left:  # do not leave them behind whatever the outcome
        os.kill(w, signal.SIGKILL)
    assert not left, f"{len(left)} worker(s) outlived their killed parent"
