"""The report as JSON (arrays excluded by the model) and the JSON schema of that JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..types import Report


def report_to_json(report: Report) -> str:
    """Stable JSON (model field order, indent=2); heatmaps and masks are not included."""
    return report.model_dump_json(indent=2)


def json_schema() -> dict[str, Any]:
    """The JSON schema of `report_to_json` output."""
    return Report.model_json_schema()


def json_schema_text() -> str:
    """The schema as the text stored in docs/report-schema.json."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_json_schema(path: Path) -> Path:
    """Regenerate docs/report-schema.json (or any path) from the models."""
    path.write_text(json_schema_text(), encoding="utf-8")
    return path
