"""Helpers shared by the scheduling tests: specs for stand-in experts."""

from __future__ import annotations

from forenscope.types import ExpertSpec


def stub_spec(name: str, kind: str = "signal") -> ExpertSpec:
    """A minimal spec for a stand-in expert named `name`."""
    return ExpertSpec(
        name=name, version="0", kind=kind, targets="tampered", description="test",
        licence="test",
    )  # fmt: skip
