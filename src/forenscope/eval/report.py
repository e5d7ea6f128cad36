"""Run reports: the JSON run record, Markdown tables and a self-contained HTML page
(inline SVG ROC curves, no plotting library)."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

HEAD_COLS = (
    "n", "acc@0.5", "acc@best_thr (oracle)", "balanced_acc", "real_acc", "fake_acc", "auc",
    "auc_vs_run_reals", "ap", "eer", "tpr@5%fpr", "ece", "refusal_rate",
)  # fmt: skip
LOC_COLS = (
    "n", "f1@fixed", "iou@fixed", "mcc@fixed", "pixel_auc", "f1@best_thr_per_image (oracle)",
    "f1@best_thr_dataset (oracle)",
)  # fmt: skip


def fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def headline_rows(summary: dict[str, Any], column: str = "source") -> list[list[Any]]:
    cols = head_cols(summary)
    rows = [[k, *(b.get(c) for c in cols)] for k, b in summary["subsets"][column].items()]
    return rows + [["(pooled, do not quote)", *(summary["overall"].get(c) for c in cols)]]


def head_cols(summary: dict[str, Any]) -> list[str]:
    """HEAD_COLS with the accuracy column named after the run's fixed threshold."""
    fixed = f"acc@{summary['threshold']:g}"
    return [fixed if c == "acc@0.5" else c for c in HEAD_COLS]


def _json_default(o: Any) -> Any:
    return str(o)


def _clean(o: Any) -> Any:
    """NaN and inf -> None so the record is strict JSON."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    return o


def write_json(record: dict[str, Any], path: Path) -> None:
    path.write_text(
        json.dumps(_clean(record), indent=1, default=_json_default, allow_nan=False),
        encoding="utf-8",
    )


def markdown(record: dict[str, Any]) -> str:
    s, cfg = record["summary"], record["config"]
    parts = [f"# forenscope eval: {cfg['system']}", ""]
    parts.append(
        f"Dataset `{cfg['dataset']}`, {record['counts']['samples']} samples, filters "
        f"{cfg['filters'] or 'none'}, preprocessing `{cfg['preprocess']}`, "
        f"threshold {s['threshold']} (fixed). Code {record['code'].get('git_commit') or '?'}."
    )
    for w in record["warnings"]:
        parts += ["", f"> **WARNING** {w}"]
    for col in ("source", "generator", "family", "scope"):
        parts += ["", f"## Per {col}" + (" (headline)" if col == "source" else ""), ""]
        parts.append(md_table([col, *head_cols(s)], headline_rows(s, col)))
    parts += [
        "",
        "`acc@best_thr (oracle)` picks the threshold with the labels: an upper bound, not "
        "deployable. `auc_vs_run_reals`: a fake-only subset against every real image of the run.",
    ]
    loc = s["localization"]
    if loc["overall"].get("n"):
        parts += ["", "## Localization (forged images only)", ""]
        rows = [["all", *(loc["overall"].get(c) for c in LOC_COLS)]]
        rows += [[k, *(v.get(c) for c in LOC_COLS)] for k, v in loc["by_source"].items()]
        parts.append(md_table(["source", *LOC_COLS], rows))
    a = s["attribution"]
    parts += ["", "## Attribution (GAN vs diffusion)", "",
              md_table(list(a), [list(a.values())])]  # fmt: skip
    parts += ["", "## Confusion (fixed threshold; last column = no answer)", ""]
    cb = s["confusion_binary"]
    parts.append(
        md_table(
            ["true \\ pred", *cb["pred"], "no answer"],
            [[lab, *row] for lab, row in zip(cb["labels"], cb["matrix"], strict=True)],
        )
    )
    if "confusion_3class" in s:
        c3 = s["confusion_3class"]
        parts += [
            "",
            md_table(
                ["true \\ pred", *c3.get("pred", c3["labels"]), "no answer"],
                [[lab, *row] for lab, row in zip(c3["labels"], c3["matrix"], strict=True)],
            ),
        ]
    if s.get("explanations"):
        ex = s["explanations"]
        parts += ["", "## Stage-2 explanations (forged images; positions where a mask exists)", ""]
        parts.append(md_table(list(ex), [list(ex.values())]))
        judge = (record.get("system") or {}).get("judge")
        if judge and "object_position" in ex:
            parts += ["", f"object_position: share of the judge's verdicts ({judge['model']} at "
                      f"{judge['base_url']}, {judge['prompt_version']}) that the answer's "
                      "object-relative location names the outlined truth region; "
                      "judge_refusal_rate: share it refused or left undetermined "
                      "(never a verdict)."]  # fmt: skip
    if s.get("stage2_accuracy"):
        parts += ["", *stage2_accuracy_markdown(s["stage2_accuracy"])]
    if s.get("usage"):
        parts += ["", "## LLM usage", "", md_table(list(s["usage"]), [list(s["usage"].values())])]
    parts += ["", "## Worst errors", ""]
    we = s["worst_errors"]
    if we:
        parts.append(md_table(list(we[0]), [list(r.values()) for r in we]))
    parts += [
        "",
        f"Errors: {record['counts']['errors']}, "
        f"refusals/abstentions: {record['counts']['refusals']}.",
    ]
    return "\n".join(parts) + "\n"


def roc_svg(curves: dict[str, Any], size: int = 320) -> str:
    colours = [
        "#1f77b4",
        "#d62728",
        "#2ca02c",
        "#9467bd",
        "#ff7f0e",
        "#8c564b",
        "#e377c2",
        "#17becf",
    ]
    pad, inner = 30, size - 40
    mid = 10 + inner / 2
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 240}" height="{size}">',
        f'<rect x="{pad}" y="10" width="{inner}" height="{inner}" fill="none" stroke="#999"/>',
        f'<line x1="{pad}" y1="{10 + inner}" x2="{pad + inner}" y2="10" stroke="#ccc"/>',
        f'<text x="{pad + inner / 2}" y="{size - 4}" font-size="11">FPR</text>',
        f'<text x="10" y="{mid}" font-size="11" transform="rotate(-90 10 {mid})">TPR</text>',
    ]
    for i, (name, curve) in enumerate(list(curves.items())[:8]):
        c = colours[i % len(colours)]
        pts = " ".join(
            f"{pad + x * inner:.1f},{10 + (1 - y) * inner:.1f}" for x, y in curve["fpr_tpr"]
        )
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{pts}"/>')
        label = html.escape(name)
        out.append(
            f'<text x="{size - 2}" y="{20 + 14 * i}" font-size="11" fill="{c}">{label}</text>'
        )
    return "\n".join(out) + "</svg>"


def _md_to_html_table(md: str) -> str:
    lines = [ln for ln in md.splitlines() if ln.startswith("|") and not ln.startswith("|---")]
    rows = [[html.escape(c.strip()) for c in ln.strip("|").split("|")] for ln in lines]
    if not rows:
        return ""
    head = "".join(f"<th>{c}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_page(record: dict[str, Any], overlays: dict[str, str] | None = None) -> str:
    """Markdown sections as HTML tables, plus the ROC SVG and worst-error overlays (data URIs)."""
    md = markdown(record)
    body: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if block:
            body.append(_md_to_html_table("\n".join(block)))
            block.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            block.append(line)
            continue
        flush()
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("> "):
            body.append(f'<p class="warn">{html.escape(line[2:].replace("**", ""))}</p>')
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush()
    roc = record["summary"].get("roc") or {}
    if roc:
        body.insert(2, "<h2>ROC curves</h2>" + roc_svg(roc))
    if overlays:
        body.append("<h2>Worst errors: image, heatmap (red), true mask (green)</h2>")
    for path, uri in (overlays or {}).items():
        cap = html.escape(path)
        img = f'<img src="{uri}" width="256" alt="overlay"/>'
        body.append(f"<figure>{img}<figcaption>{cap}</figcaption></figure>")
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
        ".warn{background:#fee;border:2px solid #c00;padding:6px}figure{display:inline-block}"
    )
    title = html.escape(f"forenscope eval: {record['config']['system']}")
    head = f"<meta charset='utf-8'><title>{title}</title><style>{style}</style>"
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>"


def stage2_accuracy_markdown(acc: dict[str, Any]) -> list[str]:
    """Method (gan/diffusion vs the manifest's family) and scope (global/local) accuracy."""
    parts = ["## Stage-2 method and scope accuracy (against the manifest's family and scope)", ""]
    for field, block in acc.items():
        rows = [["all", block["n"], block["accuracy"], block["n_unanswered"], block["answers"]]]
        for group in ("by_truth", "by_source"):
            rows += [
                [
                    f"{group.removeprefix('by_')} {name}",
                    b["n"],
                    b["accuracy"],
                    b["n_unanswered"],
                    b["answers"],
                ]  # fmt: skip
                for name, b in block[group].items()
            ]
        parts += [f"### {field}", "", md_table(["images", "n", "accuracy", "unanswered",
                                                 "answers"], rows), ""]  # fmt: skip
    return parts
