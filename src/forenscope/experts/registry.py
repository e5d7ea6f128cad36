"""Expert registry: a decorator, did-you-mean lookups, and third-party entry points."""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import threading
from importlib.metadata import entry_points
from typing import TypeVar

from ..errors import UnknownExpertError
from .base import Expert

ENTRY_POINT_GROUP = "forenscope.experts"

# Built-in expert modules, imported on first registry use so `import forenscope` stays light.
BUILTIN_MODULES = (
    "ela",
    "noise",
    "spectrum",
    "jpeg_artifacts",
    "copy_move",
    "exif",
    "generator_metadata",
    "c2pa_manifest",
    "watermark",
    "clip_detector",
    "cnn_baseline",
    "face_seam",
    "face_consistency",
    "face_eyes",
    "face_clip",
    "learned_localizer",
)

_REGISTRY: dict[str, type[Expert]] = {}
_loaded = False
_load_lock = threading.RLock()  # the service's first requests may arrive on several threads

E = TypeVar("E", bound=type[Expert])


def register_expert(cls: E) -> E:
    """Class decorator: add an expert to the registry under `cls.spec.name`."""
    name = cls.spec.name
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"an expert named {name!r} is already registered")
    _REGISTRY[name] = cls
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        for module in BUILTIN_MODULES:
            importlib.import_module(f"{__package__}.{module}")
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            ep.load()  # a plugin registers itself with @register_expert on import
        _loaded = True  # only once every module has registered


def list_experts(pattern: str = "*") -> list[str]:
    """Registered expert names matching a glob pattern, sorted."""
    _load()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_expert(name: str) -> Expert:
    """A fresh instance of the named expert; unknown names get a did-you-mean hint."""
    _load()
    try:
        return _REGISTRY[name]()
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownExpertError(
            f"unknown expert {name!r}{hint} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None


def expert_classes() -> dict[str, type[Expert]]:
    _load()
    return dict(_REGISTRY)
