"""Text the CLI prints about user-named files, made safe for a terminal."""

from __future__ import annotations

import re

# Characters a terminal may act on: C0/C1 controls (ESC starts the sequences that move the
# cursor, erase lines or retitle the window) and the bidirectional overrides that reorder text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """`text` with every character a terminal would act on shown as an escape (\\x1b), so a
    file named with ANSI sequences cannot rewrite or hide the verdict printed next to it."""
    return _UNSAFE.sub(lambda m: repr(m.group())[1:-1], text)


def json_line(text: str) -> str:
    """A JSON document with the same characters escaped as JSON escapes (still valid JSON)."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
