"""From per-sample records to every table of a run: overall, per subset, attribution,
localization, refusals, confusion matrices, usage and the worst errors."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from .classification import auc, binary_summary, confusion, roc_curve
from .metrics import localization_summary
from .records import Explanation, SampleRecord

SUBSET_COLUMNS = ("source", "generator", "family", "scope")
Record = SampleRecord


def _ys(records: list[Record]) -> tuple[np.ndarray, np.ndarray]:
    y = np.array([r.label != "real" for r in records], dtype=bool)
    s = np.array(
        [np.nan if r.fake_probability is None else r.fake_probability for r in records],
        dtype=float,
    )
    return y, s


def block(
    records: list[Record], threshold: float, reals: list[Record] | None = None
) -> dict[str, Any]:
    """binary_summary plus refusal/error rates; for a set without reals, AUC against `reals`."""
    y, s = _ys(records)
    out = binary_summary(y, s, threshold=threshold)
    n = len(records)
    refused = sum(1 for r in records if r.refusal is not None and r.unscored)
    errors = sum(1 for r in records if r.error is not None and r.unscored)
    out.update(n_total=n, refused=refused, errors=errors)
    out["refusal_rate"] = refused / n if n else float("nan")
    out["error_rate"] = errors / n if n else float("nan")
    if reals and out["n_neg"] == 0 and out["n_pos"]:
        yr, sr = _ys(reals)
        ok = np.isfinite(sr)
        out["auc_vs_run_reals"] = auc(
            np.r_[y[np.isfinite(s)], yr[ok]], np.r_[s[np.isfinite(s)], sr[ok]]
        )
    return out


def attribution(records: list[Record]) -> dict[str, Any]:
    """GAN/diffusion attribution accuracy on fakes of those families the system attributed."""
    fakes = [r for r in records if r.label == "fake" and r.family in ("gan", "diffusion")]
    named = [r for r in fakes if r.attribution in ("gan", "diffusion")]
    correct = sum(1 for r in named if r.attribution == r.family)
    return {
        "n_fakes_gan_or_diffusion": len(fakes),
        "n_attributed": len(named),
        "coverage": len(named) / len(fakes) if fakes else float("nan"),
        "accuracy_on_attributed": correct / len(named) if named else float("nan"),
    }


def _binary_label(r: Record, threshold: float) -> str | None:
    p = r.fake_probability
    return None if p is None else ("fake" if p >= threshold else "real")


def _usage(records: list[Record]) -> dict[str, Any] | None:
    used = [r.usage for r in records if r.usage]
    if not used:
        return None
    tot: dict[str, Any] = {
        k: sum(int(u.get(k) or 0) for u in used)
        for k in ("prompt_tokens", "completion_tokens", "calls", "cached_calls")
    }
    costs = [u["cost_usd"] for u in used if u.get("cost_usd") is not None]
    tot["cost_usd"] = float(sum(costs)) if costs else None
    votes = sum(int(r.extra.get("votes", 0)) for r in records)
    vote_refusals = sum(int(r.extra.get("refusals", 0)) for r in records)
    tot["answer_refusal_rate"] = (
        vote_refusals / (votes + vote_refusals) if votes + vote_refusals else float("nan")
    )
    return tot


def explanation_summary(records: list[Record]) -> dict[str, Any] | None:
    """Means of the stage-2 metrics over the forged images that were asked for one (frame
    position and box IoU over those with a mask)."""
    ex = [r.explanation for r in records if r.explanation is not None]
    if not ex:
        return None
    out: dict[str, Any] = {"n_asked": len(ex), "n_ok": sum(1 for e in ex if e.status == "ok")}
    for key in ("frame_position", "box_iou", "field_completeness", "flesch_reading_ease"):
        vals = [float(v) for e in ex if (v := getattr(e, key)) is not None]
        out[key] = float(np.mean(vals)) if vals else float("nan")
        if key == "frame_position":
            out.update(judge_summary(ex))
    return out


def judge_summary(ex: list[Explanation]) -> dict[str, Any]:
    """The judge's object-relative position accuracy over the answers it gave a verdict on, and
    its refusal rate over the answers it was asked about (refusals are never verdicts); empty
    when no judge ran."""
    asked = [e for e in ex if e.judged]
    if not asked:
        return {}
    verdicts = [e.object_position for e in asked if e.object_position is not None]
    refused = sum(1 for e in asked if e.judge_refusal is not None)
    return {
        "object_position": float(np.mean(verdicts)) if verdicts else float("nan"),
        "n_judged": len(asked),
        "judge_refusal_rate": refused / len(asked),
        "judge_errors": sum(1 for e in asked if e.judge_error is not None),
    }


# The manifest values stage 2 can name: family -> method, scope -> scope.
STAGE2_TRUTH = {"method": ("family", ("gan", "diffusion")), "scope": ("scope", ("global", "local"))}


def stage2_accuracy(records: list[Record]) -> dict[str, Any] | None:
    """Seed 000's generation-method table and its scope twin: over forged images whose manifest
    names a `family` of gan/diffusion (resp. a `scope` of global/local), the share whose stage-2
    answer names the same; an answer of "unknown"/"other" or no parsed answer counts as wrong
    (`n_unanswered` says how many). Per true value and per source, with the answers given."""
    asked = [r for r in records if r.explanation is not None]
    if not asked:
        return None
    out: dict[str, Any] = {}
    for field, (column, values) in STAGE2_TRUTH.items():
        rows = [r for r in asked if getattr(r, column) in values]
        out[field] = _accuracy_block(rows, column, field)
        out[field]["by_truth"] = {
            v: _accuracy_block([r for r in rows if getattr(r, column) == v], column, field)
            for v in values
        }
        out[field]["by_source"] = {
            s: _accuracy_block([r for r in rows if r.source == s], column, field)
            for s in sorted({r.source for r in rows})
        }
    return out


def _accuracy_block(rows: list[Record], column: str, field: str) -> dict[str, Any]:
    said = [_answered(r.explanation, field) for r in rows]
    right = sum(1 for r, s in zip(rows, said, strict=True) if s == getattr(r, column))
    answers: dict[str, int] = defaultdict(int)
    for s in said:
        answers[str(s) if s is not None else "no answer"] += 1
    return {
        "n": len(rows),
        "accuracy": right / len(rows) if rows else float("nan"),
        "n_unanswered": sum(1 for s in said if s is None),
        "answers": dict(sorted(answers.items())),
    }


def _answered(ex: Explanation | None, field: str) -> str | None:
    """Stage 2's method or scope as answered; None without a parsed answer."""
    return getattr(ex, field) if ex is not None and ex.status == "ok" else None


def worst_errors(records: list[Record], threshold: float, n: int = 12) -> list[dict[str, Any]]:
    """The most confident wrong answers: up to n/2 false positives (reals called fake) and the
    rest false negatives, each sorted by |truth - P(fake)|."""
    keys = {"path", "label", "generator", "source", "fake_probability", "pred_label"}
    scored = [(r, r.fake_probability) for r in records if r.fake_probability is not None]
    fp = [(r, p) for r, p in scored if r.label == "real" and p >= threshold]
    fn = [(r, p) for r, p in scored if r.label != "real" and p < threshold]
    fp.sort(key=lambda rp: -rp[1])
    fn.sort(key=lambda rp: rp[1])
    take_fp = fp[: max(n // 2, n - len(fn))]
    chosen = take_fp + fn[: n - len(take_fp)]
    return [r.model_dump(include=keys) for r, _ in chosen]


def roc_points(records: list[Record]) -> dict[str, list[list[float]]] | None:
    y, s = _ys(records)
    ok = np.isfinite(s)
    if not (y[ok].any() and (~y[ok]).any()):
        return None
    fpr, tpr, _ = roc_curve(y[ok], s[ok])
    return {
        "fpr_tpr": [[round(float(a), 5), round(float(b), 5)] for a, b in zip(fpr, tpr, strict=True)]
    }


def summarize(records: list[Record], *, threshold: float = 0.5) -> dict[str, Any]:
    reals = [r for r in records if r.label == "real"]
    out: dict[str, Any] = {"threshold": threshold, "overall": block(records, threshold)}
    out["overall"]["note"] = "pooled over every source of the run: read the per-source table"
    subsets: dict[str, dict[str, Any]] = {}
    for col in SUBSET_COLUMNS:
        groups: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            groups[str(getattr(r, col))].append(r)
        subsets[col] = {k: block(v, threshold, reals) for k, v in sorted(groups.items())}
    out["subsets"] = subsets
    out["attribution"] = attribution(records)
    loc = [(r.source, r.loc.metrics()) for r in records if r.loc is not None]
    by_src: dict[str, list[Any]] = defaultdict(list)
    for source, one in loc:
        by_src[source].append(one)
    out["localization"] = {
        "overall": localization_summary([one for _, one in loc]),
        "by_source": {k: localization_summary(v) for k, v in sorted(by_src.items())},
        "note": "forged images with a non-empty mask only",
    }
    labels = ["real", "fake", "tampered"]
    out["confusion_binary"] = {
        "labels": labels,
        "pred": ["real", "fake"],
        "matrix": confusion(
            [r.label for r in records],
            [_binary_label(r, threshold) for r in records],
            labels,
            ["real", "fake"],
        ),
    }
    if any(r.pred_label for r in records):
        # An "inconclusive" verdict is an answer (needs review), not a missing one: own column.
        pred = [*labels, "inconclusive"]
        out["confusion_3class"] = {
            "labels": labels,
            "pred": pred,
            "matrix": confusion(
                [r.label for r in records], [r.pred_label for r in records], labels, pred
            ),
        }
    out["usage"] = _usage(records)
    out["explanations"] = explanation_summary(records)
    out["stage2_accuracy"] = stage2_accuracy(records)
    out["worst_errors"] = worst_errors(records, threshold)
    out["roc"] = {"overall (pooled)": roc_points(records)}
    by_source: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_source[r.source].append(r)
    for src, recs in sorted(by_source.items()):
        if any(r.label == "real" for r in recs):
            out["roc"][src] = roc_points(recs)
        elif reals:  # a fake-only source: against every real of the run
            out["roc"][f"{src} vs run reals"] = roc_points(recs + reals)
    out["roc"] = {k: v for k, v in out["roc"].items() if v is not None}
    return out
