"""The house: no import cycle anywhere, and each layer imports only the layers below it.

Imports are read from the source with ``ast`` (inside functions and ``TYPE_CHECKING``
blocks too: an import there is still a dependency a reader has to follow).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "agents", "tables", "bench")

Graph = dict[str, set[str]]


def module_name(path: Path, root: Path) -> str:
    """``app/web/views.py`` -> ``app.web.views``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, name: str, known: set[str]) -> set[str]:
    """The first-party modules one file imports (``from pkg import mod`` names ``pkg.mod``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # "import app.web.views" depends on app.web.views; a name inside a module
            # depends on that module.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` under ``packages``."""
    return {module_name(path, root): path
            for package in packages for path in sorted((root / package).rglob("*.py"))}


def import_graph(root: Path, packages: Iterable[str]) -> Graph:
    """Module -> the first-party modules it imports, for every ``.py`` under ``packages``."""
    files = module_files(root, packages)
    known = set(files)
    return {name: imported_modules(path, name, known) for name, path in files.items()}


def absolute_imports(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file (``faust`` of ``faust.types``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = {alias.name.split(".")[0] for node in ast.walk(tree)
             if isinstance(node, ast.Import) for alias in node.names}
    names |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and not node.level}
    return names


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def room(module: str) -> str:
    """The room of a module: ``app.web.views`` -> ``app.web``, ``agents.x`` -> ``agents``."""
    parts = module.split(".")
    if parts[0] == "app" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def rooms_graph(graph: Mapping[str, set[str]]) -> Graph:
    """The module graph folded into rooms (app's subpackages and top-level modules apart)."""
    folded: Graph = {}
    for module, targets in graph.items():
        source = room(module)
        folded.setdefault(source, set()).update(
            room(target) for target in targets if room(target) != source)
    return folded


def violations(graph: Mapping[str, set[str]], importer: str,
               forbidden: Iterable[str]) -> list[str]:
    """``a -> b`` for every module under ``importer`` that imports a module under ``forbidden``."""
    bad = tuple(forbidden)
    return sorted(f"{module} -> {target}" for module, targets in graph.items()
                  if module == importer or module.startswith(importer + ".")
                  for target in targets
                  if any(target == f or target.startswith(f + ".") for f in bad))


FILES = module_files(ROOT, PACKAGES)
GRAPH = import_graph(ROOT, PACKAGES)


def test_the_checker_finds_a_circle(tmp_path: Path) -> None:
    # Without this, a checker that never finds anything would pass every test below.
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..c import x\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\n"
                                  "if TYPE_CHECKING:\n    from . import a\n")
    graph = import_graph(tmp_path, ["pkg"])
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert graph["pkg.c"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_no_module_imports_itself_back_through_others() -> None:
    assert cycles(GRAPH) == []


def test_no_room_imports_itself_back_through_others() -> None:
    # Folded into rooms (app.web, app.kafka, app.records, app.txapp, agents, tables, ...),
    # the picture is a ladder too: a room never depends on a room that depends on it.
    assert cycles(rooms_graph(GRAPH)) == []


def test_the_windowing_core_imports_nothing_above_it_and_no_faust() -> None:
    core = {module: targets for module, targets in GRAPH.items()
            if module.startswith("tables")}
    assert core, "no tables/ modules found"
    assert violations(core, "tables", ["app", "agents", "bench"]) == []
    for module in core:
        if module == "tables.faust_tables":  # the one module that touches the stores
            continue
        assert not absolute_imports(FILES[module]) & {"faust", "aiokafka", "rocksdict",
                                                      "mode"}, module


def test_nothing_imports_the_composition_root_but_the_command_line() -> None:
    importers = sorted(module for module, targets in GRAPH.items() if "app.compose" in targets)
    assert importers == ["app.commands.cli"]


@pytest.mark.parametrize(("importer", "forbidden"), [
    # The ground floor: records, settings, errors and interfaces every room may use.
    ("app.records", ["agents", "app.kafka", "app.web", "app.commands", "app.kappa",
                     "app.txapp", "app.compose"]),
    ("app.settings", ["agents", "app.kafka", "app.web", "app.commands", "app.kappa",
                      "app.txapp", "app.records"]),
    ("app.exceptions", ["app", "agents", "tables"]),
    ("app.types", ["agents", "app.kafka", "app.web", "app.commands", "app.kappa",
                   "app.txapp", "app.compose"]),
    # Kafka plumbing knows no pipeline, view or command.
    ("app.kafka", ["agents", "app.web", "app.commands", "app.kappa", "app.txapp",
                   "app.compose"]),
    ("app.txapp", ["agents", "app.web", "app.commands", "app.kappa", "app.compose"]),
    # The pipeline and the views know the App and its interfaces, not each other.
    ("agents", ["app.web", "app.commands", "app.kappa", "app.compose", "bench"]),
    ("app.web", ["agents", "app.commands", "app.kappa", "app.compose"]),
    ("app.kappa", ["agents", "app.web", "app.commands", "app.compose"]),
])
def test_each_room_imports_only_what_lies_below_it(importer: str, forbidden: list[str]) -> None:
    assert any(module == importer or module.startswith(importer + ".") for module in GRAPH)
    assert violations(GRAPH, importer, forbidden) == []
