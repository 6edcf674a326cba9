"""The modules of ``inl`` import each other without a cycle, lazy (function-level) imports included."""

import ast
from pathlib import Path

import networkx as nx

import inl

PACKAGE = Path(inl.__file__).resolve().parent


def _imported_modules(path: Path) -> set[str]:
    """The ``inl`` modules ``path`` imports anywhere in its code (``from inl import x`` via the exports)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "inl" if node.level else (node.module or "")
            if node.level and node.module:
                base = f"inl.{node.module}"
            if base == "inl":
                names = [f"inl.{inl._EXPORTS.get(a.name, a.name)}" for a in node.names]
            else:
                names = [base]
        else:
            continue
        found |= {n.split(".")[1] for n in names if n.startswith("inl.") and n.count(".") >= 1}
    return found


def test_inl_modules_import_without_cycles():
    graph = nx.DiGraph()
    for path in PACKAGE.glob("*.py"):
        if path.stem != "__init__":
            graph.add_node(path.stem)
            graph.add_edges_from((path.stem, target) for target in _imported_modules(path) if target != path.stem)
    assert graph.has_edge("cli", "distributed")  # the command line starts the distributed trainer ...
    assert not graph.has_edge("distributed", "cli")  # ... which needs nothing of it
    assert list(nx.simple_cycles(graph)) == []
