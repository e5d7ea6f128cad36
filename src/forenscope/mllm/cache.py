"""On-disk response cache keyed by sha256 of (endpoint, model, prompt version, image, params)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ..models.cache import cache_dir


def response_cache_dir() -> Path:
    """`llm/` under the one Forenscope cache folder (models.cache.cache_dir: FORENSCOPE_CACHE_DIR,
    else $XDG_CACHE_HOME/forenscope, else ~/.cache/forenscope)."""
    return cache_dir() / "llm"


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
        self.root = Path(root) if root else response_cache_dir()

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
