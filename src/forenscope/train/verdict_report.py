"""The verdict protocol's figures and tables (see `train/verdict.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..eval.classification import auc, ece
from ..fusion.decision import make_decision
from ..fusion.verdict_model import LABELS
from .verdict_data import VARIANTS
from .verdict_fit import class_weights
from .verdict_table import Data

OUTCOMES = (*LABELS, "inconclusive")
CAMERA_SOURCES = frozenset({"metadata-extractor-images", "exif-samples"})
BINS = 15
START, END = "<!-- verdict-protocol:start -->", "<!-- verdict-protocol:end -->"
CONTAINER = ("is_jpeg", "is_png", "is_other", "log_bytes", "log_pixels", "aspect", "bits_per_px",
             "jpeg_quality")  # fmt: skip


@dataclass
class Results:
    data: Data
    probs: np.ndarray  # (N, 3) after provenance
    labels: np.ndarray  # (N,) outcome strings
    conflicts: np.ndarray  # (N,) bool
    format_only: np.ndarray  # (N,) P(not real) from container facts alone

    def mask(self, variant: str) -> np.ndarray:
        return np.asarray(self.data.variant == variant)

    def variant_figures(self, variant: str) -> dict[str, Any]:
        m = self.mask(variant)
        y, lab, p = self.data.y[m], self.labels[m], self.probs[m]
        decided = lab != "inconclusive"
        pred = np.array([LABELS.index(v) if v in LABELS else -1 for v in lab])
        recall = {c: float(np.mean(pred[y == k] == k)) for k, c in enumerate(LABELS)}
        per_class = [np.mean(pred[decided & (y == k)] == k) for k in range(3)]
        w = class_weights(y)
        counts = np.bincount(y, minlength=3).astype(float)
        equal = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0), 0.0)[y]
        precision, precision_equal = {}, {}
        for k, c in enumerate(LABELS):
            chosen = pred == k
            precision[c] = _ratio(w[chosen & (y == k)].sum(), w[chosen].sum())
            precision_equal[c] = _ratio(equal[chosen & (y == k)].sum(), equal[chosen].sum())
        top = p.max(axis=1)
        correct = p.argmax(axis=1) == y
        rows = [r for r, keep in zip(self.data.rows, m, strict=True) if keep]
        edits = np.array([r["label"] == "tampered" and r["family"] == "edit" for r in rows])
        edit_decided = edits & decided
        camera = np.array([r["source"] in CAMERA_SOURCES for r in rows])
        return {
            "n": int(m.sum()),
            "coverage": float(decided.mean()),
            "balanced_accuracy_decided": float(np.mean(per_class)),
            "recall": recall,
            "precision_prior": precision,
            "precision_equal_mix": precision_equal,
            "ece": ece(correct, top, BINS, weights=w),
            "ece_unweighted": ece(correct, top, BINS),
            "photoshop_tampered": _share(pred[edit_decided] == 2),
            "photoshop_decided": int(edit_decided.sum()),
            "camera_false_alarms": _share(np.isin(pred[camera], (1, 2))),
            "camera_inconclusive": _share(~decided[camera]),
            "camera_n": int(camera.sum()),
            "auc_not_real": auc(y != 0, 1 - p[:, 0]),
            "auc_format_only": auc(y != 0, self.format_only[m]),
        }

    def validation(self) -> dict[str, Any]:
        return {
            "protocol": "leave-one-source-out over ../shared/data (CIFAKE excluded), as stored and "
            "laundered (JPEG q70-90, resize 0.5-1.0); at the 60/30/10 class mix",
            "variants": {v: self.variant_figures(v) for v in VARIANTS},
        }


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b > 0 else float("nan")


def _share(hits: np.ndarray) -> float:
    return float(hits.mean()) if hits.size else float("nan")


def format_only_scores(data: Data) -> np.ndarray:
    """Leave-one-source-out P(not real) of a logistic regression on container facts only."""
    from sklearn.linear_model import LogisticRegression

    x = np.array([[r["container"][k] for k in CONTAINER] for r in data.rows])
    x = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    yb = (data.y != 0).astype(int)
    out = np.zeros(len(yb))
    for g in sorted(set(data.group)):
        test = data.group == g
        if len(set(yb[~test])) < 2:
            out[test] = float(yb[~test].mean())
            continue
        lr = LogisticRegression(C=1.0, max_iter=1000).fit(x[~test], yb[~test])
        out[test] = lr.predict_proba(x[test])[:, 1]
    return out


def evaluate(data: Data, probs: np.ndarray, thresholds: np.ndarray) -> Results:
    """Decide every row as the product does and gather the figures."""
    labels, conflicts, final = [], [], np.zeros_like(probs)
    for i, row in enumerate(data.rows):
        d = make_decision(
            row["experts"],
            dict(zip(LABELS, probs[i].tolist(), strict=True)),
            dict(zip(LABELS, thresholds[i].tolist(), strict=True)),
        )
        labels.append(d.label)
        conflicts.append(bool(d.conflicts))
        final[i] = [d.probabilities[c] for c in LABELS]
    return Results(data, final, np.array(labels), np.array(conflicts), format_only_scores(data))


def _expert_score(row: dict[str, Any], name: str) -> float:
    s = row["experts"].get(name, {}).get("score")
    return 0.5 if s is None else float(s)


def source_table(res: Results, variant: str) -> list[str]:
    """Per held-out source: 4-way confusion, coverage, and AUC of P(not real) against every
    real of the variant for the fused verdict, the best single expert and format-only."""
    m = res.mask(variant)
    reals = m & (res.data.y == 0)
    out = [
        "| source | truth | n | real | ai_generated | tampered | inconclusive | coverage "
        "| AUC fused | AUC best expert | AUC format-only |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for g in sorted(set(res.data.group[m])):
        for k, truth in enumerate(LABELS):
            sel = m & (res.data.group == g) & (res.data.y == k)
            if not sel.any():
                continue
            counts = [int(np.sum(res.labels[sel] == o)) for o in OUTCOMES]
            cov = 1 - counts[3] / sel.sum()
            aucs = ["", "", ""]
            if k != 0:
                both = sel | reals
                yb = res.data.y[both] != 0
                fused = auc(yb, 1 - res.probs[both, 0])
                rows = [r for r, keep in zip(res.data.rows, both, strict=True) if keep]
                best_name, best = "", float("nan")
                for name in res.data.experts:
                    a = auc(yb, [_expert_score(r, name) for r in rows])
                    if not np.isnan(a) and (np.isnan(best) or a > best):
                        best_name, best = name, a
                fmt = auc(yb, res.format_only[both])
                aucs = [f"{fused:.3f}", f"{best:.3f} ({best_name})", f"{fmt:.3f}"]
            out.append(
                f"| {g} | {truth} | {int(sel.sum())} | "
                + " | ".join(str(c) for c in counts)
                + f" | {cov:.2f} | "
                + " | ".join(aucs)
                + " |"
            )
    return out


def reliability_table(res: Results, variant: str, bins: int = 10) -> list[str]:
    m = res.mask(variant)
    p, y = res.probs[m], res.data.y[m]
    top, correct, w = p.max(axis=1), p.argmax(axis=1) == y, class_weights(y)
    out = [
        "| P(leading class) | n | mean P | share right (at the 60/30/10 class mix) |",
        "|---|---|---|---|",
    ]
    idx = np.clip(np.floor(top * bins).astype(int), 0, bins - 1)
    for b in range(bins):
        sel = idx == b
        if not sel.any():
            continue
        right = float((w[sel] * correct[sel]).sum() / w[sel].sum())
        out.append(
            f"| {b / bins:.1f}-{(b + 1) / bins:.1f} | {int(sel.sum())} | {top[sel].mean():.3f} | "
            f"{right:.3f} |"
        )
    return out


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def render(res: Results, data: Data, command: str = "python -m forenscope.train.verdict") -> str:
    lines = [START, "", f"`{command}` (cache filled by `python -m forenscope.train.verdict_data`;"
             f" {len(data.rows)} rows, {data.errors} unreadable).", ""]  # fmt: skip
    summary = ["| figure | target | " + " | ".join(VARIANTS) + " |", "|---|---|---|---|"]
    figs = {v: res.variant_figures(v) for v in VARIANTS}
    targets: Sequence[tuple[str, str, Any]] = (
        ("coverage", ">= 0.8", lambda f: f["coverage"]),
        ("balanced accuracy, decided, 3 labels", ">= 0.85",
         lambda f: f["balanced_accuracy_decided"]),
        ("recall tampered (all tampered)", ">= 0.6", lambda f: f["recall"]["tampered"]),
        ("recall ai_generated (all generated)", ">= 0.9", lambda f: f["recall"]["ai_generated"]),
        ("recall real", "", lambda f: f["recall"]["real"]),
        ("precision real / ai / tampered (60/30/10 mix)", ">= 0.9", lambda f: " / ".join(
            f"{f['precision_prior'][c]:.2f}" for c in LABELS)),
        ("same, at an equal class mix", "", lambda f: " / ".join(
            f"{f['precision_equal_mix'][c]:.2f}" for c in LABELS)),
        ("photoshopped forgeries called tampered (decided)", ">= 0.8",
         lambda f: f"{f['photoshop_tampered']:.3f} of {f['photoshop_decided']}"),
        ("false alarms, untouched camera JPEGs", "<= 0.03",
         lambda f: f"{f['camera_false_alarms']:.3f} of {f['camera_n']} (inconclusive "
                   f"{f['camera_inconclusive']:.2f})"),
        ("ECE (leading class, at the 60/30/10 class mix)", "<= 0.05", lambda f: f["ece"]),
        ("AUC P(not real), all", "", lambda f: f["auc_not_real"]),
        ("AUC format-only baseline, all", "", lambda f: f["auc_format_only"]),
    )  # fmt: skip
    for name, target, get in targets:
        summary.append(
            f"| {name} | {target} | " + " | ".join(_fmt(get(figs[v])) for v in VARIANTS) + " |"
        )
    lines += summary
    for v in VARIANTS:
        lines += ["", f"Per held-out source, {v}:", ""] + source_table(res, v)
        lines += ["", f"Reliability, {v}:", ""] + reliability_table(res, v)
    lines += ["", END]
    return "\n".join(lines)


def record(path: Path, text: str) -> None:
    """Replace the marked section of `path` with `text` (appended when absent)."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if START in old and END in old:
        new = old[: old.index(START)] + text + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new, encoding="utf-8")
