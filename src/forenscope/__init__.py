"""Forenscope: explainable image forensics.

    >>> import forenscope
    >>> report = forenscope.analyze("photo.jpg")
    >>> report.verdict.label, report.verdict.probability
    >>> clip = forenscope.analyze_video("clip.mp4")  # or analyze_media: a clip or an image

Names are loaded on first use so `import forenscope` stays light (no onnxruntime, torch or web
framework is imported here, nor by the modules these names come from).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "analyze": "pipeline",
    "analyze_image": "pipeline",
    "analyze_media": "video.dispatch",
    "analyze_video": "video",
    "run_experts": "pipeline",
    "load_image": "io",
    "ImageInput": "io",
    "list_experts": "experts",
    "get_expert": "experts",
    "register_expert": "experts",
    "Expert": "experts",
    "Report": "types",
    "ExpertResult": "types",
    "Evidence": "types",
    "Region": "types",
    "Verdict": "types",
    "write_report": "report",
}

__all__ = [
    "Evidence",
    "Expert",
    "ExpertResult",
    "ImageInput",
    "Region",
    "Report",
    "Verdict",
    "__version__",
    "analyze",
    "analyze_image",
    "analyze_media",
    "analyze_video",
    "get_expert",
    "list_experts",
    "load_image",
    "register_expert",
    "run_experts",
    "write_report",
]

if TYPE_CHECKING:
    from .experts import Expert, get_expert, list_experts, register_expert
    from .io import ImageInput, load_image
    from .pipeline import analyze, analyze_image, run_experts
    from .report import write_report
    from .types import Evidence, ExpertResult, Region, Report, Verdict
    from .video import analyze_video
    from .video.dispatch import analyze_media


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forenscope' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
