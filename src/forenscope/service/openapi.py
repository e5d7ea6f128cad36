"""The service's OpenAPI document, as committed in docs/openapi.json.

Regenerate with `python -m forenscope.service.openapi docs/openapi.json`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from .app import create_app
from .settings import Settings


def openapi_text() -> str:
    """The document for a default app (settings do not change it)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp), warm_up=False))
        try:
            schema = app.openapi()
        finally:
            app.state.service.close()
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = openapi_text()
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
