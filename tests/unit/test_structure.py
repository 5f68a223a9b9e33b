"""The worker's shape: its public names, no import cycles, no oversized classes."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest

import hubbub.cluster

ROOT = Path(__file__).resolve().parent.parent.parent
#: Source folder -> the package it becomes (pyproject.toml's wheel sources).
PACKAGES = {"cluster": "hubbub.cluster", "broker": "hubbub.broker", "core/protocol": "hubbub.protocol"}

CLUSTER_NAMES = {
    "Action",
    "ActionType",
    "App",
    "HttpRequest",
    "MiddlewareLine",
    "Request",
    "SCError",
    "Server",
    "ServerConfig",
    "ServerSocket",
    "SocketState",
    "bind_listener",
}


def test_cluster_exports_exactly_the_chosen_names() -> None:
    exported = {
        name
        for name, value in vars(hubbub.cluster).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert exported == CLUSTER_NAMES
    assert set(hubbub.cluster.__all__) == CLUSTER_NAMES


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts))
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every module ``name`` imports anywhere in its file: top level, ``TYPE_CHECKING`` blocks, functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from pkg import mod`` imports the submodule; ``from mod import Name`` the module.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        found.update(target for target in targets if target in known)
    found.discard(name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_no_import_cycle_among_the_worker_modules() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "hubbub.cluster._session.session" in graph["hubbub.cluster._session.events"]  # the parse works
    assert _cycles(graph) == []


def test_the_cycle_finder_sees_type_checking_imports(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n"
    )
    (tmp_path / "b.py").write_text("from .a import A\n")
    known = {"p.a": tmp_path / "a.py", "p.b": tmp_path / "b.py"}
    graph = {name: _imports(name, path, known) for name, path in known.items()}
    assert _cycles(graph) == [["p.a", "p.b"]]


@pytest.mark.parametrize("path", sorted((ROOT / "cluster").rglob("*.py")), ids=lambda p: p.name)
def test_no_class_in_the_worker_is_over_250_lines(path: Path) -> None:
    sizes = {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None
    }
    assert {name: size for name, size in sizes.items() if size > 250} == {}
