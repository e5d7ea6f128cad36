"""One evaluation end to end: select samples, guard the protocol, run (resumably), summarise,
write run.json + report.md + report.html into the output folder."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .align import Preprocess
from .datasets import Filter, Sample, load_dataset, select
from .guards import format_warnings
from .journal import FsyncMode, Journal
from .overlays import worst_error_overlays
from .protocol import LLMOptions, RunSettings, System
from .report import html_page, markdown, write_json
from .runner import Progress
from .summary import summarize
from .systems import ImageSystem, make_system

Engine = Literal["local", "ray"]


@dataclass
class EvalConfig:
    dataset: str
    system: str
    out: Path
    filters: list[str] = field(default_factory=list)
    sample: int | None = None
    seed: int = 0
    limit: int | None = None
    pre: Preprocess = field(default_factory=Preprocess)
    jobs: int = 1
    threshold: float = 0.5
    llm: LLMOptions = field(default_factory=LLMOptions)
    pool: str | None = None  # k-shot pool for llm: systems; replaces the config's pipeline.pool
    fsync: FsyncMode = "batch"
    engine: Engine = "local"  # like jobs, not part of identity(): both give the same records
    ray_address: str | None = None

    def build_system(self) -> System:
        pipeline = {**self.llm.pipeline, "pool": self.pool or self.llm.pipeline.get("pool")}
        return make_system(self.system, replace(self.llm, pipeline=pipeline))

    def identity(self, system: System | None = None) -> dict[str, Any]:
        """What defines the results (not where they go or how many workers), including the
        system's resolved settings: the analysis switches for image systems, the endpoint,
        model and protocol for LLM systems."""
        system = system or self.build_system()
        return {
            "dataset": str(Path(self.dataset).resolve()),
            "system": self.system,
            "filters": sorted(self.filters),
            "sample": self.sample,
            "seed": self.seed,
            "limit": self.limit,
            "preprocess": self.pre.describe(),
            "align_seed": self.pre.seed,
            "threshold": self.threshold,
            "system_settings": system.identity(),
        }

    def hash(self, system: System | None = None) -> str:
        blob = json.dumps(self.identity(system), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def code_version() -> dict[str, Any]:
    from .. import __version__

    info: dict[str, Any] = {"forenscope": __version__, "git_commit": None, "git_dirty": None}
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if head.returncode == 0:
            info["git_commit"] = head.stdout.strip()
            st = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=here,
                capture_output=True,
                text=True,
                timeout=5,
            )
            info["git_dirty"] = bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def environment() -> dict[str, Any]:
    import os

    import numpy
    import PIL

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
    }


def select_samples(cfg: EvalConfig) -> list[Sample]:
    samples = load_dataset(Path(cfg.dataset))
    return select(
        samples,
        [Filter.parse(f) for f in cfg.filters],
        sample=cfg.sample,
        seed=cfg.seed,
        limit=cfg.limit,
    )


def evaluate(
    cfg: EvalConfig,
    *,
    progress: Callable[[int], Progress] | None = None,
    samples: list[Sample] | None = None,
    overlays: bool = True,
) -> dict[str, Any]:
    """Run (or resume) one evaluation and write its reports; returns the run record.

    `progress(total)` returns a callback ticked once per finished sample (the CLI's tqdm bar).
    """
    system = cfg.build_system()
    if cfg.engine != "local" and not isinstance(system, ImageSystem):
        raise ValueError(f"--engine {cfg.engine} runs image systems; {cfg.system} has its own")
    samples = samples if samples is not None else select_samples(cfg)
    profiles, warnings = format_warnings(samples, cfg.pre.align)
    cfg.out.mkdir(parents=True, exist_ok=True)
    identity = cfg.identity(system)
    config_hash = cfg.hash(system)
    header = {"type": "header", "config_hash": config_hash, "config": identity}
    start = time.perf_counter()
    with Journal(cfg.out / "journal.jsonl", header, fsync=cfg.fsync) as journal:
        resumed = sum(1 for s in samples if s.path in journal.records)
        tick = progress(len(samples) - resumed) if progress else None
        run = RunSettings(cfg.jobs, cfg.engine, cfg.ray_address, tick)
        usage = system.score(samples, cfg.pre, journal, run)
        skipped_lines = journal.skipped_lines
        records = [journal.records[s.path] for s in samples if s.path in journal.records]
    system.finalize(records)
    unscored = [r for r in records if r.unscored]
    wall = time.perf_counter() - start
    record: dict[str, Any] = {
        "schema": "forenscope.eval/1",
        "config": {**identity, "jobs": cfg.jobs, "engine": cfg.engine, "out": str(cfg.out)},
        "config_hash": config_hash,
        "system": system.describe(),
        "code": code_version(),
        "environment": environment(),
        "warnings": warnings,
        "class_profiles": profiles,
        "counts": {
            "samples": len(samples),
            "resumed_from_journal": resumed,
            "scored_this_session": len(samples) - resumed,
            "errors": sum(1 for r in unscored if r.error),
            "refusals": sum(1 for r in unscored if r.refusal),
            "sha256_mismatches": sum(
                1 for r in records if (r.error or "").startswith("sha256 mismatch")
            ),
            "torn_journal_lines_skipped": skipped_lines,
        },
        "timing": {"wall_s_this_session": wall},
        "session_usage": usage,
        "summary": summarize(records, threshold=cfg.threshold),
        "files_seen": [{"path": r.path, "sha256": r.sha256_seen} for r in records],
        "samples": [r.model_dump(mode="json", by_alias=True) for r in records],
    }
    write_json(record, cfg.out / "run.json")
    (cfg.out / "report.md").write_text(markdown(record), encoding="utf-8")
    worst = record["summary"]["worst_errors"]
    pics = worst_error_overlays(system, samples, worst, cfg.pre) if overlays else {}
    (cfg.out / "report.html").write_text(html_page(record, pics), encoding="utf-8")
    return record
