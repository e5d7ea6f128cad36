"""`forenscope analyze -j auto` (the default): one worker process per core for a folder, as many
as the files (four each at least) and the memory budget allow; a few files stay in this process
(issue 15)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from forenscope import parallelism
from forenscope.cli import main
from forenscope.io.limits import MB, Limits, estimate_analysis_bytes, usable_cores
from forenscope.parallelism import auto_jobs, header_pixels

EXPERTS = "exif,ela,noise"


def _photos(folder: Path, count: int, size: tuple[int, int] = (96, 64)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"p{i}.png"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_header_pixels_reads_the_size_and_gives_zero_for_what_pillow_cannot_open(
    tmp_path: Path,
) -> None:
    (photo,) = _photos(tmp_path, 1, size=(120, 50))
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8 not a jpeg")
    assert header_pixels(photo) == 6000
    assert header_pixels(junk) == 0
    assert header_pixels(tmp_path / "missing.png") == 0


def test_one_process_per_core_with_four_files_each_at_least(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = _photos(tmp_path, 12)
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 2)
    assert auto_jobs(photos) == 2
    assert auto_jobs(photos[:8]) == 2
    assert auto_jobs(photos[:7]) == 1  # a handful: this process, the experts in threads
    assert auto_jobs(photos[:1]) == 1
    assert auto_jobs([]) == 1
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 8)
    assert auto_jobs(photos) == 3
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 1)
    assert auto_jobs(photos) == 1


def test_fewer_processes_when_the_shared_budget_cannot_hold_the_largest_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process needs its models (WORKER_RESIDENT_BYTES) plus the analysis of the largest
    image."""
    photos = _photos(tmp_path, 16, size=(400, 300))
    photos[5] = _photos(tmp_path / "big", 1, size=(800, 600))[0]
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 4)
    need = parallelism.WORKER_RESIDENT_BYTES + estimate_analysis_bytes(800 * 600)
    assert auto_jobs(photos, Limits(max_memory_bytes=4 * need)) == 4
    assert auto_jobs(photos, Limits(max_memory_bytes=3 * need)) == 3
    assert auto_jobs(photos, Limits(max_memory_bytes=2 * need - 1)) == 1
    # the analysis alone would fit twice; with the models it does not
    assert auto_jobs(photos, Limits(max_memory_bytes=2 * estimate_analysis_bytes(800 * 600))) == 1
    # an image over the pixel limit is refused before decoding, so it takes no memory
    over = Limits(max_memory_bytes=2 * need - 1, max_pixels=800 * 600 - 1)
    assert auto_jobs(photos, over) == 2
    # read from FORENSCOPE_MAX_MEMORY_MB when no limits are given, as the batch reads it
    monkeypatch.setenv("FORENSCOPE_MAX_MEMORY_MB", str(need // MB + 1))
    assert auto_jobs(photos) == 1


def test_an_image_too_large_for_the_whole_budget_does_not_cut_the_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It is refused before decoding with one process or many, so it needs no memory."""
    photos = [tmp_path / f"p{i}.jpg" for i in range(8)]
    sizes = {p: 1_000_000 for p in photos} | {photos[3]: 60_000_000}  # read from the headers
    monkeypatch.setattr(parallelism, "header_pixels", sizes.__getitem__)
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 2)
    budget = 2 * (parallelism.WORKER_RESIDENT_BYTES + estimate_analysis_bytes(1_000_000))
    assert estimate_analysis_bytes(60_000_000) > budget
    assert auto_jobs(photos, Limits(max_memory_bytes=budget)) == 2
    assert auto_jobs(photos, Limits(max_memory_bytes=budget - 1)) == 1


def test_usable_cores_is_a_positive_count() -> None:
    assert 1 <= usable_cores() <= 4096


def _expert_lines(stderr: str) -> list[str]:
    """Lines of experts finished in this process ("[1/3] ela: ...")."""
    return [line.strip() for line in stderr.splitlines() if line.strip().startswith("[")]


def _worker_lines(stderr: str) -> dict[str, list[str]]:
    """Lines of experts finished in worker processes ("p0.png [1/3] ela: ..."), by file."""
    found: dict[str, list[str]] = {}
    for line in stderr.splitlines():
        name, _, rest = line.strip().partition(" ")
        if name.endswith(".png") and rest.startswith("["):
            found.setdefault(name, []).append(rest.split("]")[0] + "]")
    return found


def test_a_folder_goes_to_worker_processes_by_default_and_stays_here_with_j1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Progress tells where the files ran: experts finished in a worker are named with their
    file (the workers' files interleave). Every run gives the same verdicts."""
    _photos(tmp_path / "in", 8)
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 2)
    runs = {}
    for jobs in ([], ["-j", "auto"], ["-j", "1"]):
        args = ["analyze", str(tmp_path / "in"), "--experts", EXPERTS, "--progress", *jobs]
        result = CliRunner().invoke(main, args)
        assert result.exit_code in (0, 1, 4), result.output
        lines = sorted(line for line in result.stdout.splitlines() if ": " in line)
        runs[" ".join(jobs) or "default"] = (lines, result.stderr)
    every_file = {f"p{i}.png": ["[1/3]", "[2/3]", "[3/3]"] for i in range(8)}
    for name in ("default", "-j auto"):
        assert _expert_lines(runs[name][1]) == []
        assert _worker_lines(runs[name][1]) == every_file
    assert len(_expert_lines(runs["-j 1"][1])) == 3 * 8  # three experts, eight files
    assert _worker_lines(runs["-j 1"][1]) == {}
    assert runs["default"][0] == runs["-j 1"][0] == runs["-j auto"][0]
    names = [line.split(":")[0].rsplit("/", 1)[-1] for line in runs["default"][0]]
    assert names == [f"p{i}.png" for i in range(8)]


def test_a_few_files_are_analysed_here_with_their_experts_in_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _photos(tmp_path / "in", 3)
    monkeypatch.setattr(parallelism, "usable_cores", lambda: 2)
    args = ["analyze", str(tmp_path / "in"), "--experts", EXPERTS, "--progress"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1, 4), result.output
    assert len(_expert_lines(result.stderr)) == 3 * 3


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_bad_jobs_values_are_usage_errors(tmp_path: Path, value: str) -> None:
    (photo,) = _photos(tmp_path, 1)
    result = CliRunner().invoke(main, ["analyze", str(photo), "-j", value])
    assert result.exit_code == 2
    assert "neither a positive number of processes nor 'auto'" in result.output


def test_worker_steps_on_a_terminal_bar_name_the_file_and_count_its_experts() -> None:
    import io

    from tqdm import tqdm

    from forenscope.batch import ExpertStep
    from forenscope.cli_progress import step_progress

    buf = io.StringIO()
    with tqdm(total=2, file=buf, disable=False) as bar:
        report = step_progress(bar, lines=False)
        report(ExpertStep("/in/a.png", "ela", "done", 0.1, 2))
        report(ExpertStep("/in/b\x1b[2J.png", "ela", "abstained", 0.1, 2))
        first = buf.getvalue()
        report(ExpertStep("/in/a.png", "noise", "done", 0.2, 2))
        second = buf.getvalue()
        report(ExpertStep("/in/a.png", "ela", "done", 0.1, 2))  # a.png again: a new count
    assert "a.png: 1/2 experts, last ela" in first
    assert "\x1b[2J" not in buf.getvalue()  # file names are made safe for the terminal
    assert "a.png: 2/2 experts, last noise" in second
    assert "a.png: 1/2 experts, last ela" in buf.getvalue()[len(second) :]
