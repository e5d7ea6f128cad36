"""Audit log (JSONL) of every raw call, with the API key and image bytes redacted."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_DATA_URL = re.compile(r"^data:([\w/+.-]+);base64,(.*)$", re.DOTALL)


def _redact_data_url(url: str) -> str:
    m = _DATA_URL.match(url)
    if not m:
        return url
    try:
        raw = base64.b64decode(m.group(2), validate=False)
    except (binascii.Error, ValueError):
        raw = m.group(2).encode()
    digest = hashlib.sha256(raw).hexdigest()
    return f"data:{m.group(1)};base64,<redacted {len(raw)} bytes sha256={digest}>"


def redact_text(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def redact(value: Any, secrets: Iterable[str | None] = ()) -> Any:
    """A deep copy of a JSON value with base64 images and secret strings replaced."""
    secrets = tuple(secrets)
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    if isinstance(value, str):
        return redact_text(_redact_data_url(value), secrets)
    return value


class AuditLog:
    """Appends one JSON line per call (request, response or error, timing, cache hit)."""

    def __init__(self, path: str | Path, secrets: Iterable[str | None] = ()) -> None:
        self.path = Path(path)
        self._secrets = tuple(s for s in secrets if s)

    def write(self, record: dict[str, Any]) -> None:
        line = {"ts": dt.datetime.now(dt.timezone.utc).isoformat(), **record}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(redact(line, self._secrets)) + "\n")
