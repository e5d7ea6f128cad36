"""Named protocol presets: `--protocol paper` sets seed 000's stage-1 settings in one place.

A preset is a set of `pipeline:` values applied over the config's block; options given on the
command line still win. Each value says where it comes from, so a run record can tell what the
paper states from what Forenscope had to choose where the paper is silent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from ..errors import ConfigError
from .config import PipelineOptions

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ProtocolPreset:
    name: str
    settings: dict[str, Any]  # PipelineOptions fields
    why: dict[str, str]  # field -> where the value comes from
    refusals: str  # how refusals are counted and reported
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "settings": dict(self.settings), "why": dict(self.why),
                "refusals": self.refusals, "notes": list(self.notes)}  # fmt: skip


PAPER = ProtocolPreset(
    name="paper",
    settings={
        "scoring": "votes",
        "k": 2,
        "variant": 4,
        "n": 5,
        "temperature": 1.0,
        "stage2_k": 2,
    },  # fmt: skip
    why={
        "scoring": "seed 000: the model is queried several times and the answers averaged "
        "(No = 0, Yes = 1); the AUC is computed on that mean",
        "k": "seed 000: the main tables use two-shot in-context examples for every LLM",
        "variant": "seed 000: prompt #4 is the one its k-shot study uses; the main tables' "
        "prompt is not named",
        "n": "not stated in seed 000: Forenscope's default of 5 votes",
        "temperature": "not stated in seed 000: 1.0, so repeated queries can differ",
        "stage2_k": "seed 000 credits stage 2's in-context examples with +12% ACC; two, as in "
        "stage 1. Their answers come from the pool manifest's truth (family, scope, mask), "
        "not from the paper's annotated examples",
    },
    refusals="every answer is read as yes, no, refusal or undetermined; refusals and "
    "undetermined answers are never votes. The per-answer refusal rate is reported beside ACC "
    "and AUC (the rate seed 000 plots per prompt and per k); an image with no vote is a "
    "refusal, counted in the image refusal rate and left out of ACC and AUC",
    notes=(
        "the prompt texts are reconstructions structured after seed 000's five principles, "
        "not its Figure 4 texts",
    ),  # fmt: skip
)

PROTOCOLS: dict[str, ProtocolPreset] = {"paper": PAPER}


def get_protocol(name: str) -> ProtocolPreset:
    try:
        return PROTOCOLS[name]
    except KeyError:
        known = ", ".join(sorted(PROTOCOLS))
        raise ConfigError(f"unknown protocol {name!r} (known: {known})") from None


def resolve_pipeline(
    options: PipelineOptions, protocol: str | None, overrides: Mapping[str, Any]
) -> tuple[PipelineOptions, dict[str, str]]:
    """(the pipeline that runs, where each stage-1 knob came from).

    Precedence: explicit overrides, then the preset, then the config's block."""
    preset = get_protocol(protocol).settings if protocol else {}
    given = {name: value for name, value in overrides.items() if value is not None}
    resolved = options.overridden({**preset, **given})
    source = {
        name: "override"
        if name in given
        else f"protocol {protocol}"
        if name in preset
        else "config"
        for name in (*resolved.stage1_knobs(), "pool")
    }
    return resolved, source


def protocol_option() -> Callable[[F], F]:
    """`--protocol NAME` for the commands that run the LLM stages (`llm detect/run`, `eval`)."""
    return click.option(
        "--protocol",
        type=click.Choice(sorted(PROTOCOLS)),
        default=None,
        help="LLM: a preset over the config's pipeline block (paper = seed 000: votes, 2-shot "
        "in both stages, prompt #4); explicit options still win; the record names the source "
        "of every knob",
    )
