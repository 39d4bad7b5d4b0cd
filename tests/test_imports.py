"""
The package's import graph has no cycle.

Each module's imports are read with ``ast`` (those inside functions and ``if TYPE_CHECKING:``
blocks too: a cycle deferred to call time is still two modules that each need the other) and
resolved to the package's modules; the graph's strongly connected components are its cycles.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from helpers import REPO

PACKAGE = "airflow_provider_predone"

#: Cycles tolerated for now, each by its modules: none (lineage <-> operators.predone, the one
#: this test found, is gone). Should one have to be listed while code moves, the test still fails
#: on any other cycle, and on a listed one that is gone, so the list only shrinks.
KNOWN_CYCLES: set[frozenset[str]] = set()


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, from ``__init__.py``)."""
    found = {}
    for path in sorted((REPO / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The package's modules that module ``name`` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, one level up per extra dot
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            # `from package import module` needs the module (its package is its parent, loaded first
            # anyway); `from module import name` needs the module
            submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in known]
            names_only_modules = len(submodules) == len(node.names)
            targets = submodules if names_only_modules else [source, *submodules]
        else:
            continue
        yield from (target for target in targets if target in known and target != name)


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: set(imported(name, path, set(found))) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read_from_every_kind_of_import() -> None:
    edges = graph()
    # a module-level absolute import, a relative one, and imports inside functions
    assert f"{PACKAGE}.operators.base" in edges[f"{PACKAGE}.operators.predone"]
    assert f"{PACKAGE}.hooks.predone" in edges[f"{PACKAGE}.operators.predone"]  # inside `hook`
    assert f"{PACKAGE}.triggers.predone" in edges[f"{PACKAGE}.operators.predone"]  # inside execute
    # `from . import learning` needs the submodule, not its package (the parent is loaded first anyway)
    assert edges[f"{PACKAGE}.emulator.predone"] >= {f"{PACKAGE}.emulator.learning"}
    assert f"{PACKAGE}.emulator" not in edges[f"{PACKAGE}.emulator.predone"]
    assert f"{PACKAGE}.emulator.app" in edges[f"{PACKAGE}.emulator"]  # a package's __init__ is a module too
    assert len(edges) > 40


def test_cycles_are_found() -> None:
    made_up = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}}
    assert cycles(made_up) == {frozenset("abc"), frozenset("ef")}
    assert cycles({"a": {"b"}, "b": set()}) == set()


def test_the_package_has_no_import_cycle() -> None:
    found = cycles(graph())
    new = sorted(sorted(cycle) for cycle in found - KNOWN_CYCLES)
    assert new == [], f"import cycles: {new}"
    gone = sorted(sorted(cycle) for cycle in KNOWN_CYCLES - found)
    assert gone == [], f"these cycles are gone: take them out of KNOWN_CYCLES: {gone}"
