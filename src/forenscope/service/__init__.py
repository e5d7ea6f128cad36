"""HTTP API and web UI: `create_app(Settings(data_dir=...))`, or `forenscope serve`.

Needs the `service` extra (FastAPI, uvicorn, python-multipart). Names load on first use, so
`forenscope.service.cli` (and `forenscope --help`) import neither FastAPI nor uvicorn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .settings import Settings

__all__ = ["ChatBackend", "Settings", "create_app"]

if TYPE_CHECKING:
    from .app import create_app
    from .chat import ChatBackend


def __getattr__(name: str) -> Any:
    if name not in ("create_app", "ChatBackend"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401  (uploads)
    except ImportError as exc:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("the HTTP service", exc.name or "fastapi", "service") from exc
    module = importlib.import_module(".app" if name == "create_app" else ".chat", __name__)
    return getattr(module, name)
