"""The examples in docs/client.md run as written (against the official server, URL substituted)."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hubbub.client import connect_blocking

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"
DOC_URL = "ws://localhost:8000/socketcluster/"


def examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def run_example(code: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code.replace(DOC_URL, url)], capture_output=True, text=True, timeout=30
    )


@pytest.fixture
def url(official_server: Any) -> str:
    running = official_server("json")
    return str(running.url)


def test_examples_use_the_documented_url() -> None:
    assert all(DOC_URL in code for code in examples()[:3])


@pytest.mark.interop
def test_publisher_example(url: str) -> None:
    result = run_example(examples()[1], url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'a': 1}"


@pytest.mark.interop
def test_blocking_example(url: str) -> None:
    result = run_example(examples()[2], url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello again"


@pytest.mark.interop
def test_subscriber_example(url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", examples()[0].replace(DOC_URL, url)], stdout=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()
    try:
        with connect_blocking(url) as client:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # the subscriber's readiness is not observable: retry
                client.publish("room", "to the example")
                try:
                    assert lines.get(timeout=0.2).strip() == "to the example"
                    break
                except queue.Empty:
                    continue
            else:
                pytest.fail("the subscriber example printed nothing")
    finally:
        proc.kill()
        proc.wait()
