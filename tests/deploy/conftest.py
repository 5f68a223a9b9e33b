"""Helpers of the deployment tests: child processes that talk JSON lines.

An official-client subscriber (``tests/interop/cross_worker.js``) and a Python publisher
(``publish.py`` here) run as child processes, optionally behind a command prefix such as
``ip netns exec NS``. Their stdout is read in a thread; every wait is bounded by a deadline and
wakes on the process's own output, never on a sleep. Children are stopped by PID when the test ends.
"""

from __future__ import annotations

import json
import queue
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ..conftest import INTEROP, ROOT

DEPLOY = Path(__file__).resolve().parent
PUBLISH = DEPLOY / "publish.py"
#: Where ``cluster_app:app`` lives: its ``worker`` procedure tells a client which process it reached.
CLUSTER_APP_DIR = ROOT / "tests" / "cluster"


def require_node() -> None:
    if shutil.which("node") is None or not (INTEROP / "node_modules").is_dir():
        pytest.fail("node and tests/interop/node_modules are required (run `make install`)")


class JsonLines:
    """A child process whose stdout carries JSON lines (other lines are kept for diagnostics)."""

    def __init__(self, cmd: Sequence[str], *, cwd: Path) -> None:
        self.cmd = list(cmd)
        self.proc = subprocess.Popen(
            self.cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.output: list[str] = []
        self._changed = threading.Condition()
        self.closed = False
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                with self._changed:
                    self.output.append(line.rstrip("\n"))
                    self._changed.notify_all()
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self._events.put(event)
        self._events.put(None)
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for_line(self, text: str, timeout: float) -> str:
        """The first output line containing ``text``, waiting for it (bounded); fails the test
        if the process ends first."""

        def found() -> str | None:
            return next((line for line in self.output if text in line), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None or self.closed, timeout)
            line = found()
        if line is None:
            raise AssertionError(f"{self.cmd}: no line with {text!r} within {timeout}s:\n{self.tail()}")
        return line

    def next_event(self, timeout: float) -> dict[str, Any]:
        """The next JSON object printed; fails the test on exit or timeout."""
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.cmd}: no output within {timeout}s:\n{self.tail()}") from None
        if event is None:
            self.proc.wait(5)
            raise AssertionError(f"{self.cmd} exited with {self.proc.returncode}:\n{self.tail()}")
        return event

    def tail(self) -> str:
        return "\n".join(self.output[-40:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def subscriber_cmd(url: str, channel: str, count: int, codec: str = "json") -> list[str]:
    """The official socketcluster-client subscriber: prints ``ready``, then ``done`` with the order."""
    return [
        *("node", str(INTEROP / "cross_worker.js"), "--url", url, "--codec", codec),
        *("--channel", channel, "--count", str(count), "--timeout", "40000"),
    ]


def publisher_cmd(urls: Sequence[str], channel: str, count: int, codec: str = "json") -> list[str]:
    """hubbub's Python client publishing ``{i, t}`` for i < count, round-robin over ``urls``."""
    cmd = [sys.executable, str(PUBLISH), "--channel", channel, "--count", str(count), "--codec", codec]
    for url in urls:
        cmd += ["--url", url]
    return cmd


class Children:
    """Starts :class:`JsonLines` children and stops them all (by PID) at teardown."""

    def __init__(self) -> None:
        self.started: list[JsonLines] = []

    def start(self, cmd: Sequence[str], *, cwd: Path = DEPLOY) -> JsonLines:
        child = JsonLines(cmd, cwd=cwd)
        self.started.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self.started):
            child.stop()


@pytest.fixture
def children() -> Iterator[Children]:
    kids = Children()
    yield kids
    kids.stop_all()


def deliver_in_order(
    children: Children,
    *,
    subscribe_url: str,
    publish_urls: Sequence[str],
    count: int,
    subscriber_prefix: Sequence[str] = (),
    publisher_prefix: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The official client subscribes at ``subscribe_url``; once its subscription is acknowledged,
    the Python client publishes ``count`` messages through ``publish_urls``; assert every message
    arrived, in order. The prefixes (``ip netns exec NS``) say where each client runs.

    Returns the subscriber's ``done`` event (plus ``ready_pid``) and the publisher's ``done`` event."""
    channel = f"deploy-{uuid.uuid4().hex[:8]}"
    subscriber = children.start(
        [*subscriber_prefix, *subscriber_cmd(subscribe_url, channel, count)], cwd=INTEROP
    )
    ready = subscriber.next_event(timeout=20)
    assert ready["event"] == "ready", (ready, subscriber.tail())
    publisher = children.start([*publisher_prefix, *publisher_cmd(publish_urls, channel, count)])
    published = publisher.next_event(timeout=40)
    assert published["event"] == "done", (published, publisher.tail())
    done = subscriber.next_event(timeout=20)
    assert done["event"] == "done", (done, subscriber.tail())
    assert done["order"] == list(range(count))
    return {**done, "ready_pid": ready["pid"]}, published
