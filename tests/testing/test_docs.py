"""docs/testing.md's files run as written against the README's chat app, in a pytest of their own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _files(markdown: Path) -> dict[str, str]:
    """The Python blocks whose first line is ``# NAME.py``, by name."""
    blocks = re.findall(r"```python\n(.*?)```", markdown.read_text(), re.S)
    return {block.split("\n", 1)[0][2:].strip(): block for block in blocks if re.match(r"# \w+\.py\n", block)}


def test_the_testing_guide_runs_on_trio_and_asyncio(tmp_path: Path) -> None:
    files = _files(ROOT / "docs" / "testing.md")
    assert set(files) == {"conftest.py", "test_chat.py"}
    files["chat.py"] = _files(ROOT / "README.md")["chat.py"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^9 passed", done.stdout, re.M), done.stdout
