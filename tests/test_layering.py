"""The package's import graph (every `import` statement, module level and inside functions alike): no circle,
and the lower layers import nothing above them."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "avhighlights"
PACKAGE = PACKAGE_ROOT.name
UPPER = ("pipeline", "flows", "cli", "evaluation")
LOWER = ("core", "extractors", "models")
ALLOWED_UP = {"models": {"avhighlights.evaluation.metrics", "avhighlights.evaluation.ap"}}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """Modules of the package that `path` imports; `from A import B` counts A.B when B is a module, else A."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}
    return {m for m in found if m in modules and m != name}


def import_graph() -> nx.DiGraph:
    files = sorted(PACKAGE_ROOT.rglob("*.py"))
    modules = {module_name(p) for p in files}
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for path in files:
        graph.add_edges_from((module_name(path), target) for target in imported_modules(path, modules))
    return graph


@pytest.fixture(scope="module")
def graph() -> nx.DiGraph:
    return import_graph()


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_graph_sees_the_package(graph):
    assert {"avhighlights.pipeline.scorer", "avhighlights.pipeline.run", "avhighlights.core.types"} <= set(graph)
    assert graph.has_edge("avhighlights.pipeline.run", "avhighlights.pipeline.scorer")
    assert graph.has_edge("avhighlights.pipeline.scorer", "avhighlights.pipeline.fit_cache")


def test_no_import_circle(graph):
    circles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert circles == [], f"import circles: {circles}"


def test_lower_layers_import_nothing_above_them(graph):
    wrong = []
    for source, target in graph.edges:
        if layer(source) in LOWER and layer(target) in UPPER and target not in ALLOWED_UP.get(layer(source), set()):
            wrong.append(f"{source} -> {target}")
    assert wrong == []


def test_core_imports_only_core(graph):
    wrong = [f"{s} -> {t}" for s, t in graph.edges if layer(s) == "core" and layer(t) != "core" and t != PACKAGE]
    assert wrong == []


def test_nothing_below_cli_imports_cli(graph):
    entry_points = {"cli", "__main__"}  # `python -m avhighlights` starts the CLI
    wrong = [f"{s} -> {t}" for s, t in graph.edges if layer(t) == "cli" and layer(s) not in entry_points]
    assert wrong == []
