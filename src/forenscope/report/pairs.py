"""Copy-move pairs as the report shows them: numbered, each side linked to the fused regions
it overlaps, so "region 1" and "region 2" read as the two halves of one copy.

The copy_move expert stores each verified pair in `details["pairs"]` with its two boxes `a`
and `b`; it cannot tell which one is the original, so neither side is called the source.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..types import BBox, Region, Report

COPY_MOVE = "copy_move"


@dataclass(frozen=True)
class CopyPair:
    """Pair `number` (from 1): boxes `a` and `b`, and the ids of the regions each overlaps."""

    number: int
    a: BBox
    b: BBox
    regions_a: tuple[int, ...]
    regions_b: tuple[int, ...]

    def sides(self) -> tuple[tuple[str, BBox, tuple[int, ...]], ...]:
        return (("A", self.a, self.regions_a), ("B", self.b, self.regions_b))


def copy_move_pairs(report: Report) -> list[CopyPair]:
    """The pairs the copy_move expert verified, in its order (strongest first)."""
    result = next((r for r in report.experts if r.expert == COPY_MOVE), None)
    if result is None or not result.judged:
        return []
    pairs = []
    for i, raw in enumerate(result.details.get("pairs") or [], start=1):
        try:
            a, b = BBox.model_validate(raw["a"]), BBox.model_validate(raw["b"])
        except (KeyError, TypeError, ValueError):
            continue  # a report from another version: show what can be read
        pairs.append(
            CopyPair(i, a, b, _overlapping(a, report.regions), _overlapping(b, report.regions))
        )
    return pairs


def pair_of_region(pairs: list[CopyPair], region_id: int) -> str | None:
    """'pair 1, side A' when the region overlaps a side of a copy-move pair."""
    for pair in pairs:
        for side, _, ids in pair.sides():
            if region_id in ids:
                return f"pair {pair.number}, side {side}"
    return None


def _overlapping(box: BBox, regions: list[Region]) -> tuple[int, ...]:
    return tuple(r.id for r in regions if _intersects(box, r.bbox))


def _intersects(p: BBox, q: BBox) -> bool:
    return (
        p.x < q.x + q.width
        and q.x < p.x + p.width
        and p.y < q.y + q.height
        and q.y < p.y + p.height
    )
