"""The top-level folders install as one ``hubbub`` package, editable and as a wheel."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT, build_wheel

MAPPED = {"cluster": "cluster", "broker": "broker", "client": "client", "emitter": "emitter", "testing": "testing"}


def _modules(folder: Path, prefix: str) -> set[str]:
    found = set()
    for path in folder.rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        rel = path.relative_to(folder).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        found.add(".".join([prefix, *parts]))
    return found


def _expected_modules() -> set[str]:
    expected = _modules(ROOT / "core", "hubbub")
    for folder, name in MAPPED.items():
        expected |= _modules(ROOT / folder, f"hubbub.{name}")
    return expected


def test_dev_shim_mirrors_core_and_folders() -> None:
    shim = ROOT / ".dev" / "hubbub"
    entries = {p.name for p in shim.iterdir()}
    wanted = {p.name for p in (ROOT / "core").iterdir() if p.name != "__pycache__"} | set(MAPPED)
    assert entries == wanted
    for entry in shim.iterdir():
        assert entry.is_symlink() and entry.exists(), entry


def test_every_module_imports_from_outside_the_repo(tmp_path: Path) -> None:
    names = sorted(n for n in _expected_modules() if not n.endswith(".__main__"))
    code = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, *names], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_wheel_contains_every_module(tmp_path: Path) -> None:
    wheel = build_wheel(ROOT, tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in _expected_modules():
        path = module.replace(".", "/")
        assert f"{path}.py" in names or f"{path}/__init__.py" in names, module
    for marker in (
        "hubbub/py.typed",
        "hubbub/cluster/py.typed",
        "hubbub/client/py.typed",
        "hubbub/emitter/py.typed",
        "hubbub/testing/py.typed",
    ):
        assert marker in names
    (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
    requires = [
        line.split(":", 1)[1].strip()
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert any(re.match(r"redis\b", requirement) for requirement in requires), requires  # hubbub.emitter's


def test_editable_install_sees_a_new_module(tmp_path: Path) -> None:
    probe = ROOT / "cluster" / f"_probe_{uuid.uuid4().hex[:8]}.py"
    probe.write_text("VALUE = 42\n")
    try:
        code = f"import hubbub.cluster.{probe.stem} as m; print(m.VALUE)"
        env = {**os.environ, "PYTHONSAFEPATH": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env
        )
    finally:
        probe.unlink()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"
