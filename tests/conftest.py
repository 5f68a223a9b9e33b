"""Shared fixtures: real server processes on free ports.

``hubbub_server(codec=..., *args)`` starts ``python -m hubbub.cluster run --port 0`` with the interop
test app and returns its ``ws://`` URL once it prints its listening line; ``official_server(...)``
does the same for ``node tests/interop/sc_server.js`` (socketcluster-server@20 from npm). Every
process is stopped (SIGTERM, then SIGKILL) when the test ends.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "tests" / "interop"
LISTENING = re.compile(r"listening on (ws://\S+)")


@dataclass
class RunningProcess:
    """A started process with its output lines collected in the background."""

    proc: subprocess.Popen[str]
    url: str
    lines: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def start_process(cmd: list[str], *, cwd: Path, timeout: float = 30) -> RunningProcess:
    """Start ``cmd`` and wait until it prints ``listening on ws://...``; raise if it exits first."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: list[str] = []
    found: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        with proc.stdout:
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                match = LISTENING.search(line)
                if match:
                    found.put(match.group(1))
        found.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        url = found.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        raise RuntimeError(f"{cmd} did not start within {timeout}s:\n" + "\n".join(lines)) from None
    if url is None:
        proc.wait(5)
        raise RuntimeError(f"{cmd} exited with {proc.returncode}:\n" + "\n".join(lines))
    return RunningProcess(proc, url, lines)


ServerFactory = Callable[..., RunningProcess]


@pytest.fixture
def hubbub_server() -> Iterator[ServerFactory]:
    """Factory: ``hubbub_server(codec="json", *extra_cli_args, app="hubbub_test_app:app")``."""
    started: list[RunningProcess] = []

    def start(codec: str = "json", *args: str, app: str | None = "hubbub_test_app:app") -> RunningProcess:
        cmd = [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0", "--codec", codec]
        if app:
            cmd += ["--app", app]
        running = start_process([*cmd, *args], cwd=INTEROP)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def official_server() -> Iterator[ServerFactory]:
    """Factory: ``official_server(codec="json", *extra_args)`` runs socketcluster-server@20."""
    if shutil.which("node") is None or not (INTEROP / "node_modules").is_dir():
        pytest.fail("node and tests/interop/node_modules are required (run `make install`)")
    started: list[RunningProcess] = []

    def start(codec: str = "json", *args: str) -> RunningProcess:
        running = start_process(["node", "sc_server.js", "--port", "0", "--codec", codec, *args], cwd=INTEROP)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
