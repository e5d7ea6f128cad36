"""What `forenscope analyze` tells stderr while it works: that the experts' models are loading
(the first seconds of a cold start say nothing otherwise), then each expert as it finishes, in
this process or in a worker process, on the progress bar of a terminal or as lines with
--progress. Stdout (the --json lines, the per-file verdicts) is never written to."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from .batch import ExpertStep, ExpertStepDone
    from .pipeline import ExpertDone
    from .types import ExpertResult


def megapixels(path: Path) -> float | None:
    """From the header alone; None when Pillow cannot read it (the analysis says why)."""
    from .parallelism import header_pixels

    pixels = header_pixels(path)
    return pixels / 1e6 if pixels else None


def expert_progress(bar: Any, lines: bool) -> ExpertDone:
    """The `on_expert` callback that reports each finished expert of the images analysed in
    this process on `bar` (a tqdm bar: its postfix on a terminal, or one line per expert when
    `lines`)."""
    from .batch import expert_status

    lock = threading.Lock()
    done = [0]

    def finished(result: ExpertResult, total: int) -> None:
        with lock:
            done[0] = done[0] % total + 1  # the next image starts again at 1
            n = done[0]
        word = expert_status(result)
        last = " - fusing them into the verdict and maps ..." if n == total else ""
        if lines:
            bar.write(f"  [{n}/{total}] {result.expert}: {word} in {result.elapsed_s:.1f} s{last}",
                      file=sys.stderr)  # fmt: skip
        else:
            bar.set_postfix_str(f"{n}/{total} experts, last {result.expert}{last}")

    return finished


def step_progress(bar: Any, lines: bool) -> ExpertStepDone:
    """The `on_step` callback that reports each finished expert of the images analysed in
    worker processes, named by file since the workers' images interleave: on `bar` (its
    postfix) or one line per expert when `lines`."""
    from .cli_text import terminal_safe

    done: dict[str, int] = {}

    def finished(step: ExpertStep) -> None:
        n = done.get(step.path, 0) + 1
        done[step.path] = n if n < step.total else 0  # the file's last expert: start again
        name = terminal_safe(Path(step.path).name)
        if lines:
            bar.write(f"  {name} [{n}/{step.total}] {step.expert}: {step.status} in "
                      f"{step.elapsed_s:.1f} s", file=sys.stderr)  # fmt: skip
        else:
            bar.set_postfix_str(f"{name}: {n}/{step.total} experts, last {step.expert}")

    return finished


def say_loading(files: Sequence[Path]) -> None:
    """The first line of a run: the models load before the first expert can finish."""
    from .cli_text import terminal_safe

    what = f"{len(files)} images"
    if len(files) == 1:
        mp = megapixels(files[0])
        what = terminal_safe(files[0].name) + (f" ({mp:.1f} MP)" if mp else "")
    click.echo(f"Loading the experts' models, then analysing {what} ...", err=True)
