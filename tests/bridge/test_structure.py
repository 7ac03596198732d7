"""The bridge's shape: no import circle between its modules, none too large to read at once."""

from __future__ import annotations

import ast
from pathlib import Path

BRIDGE = Path(__file__).resolve().parents[2] / "bridge"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(BRIDGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every bridge module ``path`` imports, wherever the import stands (TYPE_CHECKING and functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "bridge"}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in BRIDGE.rglob("*.py")}
    edges = {name: imports_of(path) & modules.keys() for name, path in modules.items()}
    # A package's __init__ re-exports its modules; importing a module imports its package
    # first, so an edge into an enclosing package is not a dependency on what it re-exports.
    return {name: {t for t in targets if t != name and not name.startswith(t + ".")} for name, targets in edges.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_bridge_modules_import_each_other_without_a_circle() -> None:
    edges = {name: targets for name, targets in graph().items() if name != "bridge"}
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges) or [])


def test_the_cycle_finder_finds_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_bridge_module_is_over_400_lines() -> None:
    sizes = {str(p.relative_to(BRIDGE)): len(p.read_text().splitlines()) for p in BRIDGE.rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_the_bridge_knows_nothing_of_the_app() -> None:
    for path in BRIDGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] == "app"], path
