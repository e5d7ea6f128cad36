"""What `forenscope serve` and `forenscope serve-openai` share before they start uvicorn."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import click

from .settings import TOKEN_ENV


@contextmanager
def service_extra_required() -> Iterator[None]:
    """Turn a missing web dependency into a message naming the extra that provides it."""
    try:
        yield
    except ImportError as exc:
        raise click.ClickException(
            f"{exc}; install the service extra: pip install 'forenscope[service]'"
        ) from None


def token_from_env() -> str | None:
    """The access token, read from the environment only: a command-line flag would show it to
    every user of the machine in the process list."""
    return os.environ.get(TOKEN_ENV) or None
