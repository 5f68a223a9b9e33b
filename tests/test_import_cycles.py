"""No import cycles among hubbub's modules, counting imports made only for type checking.

Imports are read from the source (``ast``), wherever they are: at the top, in functions, under
``TYPE_CHECKING``. To check another package, add it to ``CHECKED``.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

CHECKED = ("hubbub.protocol", "hubbub.broker", "hubbub.client", "hubbub.cluster", "hubbub.emitter", "hubbub.testing")


def _modules() -> dict[str, Path]:
    """Every module of the checked packages (and hubbub's own top-level modules), by name."""
    found: dict[str, Path] = {}
    hubbub = importlib.import_module("hubbub")
    for info in pkgutil.iter_modules(hubbub.__path__, "hubbub."):
        if not info.ispkg:
            found[info.name] = Path(hubbub.__path__[0]) / f"{info.name.rpartition('.')[2]}.py"
    for package in CHECKED:
        path = Path(importlib.import_module(package).__path__[0])
        found[package] = path / "__init__.py"
        for info in pkgutil.walk_packages([str(path)], package + "."):
            relative = Path(*info.name.split(".")[package.count(".") + 1 :])
            found[info.name] = path / relative / "__init__.py" if info.ispkg else path / f"{relative}.py"
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = node.module or ""
            base = (f"{base}.{module}" if module else base) if node.level else module
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {target for target in targets if target in known and target != name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
