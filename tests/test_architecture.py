"""Imports point down the analysis line (ARCHITECTURE.md): no module imports a higher layer,
not even inside a function. KNOWN_UPWARD would list an exception with its reason; it is empty."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "forenscope"

# Lowest first. A unit is a top-level module or package of forenscope.
LAYERS: list[set[str]] = [
    {"types", "errors", "allocator"},
    {"io", "models", "config", "map_geometry", "residual"},
    {"learned", "faces"},
    {"experts", "forgeries", "inspect"},
    {"fusion"},
    {"report"},
    {"mllm"},
    {"pipeline"},
    {"batch", "parallelism", "eval", "train", "demo", "video"},
    {"service"},
    {"cli", "cli_text", "cli_progress", "llm_cli", "__main__", "__init__"},
]

# (importing module, imported unit) -> why it may still point up. Empty since the `forenscope
# llm` and `chat` commands moved from mllm/cli.py to llm_cli.py; a new entry needs a reason.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


def layer_of(unit: str) -> int:
    for i, units in enumerate(LAYERS):
        if unit in units:
            return i
    raise AssertionError(f"{unit!r} is in no layer of ARCHITECTURE.md: add it to LAYERS")


def unit_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py")


def imported_units(path: Path) -> set[str]:
    """Top-level forenscope units imported anywhere in the file (relative or absolute)."""
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package[: len(package) - (node.level - 1)]
            target = base + (node.module.split(".") if node.module else [])
            if target:
                out.add(target[0])
            else:  # `from . import x` at the top level
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("forenscope."):
            out.add((node.module or "").split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("forenscope."))
    return out


def test_no_import_points_up_a_layer() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        here = unit_of(path)
        rel = str(path.relative_to(ROOT))
        for unit in imported_units(path) - {here, "__version__"}:
            if layer_of(unit) > layer_of(here) and (rel, unit) not in KNOWN_UPWARD:
                upward.append(f"{rel} imports {unit}")
    assert upward == [], "imports that run back up (see ARCHITECTURE.md):\n" + "\n".join(upward)


def test_the_known_exceptions_still_exist() -> None:
    """An exception that no longer occurs is removed from the list, so the list stays true."""
    stale = [
        f"{rel} -> {unit}" for rel, unit in KNOWN_UPWARD if unit not in imported_units(ROOT / rel)
    ]
    assert stale == []


def test_types_import_nothing_else_of_forenscope() -> None:
    for path in (ROOT / "types").rglob("*.py"):
        assert imported_units(path) <= {"types"}, path
