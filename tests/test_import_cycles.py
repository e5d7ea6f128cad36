"""No import cycle among the modules of forenscope (issue 14: service/engine.py and workers.py,
eval's systems.py and runner.py, cli.py and cli_progress.py imported each other). Every import
counts, in a function body too; `from . import x` is an import of x, not of the package."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "forenscope"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rsplit(".", 1)[0]
            full = (f"{base}.{node.module}" if node.module else base) if node.level else ""
            full = full or node.module or ""
            found = {f"{full}.{a.name}" for a in node.names}
            out |= found | ({full} if node.module else set())
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return (out & known) - {name}


def import_graph() -> dict[str, set[str]]:
    paths = list(PACKAGE.rglob("*.py"))
    known = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, known) for p in paths}


def test_the_graph_sees_imports_at_the_top_and_inside_functions() -> None:
    graph = import_graph()
    assert "forenscope.service.workers" in graph["forenscope.service.engine"]
    assert "forenscope.service.report_files" in graph["forenscope.service.workers"]
    assert "forenscope.service.admission" in graph["forenscope.service.openai.server"]
    assert "forenscope.cli_text" in graph["forenscope.cli_progress"]  # inside a function
    assert "forenscope.eval.runner" in graph["forenscope.eval.llm_system"]


def test_no_import_cycle_in_the_package() -> None:
    try:
        tuple(graphlib.TopologicalSorter(import_graph()).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle in forenscope: {exc.args[1]}") from None
