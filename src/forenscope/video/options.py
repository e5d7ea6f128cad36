"""The clip settings a user picks (frame budget, analysed frame size): their defaults and the
command-line options `forenscope video` and `forenscope analyze` share. Light on purpose (click
only): `forenscope analyze --help` builds its options from here without loading the analysis."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from click.decorators import FC

DEFAULT_BUDGET = 8  # frames analysed per clip
DEFAULT_MAX_SIDE = 768  # analysed frames are scaled down to this longer side (speed: issue 17)


def budget_option(flag: str) -> Callable[[FC], FC]:
    """The frame budget option (`video --budget`, `analyze --clip-budget`)."""
    return click.option(
        flag, default=DEFAULT_BUDGET, show_default=True, type=click.IntRange(1, 256),
        help="Frames analysed per clip (uniform plus the starts of new shots).",
    )  # fmt: skip


def max_side_option(flag: str) -> Callable[[FC], FC]:
    """The analysed frame size option (`video --max-side`, `analyze --clip-max-side`)."""
    return click.option(
        flag, default=DEFAULT_MAX_SIDE, show_default=True, type=click.IntRange(64),
        help="Analysed frames of clips are scaled down to this longer side.",
    )  # fmt: skip


def clip_options(command: FC) -> FC:
    """`forenscope analyze`'s clip settings: --clip-budget and --clip-max-side."""
    return budget_option("--clip-budget")(max_side_option("--clip-max-side")(command))
