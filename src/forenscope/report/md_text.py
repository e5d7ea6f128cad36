"""Markdown text helpers shared by every Markdown section of the report: untrusted text made
safe, tables, one evidence line."""

from __future__ import annotations

import html
import re

from ..types import Evidence

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def md_text(value: object) -> str:
    """Untrusted text made safe for Markdown (one line, no raw HTML, no links or table breaks)."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def evidence_line(ev: Evidence) -> str:
    text = f"**{md_text(ev.kind)}**: {md_text(ev.summary)}"
    if ev.value is not None:
        text += f" (value: {md_text(ev.value)})"
    if ev.proves is not None:
        text += f" — proves {md_text(ev.proves)}"
    return text
