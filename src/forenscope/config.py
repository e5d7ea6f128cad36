"""The switches that change an analysis's result, read in one place and recorded in every Report.

Each is a `FORENSCOPE_*` environment variable (the CLI's flags set them, so worker processes
see the same values). `AnalysisConfig.current()` reads them once per call into a frozen model;
an unknown value is an error, not a silent default. `Report.analysis_config` holds the resolved
values plus the fingerprints of the weights they select, and `config_key()` hashes them, so a
resumed batch or evaluation can tell a stale result from a current one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import click
from pydantic import BaseModel, ConfigDict, Field

from .errors import ForenscopeError
from .models.cache import file_sha256

ENV = {
    "fusion": "FORENSCOPE_FUSION",
    "map_fusion": "FORENSCOPE_MAP_FUSION",
    "clip_heads": "FORENSCOPE_CLIP_HEADS",
    "clip_daam": "FORENSCOPE_CLIP_DAAM",
}


class ConfigError(ForenscopeError):
    """A FORENSCOPE_* switch has a value Forenscope does not know."""


class AnalysisConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fusion: Literal["fitted", "handset"] = Field(
        default="fitted", description="verdict: the fitted, calibrated model or hand-set pooling"
    )
    map_fusion: Literal["handset", "fitted"] = Field(
        default="handset", description="fused tamper map: weighted mean or per-pixel model"
    )
    clip_heads: str | None = Field(default=None, description="a folder of CLIP heads, or shipped")
    clip_daam: bool = Field(default=True, description="the CLIP attention-flow view")

    @classmethod
    def current(cls) -> AnalysisConfig:
        """The configuration from the environment; unknown values raise ConfigError."""
        raw: dict[str, Any] = {}
        for field, var in ENV.items():
            value = os.environ.get(var, "").strip()
            if not value:
                continue
            raw[field] = value != "0" if field == "clip_daam" else value.lower()
        if "clip_heads" in raw:
            raw["clip_heads"] = os.environ[ENV["clip_heads"]].strip()
        try:
            return cls(**raw)
        except ValueError as exc:
            names = ", ".join(f"{ENV[str(e['loc'][0])]}" for e in _errors(exc))
            raise ConfigError(f"invalid setting in {names}: {exc}") from None

    def record(self) -> dict[str, Any]:
        """The values plus fingerprints of the weights they select (for Report and eval)."""
        out: dict[str, Any] = self.model_dump()
        out["weights"] = weights_fingerprints()
        return out


F = TypeVar("F", bound=Callable[..., Any])


def _set_env(field: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None:
            return  # not given: the environment (or the default) decides
        if field == "clip_daam":
            value = "1" if value else "0"
        os.environ[ENV[field]] = str(value)

    return callback


def click_options(command: F) -> F:
    """`--fusion`, `--map-fusion`, `--clip-heads`, `--clip-daam/--no-clip-daam` for a command.

    Each sets its `FORENSCOPE_*` variable (so worker processes inherit it) and is recorded in
    every Report through `AnalysisConfig.current()`; an unset flag leaves the environment alone.
    """
    options = [
        click.option(
            "--fusion",
            type=click.Choice(["fitted", "handset"]),
            expose_value=False,
            callback=_set_env("fusion"),
            help="Verdict: the fitted, calibrated model (default) or hand-set pooling "
            f"[env {ENV['fusion']}].",
        ),
        click.option(
            "--map-fusion",
            type=click.Choice(["handset", "fitted"]),
            expose_value=False,
            callback=_set_env("map_fusion"),
            help=f"Fused tamper map: weighted mean (default) or per-pixel model "
            f"[env {ENV['map_fusion']}].",
        ),
        click.option(
            "--clip-heads",
            type=click.Path(exists=True, file_okay=False),
            expose_value=False,
            callback=_set_env("clip_heads"),
            help=f"A folder of CLIP heads instead of the shipped ones [env {ENV['clip_heads']}].",
        ),
        click.option(
            "--clip-daam/--no-clip-daam",
            default=None,
            expose_value=False,
            callback=_set_env("clip_daam"),
            help=f"The CLIP attention-flow view (on by default) [env {ENV['clip_daam']}].",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _errors(exc: ValueError) -> list[dict[str, Any]]:
    errors = getattr(exc, "errors", None)
    return list(errors()) if callable(errors) else []


@lru_cache(maxsize=1)
def weights_fingerprints() -> dict[str, str]:
    """Short sha256 of each shipped weights file that decides a verdict or a map."""
    root = Path(__file__).parent
    files = sorted((root / "fusion" / "weights").glob("*.json"))
    files += sorted((root / "models" / "heads").glob("*.json"))
    return {str(f.relative_to(root)): _sha(f) for f in files}


def _sha(path: Path) -> str:
    return file_sha256(path)[:16]


def config_key(record: dict[str, Any]) -> str:
    """A short, stable hash of a recorded configuration (plus what else the caller adds)."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
