"""The worker's shape: one job per module, said in its docstring, and no oversized class.

(Import cycles and the exported names are checked for every package by tests/test_import_cycles.py
and tests/test_public_api.py.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import hubbub.cluster

PACKAGE = Path(hubbub.cluster.__file__).resolve().parent
MAX_CLASS_LINES = 250


def modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(PACKAGE)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_every_module_says_its_job() -> None:
    missing = [name for name, tree in modules().items() if not ast.get_docstring(tree)]
    assert missing == []


def test_no_class_is_too_big() -> None:
    sizes = {
        f"{name}:{node.name}": (node.end_lineno or node.lineno) - node.lineno + 1
        for name, tree in modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    assert {name: size for name, size in sizes.items() if size > MAX_CLASS_LINES} == {}
