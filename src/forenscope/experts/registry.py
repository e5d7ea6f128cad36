"""Expert registry: a decorator, did-you-mean lookups, and third-party entry points."""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import logging
import threading
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import TypeVar

from ..errors import InputError, UnknownExpertError
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
_PLUGIN_ERRORS: dict[str, str] = {}  # entry-point name -> why it could not be loaded
_loaded = False
MAX_EXPERT_NAMES = 256  # names in one request, duplicates included; far more than exist
_log = logging.getLogger(__name__)
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
            try:
                ep.load()  # a plugin registers itself with @register_expert on import
            except Exception as exc:  # one broken plugin must not take every expert down
                _PLUGIN_ERRORS[ep.name] = f"{type(exc).__name__}: {exc}"[:500]
                _log.warning("expert plugin %r could not be loaded: %s", ep.name, exc)
        _loaded = True  # only once every module has registered


def plugin_errors() -> dict[str, str]:
    """Entry-point plugins that failed to load, with the reason (they are left out)."""
    _load()
    return dict(_PLUGIN_ERRORS)


def preload_experts() -> None:
    """Load the registry and import what every available expert needs, once, on this thread.

    Servers call this before accepting work: first imports of heavy packages (cv2 among them)
    are not safe to race from several threads, and a half-imported module has no `__spec__`.
    """
    for cls in expert_classes().values():
        for module in cls.spec.requires:
            try:
                importlib.import_module(module)
            except Exception:  # unavailable: available() reports it later
                continue


def check_expert_names(names: Iterable[str]) -> list[str]:
    """`names` deduplicated in order, each one registered.

    Raises InputError for an empty list (no expert would vote, and the verdict would mean
    nothing) or more than MAX_EXPERT_NAMES entries, and UnknownExpertError for an unknown name.
    """
    given = list(names)
    if len(given) > MAX_EXPERT_NAMES:
        raise InputError(
            f"{len(given):,} expert names given; at most {MAX_EXPERT_NAMES} are accepted"
        )
    unique = list(dict.fromkeys(n.strip() for n in given if n.strip()))
    if not unique:
        raise InputError(
            "the expert list is empty: name at least one expert (see `forenscope experts`), "
            "or leave the option out to run the default set"
        )
    _load()
    for name in unique:
        if name not in _REGISTRY:
            raise _unknown(name)
    return unique


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
        raise _unknown(name) from None


def _unknown(name: str) -> UnknownExpertError:
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UnknownExpertError(
        f"unknown expert {name[:100]!r}{hint} (known: {', '.join(sorted(_REGISTRY))})"
    )


def expert_classes() -> dict[str, type[Expert]]:
    _load()
    return dict(_REGISTRY)
