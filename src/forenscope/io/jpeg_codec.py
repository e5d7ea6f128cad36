"""JPEG saves in memory that let the other expert threads run while libjpeg encodes.

Pillow encodes into a Python buffer (`BytesIO`) 64 KB at a time *holding the GIL*, but into a
file descriptor with the GIL released for the whole image (`encode_to_file`). The experts'
re-saves (ELA, JPEG ghosts, the localizer's features) are a fifth of an analysis' CPU time, so
in memory the second expert thread waited on them. Here the save goes to an anonymous in-memory
file (`memfd_create`, Linux): the same encoder, the same bytes, the GIL released. Elsewhere, or
if the kernel refuses the file, the save goes to `BytesIO` as before.
"""

from __future__ import annotations

import io
import os
from typing import Any

from PIL import Image


def encode(image: Image.Image, **params: Any) -> bytes:
    """`image` saved as JPEG with Pillow's `params` (quality, subsampling, ...): the bytes
    `image.save(BytesIO(), "JPEG", **params)` writes."""
    memfd_create = getattr(os, "memfd_create", None)
    fd = -1
    if memfd_create is not None:
        try:
            fd = memfd_create("forenscope-jpeg", getattr(os, "MFD_CLOEXEC", 0))
        except OSError:
            fd = -1
    if fd < 0:
        buf = io.BytesIO()
        image.save(buf, "JPEG", **params)
        return buf.getvalue()
    with open(fd, "w+b", buffering=0) as f:  # unbuffered: libjpeg writes to the descriptor
        image.save(f, "JPEG", **params)
        return os.pread(fd, os.fstat(fd).st_size, 0)
