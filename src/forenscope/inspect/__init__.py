"""Analyst's tools computed on demand: ELA at a chosen quality, noise and luminance-gradient
views, the JPEG panel (tables, quality, ghost curves) and the full metadata panel.

Pure functions on a decoded `ImageInput`; each one bounds its work (pixels, table sizes, tree
depth) so a huge or hostile image costs at most a few seconds. The web UI's layers and panels
call them through `service/routes_inspect.py`.
"""

from __future__ import annotations

from .jpeg import JpegPanel, jpeg_panel
from .metadata import MetadataPanel, ThumbnailCheck, embedded_thumbnail, metadata_panel
from .views import MAX_VIEW_PIXELS, View, ela_view, full_view, gradient_view, noise_view

__all__ = [
    "MAX_VIEW_PIXELS",
    "JpegPanel",
    "MetadataPanel",
    "ThumbnailCheck",
    "View",
    "ela_view",
    "embedded_thumbnail",
    "full_view",
    "gradient_view",
    "jpeg_panel",
    "metadata_panel",
    "noise_view",
]
