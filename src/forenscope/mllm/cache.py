"""On-disk response cache keyed by sha256 of (endpoint, model, prompt version, image, params)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def default_cache_dir() -> Path:
    root = os.environ.get("FORENSCOPE_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "forenscope") / "llm"


def cache_key(
    endpoint: str, model: str, prompt_version: str, image_sha256: str, params: dict[str, Any]
) -> str:
    blob = json.dumps(
        {"e": endpoint, "m": model, "p": prompt_version, "i": image_sha256, "x": params},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """One JSON file per response; written atomically so parallel runs never see half a file."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            value = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, response: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(response, fh)
        os.replace(tmp, path)
