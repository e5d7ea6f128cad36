"""Small HTML builders every section of the report shares: escaping, a table that stacks
into labelled rows on a phone, and a technical section that the plain mode folds."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: frozenset[int] | set[int] = frozenset(),
) -> str:
    """A table of already-escaped cells. Under 600 px each row becomes a block whose cells are
    labelled with their column (`data-label`), so nothing overflows a phone screen."""
    head = "".join(f"<th scope=col>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td data-label="{esc(header[i])}"{" class=num" if i in numeric else ""}>{cell}</td>'
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="table-wrap"><table class="stack"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def tech_section(title: str, body: str, anchor: str, *, intro: str = "") -> str:
    """A section of technical detail: open by default, folded (one click away) in the mode for
    non-specialists. `intro` (already escaped) stays visible above the fold."""
    slug = re.sub(r"[^a-z0-9-]+", "-", anchor.lower()).strip("-")
    return (
        f'<section id="{slug}">{intro}<details class="tech" open><summary><h2>{esc(title)}</h2>'
        f"</summary>{body}</details></section>"
    )
