"""`python -m forenscope.report PATH` regenerates the report JSON schema file."""

from __future__ import annotations

import sys
from pathlib import Path

from .json_report import write_json_schema

if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/report-schema.json")
    write_json_schema(target)
