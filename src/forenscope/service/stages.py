"""Staged results of one running analysis: what is known so far, before the report is done.

The worker process (or the server's thread) appends one JSON line per finished stage to
`progress.jsonl` in the analysis's working directory: the metadata panel (provenance: C2PA,
EXIF, XMP) right after decoding, one line per expert as it finishes, the verdict once the
experts are fused, then one line per map file written. The server reads the file when a client
polls the job, so nothing but a file crosses the process boundary and a killed worker leaves
nothing to clean up but its working directory.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..inspect import MetadataPanel
from ..types import ExpertResult, Verdict
from .security import NAME_PATTERN

PROGRESS_FILE = "progress.jsonl"
NAME_RE = re.compile(NAME_PATTERN)
OWN_MAPS = ("fused", "mask")  # overlay.<name>.png; an expert's is overlay.expert.<name>.png
MAX_PROGRESS_BYTES = 4 * 1024 * 1024  # a metadata panel is bounded; this bounds the whole file


class ExpertStage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    expert: str
    score: float | None = Field(description="None when the expert abstained or failed")
    abstained: bool
    failed: bool
    has_map: bool
    elapsed_s: float = Field(description="the expert's own time")
    at_s: float = Field(description="seconds after the analysis started that it finished")


class Stages(BaseModel):
    """What a running analysis has produced so far (GET /v1/jobs/{id}, per running item)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    elapsed_s: float = Field(description="seconds since the analysis started (decoding)")
    metadata: MetadataPanel | None = Field(
        default=None, description="the metadata panel (C2PA, EXIF, XMP, ...): first, once decoded"
    )
    metadata_at_s: float | None = None
    experts_total: int | None = Field(default=None, description="known once one has finished")
    experts: list[ExpertStage] = Field(default_factory=list, description="in finishing order")
    verdict: Verdict | None = Field(default=None, description="once every expert is fused")
    verdict_at_s: float | None = None
    maps: list[str] = Field(
        default_factory=list, description="map files written so far (the fused map first)"
    )
    overlays: dict[str, str] = Field(
        default_factory=dict,
        description="URL of each map written so far (name -> PNG, as links.overlays of the "
        "analysis); served while the item runs, 404 once it is done (use the analysis then)",
    )


class StageWriter:
    """The worker's side: appends one line per stage; thread-safe (experts run in threads)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / PROGRESS_FILE
        self._start = time.perf_counter()
        self._lock = threading.Lock()

    def _write(self, stage: str, **fields: Any) -> None:
        line = json.dumps({"stage": stage, "t": round(time.perf_counter() - self._start, 3),
                           **fields})  # fmt: skip
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")  # one write per line: a reader sees whole lines or none

    def metadata(self, panel: MetadataPanel) -> None:
        self._write("metadata", metadata=panel.model_dump(mode="json"))

    def expert(self, result: ExpertResult, total: int) -> None:
        self._write(
            "expert", total=total, expert=result.expert, score=result.score,
            abstained=result.score is None and result.error is None,
            failed=result.error is not None, has_map=result.heatmap is not None,
            elapsed_s=round(result.elapsed_s, 3),
        )  # fmt: skip

    def verdict(self, verdict: Verdict) -> None:
        self._write("verdict", verdict=verdict.model_dump(mode="json"))

    def map_written(self, name: str) -> None:
        self._write("map", name=name)


def read_stages(folder: Path, started: float) -> Stages:
    """The stages in `folder`'s progress file; `started` is time.monotonic() when the server
    began the analysis (the elapsed time counts from there)."""
    fields: dict[str, Any] = {"experts": [], "maps": []}
    try:
        with (folder / PROGRESS_FILE).open("rb") as fh:
            raw = fh.read(MAX_PROGRESS_BYTES)
    except OSError:  # not started yet, or renamed into place a moment ago
        raw = b""
    for line in raw.split(b"\n")[:-1]:  # the last piece is empty or a line being written
        try:
            event = json.loads(line)
        except ValueError:
            continue
        _apply(fields, event)
    return Stages(elapsed_s=round(time.monotonic() - started, 3), **fields)


def _apply(fields: dict[str, Any], event: dict[str, Any]) -> None:
    stage, t = event.pop("stage", None), event.pop("t", 0.0)
    if stage == "metadata":
        fields["metadata"], fields["metadata_at_s"] = event["metadata"], t
    elif stage == "expert":
        fields["experts_total"] = event.pop("total")
        fields["experts"].append(ExpertStage(at_s=t, **event))
    elif stage == "verdict":
        fields["verdict"], fields["verdict_at_s"] = event["verdict"], t
    elif stage == "map":
        fields["maps"].append(event["name"])


def staged_overlay(folder: Path, name: str) -> bytes | None:
    """The PNG of the map `name` if the worker has logged it as written into `folder` (a map
    not yet logged may be half-written); None otherwise, or once the folder has moved away
    (the analysis is being stored)."""
    if not NAME_RE.fullmatch(name) or name not in read_stages(folder, time.monotonic()).maps:
        return None
    file = f"overlay.{name}.png" if name in OWN_MAPS else f"overlay.expert.{name}.png"
    try:
        root = folder.resolve(strict=True)
        path = (root / file).resolve(strict=True)
        if path.parent != root or not path.is_file():
            return None
        return path.read_bytes()
    except OSError:
        return None
