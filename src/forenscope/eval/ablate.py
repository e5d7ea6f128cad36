"""Seed-000-style ablations of an MLLM config: prompt variant x k-shot x n votes, one command.

The other knobs are the config's `pipeline:` block (the protocol `analyze --llm` runs). Every
cell is a normal resumable evaluation in `<out>/p<variant>-k<k>-n<n>/`; the engine's response
cache is shared by all cells. Without `--pool` or `pipeline.pool`, a seeded held-out set of real
and fake images is taken OUT of the evaluated selection to serve as k-shot examples (never
scored).
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .datasets import Sample
from .llm_system import LLMSystem
from .records import SampleRecord, run_samples
from .report import md_table
from .run import EvalConfig, evaluate, select_samples


def hold_out_pool(
    samples: list[Sample], per_class: int, seed: int, out: Path
) -> tuple[list[Sample], Path]:
    """(samples left to evaluate, CSV pool of `per_class` real + fake examples taken out)."""
    rng = random.Random(f"pool:{seed}")
    reals = [s for s in samples if s.label == "real"]
    fakes = [s for s in samples if s.label != "real"]
    if len(reals) < per_class or len(fakes) < per_class:
        raise ValueError("not enough real/fake samples to hold out a k-shot pool; pass --pool")
    chosen = rng.sample(reals, per_class) + rng.sample(fakes, per_class)
    out.mkdir(parents=True, exist_ok=True)
    pool = out / "kshot_pool.csv"
    with pool.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        for s in chosen:
            w.writerow([str(s.file.resolve()), "real" if s.label == "real" else "fake"])
    keys = {s.path for s in chosen}
    return [s for s in samples if s.path not in keys], pool


def _scoring_ran(samples: list[SampleRecord]) -> str:
    """What scored the cell's images: 'votes', 'logprobs', or the mix when some fell back."""
    counts: dict[str, int] = {}
    for r in samples:
        method = r.extra.get("method")
        if method:
            counts[method] = counts.get(method, 0) + 1
    if len(counts) <= 1:
        return next(iter(counts), "-")
    return ", ".join(f"{m} {c}" for m, c in sorted(counts.items()))


def stage2_columns(record: dict[str, Any]) -> dict[str, Any]:
    """Stage-2 position columns of a cell (with `--stage2`; the judge's with `--judge`)."""
    ex = record["summary"].get("explanations") or {}
    cols = {"frame_position": ex.get("frame_position")}
    if "object_position" in ex:
        cols.update(
            object_position=ex["object_position"], judge_refusal_rate=ex["judge_refusal_rate"]
        )
    return cols


def cell_row(record: dict[str, Any], threshold: float) -> dict[str, Any]:
    o = record["summary"]["overall"]
    usage = record["summary"].get("usage") or {}
    samples = run_samples(record)
    extras = [r.extra for r in samples]
    stage2 = stage2_columns(record) if record["system"].get("stage2") else {}
    return {
        "scoring": _scoring_ran(samples),
        "acc": o.get(f"acc@{threshold:g}"),
        "auc": o.get("auc"),
        "refusal_rate": o.get("refusal_rate"),
        "answer_refusal_rate": usage.get("answer_refusal_rate"),
        "short_of_answers": sum(
            1 for e in extras if e.get("answers_received", 0) < e.get("answers_requested", 0)
        ),
        "errors": record["counts"]["errors"],
        "images": o.get("n_total"),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "cost_usd": usage.get("cost_usd"),
        **stage2,
    }


def ablate(
    base: EvalConfig,
    variants: Sequence[int],
    ks: Sequence[int],
    ns: Sequence[int],
    *,
    progress: Callable[[int], Callable[[int], None]] | None = None,
    overlays: bool = True,
) -> dict[str, Any]:
    """Every (variant, k, n) cell on the config's protocol; the other knobs (scoring,
    temperature, seed, pool) are the config's `pipeline:` values unless `base.llm` overrides
    them (a `--protocol` preset sits under those). n is an axis only when the scoring is
    votes: a log-prob score reads one answer, so under it the n axis is absent rather than a
    column of identical runs."""
    from ..mllm.config import SCORING_RULES

    samples = select_samples(base)
    # k is an axis here: the base protocol is resolved at k=0, so a preset's k needs no pool yet.
    # Stage 2 (with --stage2) is asked zero-shot: its prompt is the same in every cell.
    no_examples = {**base.llm.pipeline, "k": 0, "stage2_k": 0}
    at_k0 = replace(base, llm=replace(base.llm, pipeline=no_examples))
    system = at_k0.build_system()
    if not isinstance(system, LLMSystem):
        raise ValueError(f"ablate needs an llm: system, not {base.system}")
    proto, planned = system.pipeline, system.planned_scoring()
    pool_path, pool_source = (base.pool, "--pool") if base.pool else (proto.pool, "pipeline.pool")
    if max(ks) > 0 and pool_path is None:
        samples, pool = hold_out_pool(samples, max(2, max(ks)), base.seed, base.out)
        pool_path, pool_source = str(pool), "held out of the selection"
    n_axis: list[int | None] = list(ns) if planned == "votes" else [None]
    n_axis_words = (
        "votes per image"
        if planned == "votes"
        else f"absent: {planned} scoring reads one answer, n does not apply"
    )
    cells: list[dict[str, Any]] = []
    for n in n_axis:
        for v in variants:
            for k in ks:
                cell = {**base.llm.pipeline, "variant": v, "k": k, "n": n, "stage2_k": 0}
                cfg = replace(
                    base,
                    out=base.out / (f"p{v}-k{k}-n{n}" if n is not None else f"p{v}-k{k}-{planned}"),
                    llm=replace(base.llm, pipeline=cell),
                    pool=pool_path if k > 0 else None,
                )
                rec = evaluate(cfg, samples=samples, progress=progress, overlays=overlays)
                cells.append({"variant": v, "k": k, "votes": n, **cell_row(rec, base.threshold)})
    result = {
        "config": {
            **base.identity(system),
            "protocol": base.llm.protocol,
            "variants": list(variants),
            "ks": list(ks),
            "ns": [n for n in n_axis if n is not None],
            "scoring": proto.scoring,
            "scoring_planned": planned,
            "scoring_rule": SCORING_RULES[planned],
            "n_axis": n_axis_words,
            "temperature": proto.temperature,
            "pool": pool_path,
            "pool_source": pool_source if pool_path else None,
        },
        "n_samples": len(samples),
        "cells": cells,
    }
    (base.out / "ablation.json").write_text(
        json.dumps(result, indent=1, default=str), encoding="utf-8"
    )
    (base.out / "ablation.md").write_text(ablation_markdown(result), encoding="utf-8")
    return result


def ablation_markdown(result: dict[str, Any]) -> str:
    """Seed-000 tables: per prompt (ACC, AUC, refusal rate) and per k, for every n.

    `refusal_rate` = images with no usable answer; `answer_refusal_rate` = refused or
    undetermined answers among all answers (votes), the per-query rate of paper 1."""
    cells, conf = result["cells"], result["config"]
    parts = [
        f"# MLLM ablation ({result['n_samples']} images; pooled over the selection, ACC at 0.5)",
        "",
        f"Scoring: {conf.get('scoring_rule', '?')}; temperature {conf.get('temperature')}.",
        f"n axis: {conf.get('n_axis', '?')}.",
        "",
    ]
    if cells and "frame_position" in cells[0]:
        parts += ["Stage 2 is asked zero-shot on the forged images of every cell (its prompt does "
                  "not vary with the cell); frame_position, object_position (the judge's) and "
                  "judge_refusal_rate are in the table of all cells.", ""]  # fmt: skip
    ran = sorted({str(c.get("scoring")) for c in cells})
    if len(ran) > 1:
        parts += [f"Scoring that ran differs between cells: {', '.join(ran)}.", ""]
    ks = conf["ks"]
    for n in conf["ns"] or [None]:
        for metric in ("acc", "auc", "refusal_rate", "answer_refusal_rate"):
            rows = []
            for v in conf["variants"]:
                by_k = {c["k"]: c for c in cells if c["variant"] == v and c["votes"] == n}
                rows.append([f"#{v}", *(by_k[k][metric] if k in by_k else None for k in ks)])
            scope = f"n={n} votes" if n is not None else f"scoring {conf.get('scoring_planned')}"
            parts += [f"## {metric.upper()} per prompt variant x k ({scope})", "",
                      md_table(["prompt", *(f"k={k}" for k in ks)], rows), ""]  # fmt: skip
    parts += [
        "## All cells",
        "",
        md_table(list(cells[0]), [list(c.values()) for c in cells]) if cells else "",
    ]
    return "\n".join(parts) + "\n"
