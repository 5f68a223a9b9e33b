"""Fixtures for the cluster tests: ``hubbub run --workers N`` as a real process, HTTP probes, and
Python clients placed on a chosen worker.

Nothing sleeps to synchronise: waits poll a condition (a log line, an HTTP status) against a
deadline, or wait for an event.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
import trio

from hubbub.client import Client, ReconnectOptions, connect

from ..conftest import RunningProcess, http_get, start_process

HERE = Path(__file__).resolve().parent
METRICS_LINE = re.compile(r"hubbub (?:worker (\d+) )?metrics on (http://\S+)/metrics")
#: Reconnect quickly after a worker goes away (the official defaults wait 10-20 s).
FAST_RECONNECT = ReconnectOptions(initial_delay=0.05, randomness=0.1, multiplier=1.5, max_delay=0.5)


async def ahttp_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    return await trio.to_thread.run_sync(http_get, url, timeout)


async def poll(predicate: Callable[[], Any], what: str, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Await until ``predicate()`` (sync or async) returns a truthy value; return it."""
    with trio.move_on_after(timeout):
        while True:
            result = predicate()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return result
            await trio.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s")


@dataclass
class Cluster:
    """A running ``hubbub run`` (supervisor and workers) and where to reach it."""

    running: RunningProcess
    status: dict[int, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def http(self) -> str:
        return "http://" + urlsplit(self.url).netloc

    @property
    def proc(self) -> Any:
        return self.running.proc

    @property
    def lines(self) -> list[str]:
        return self.running.lines

    def matches(self, pattern: str, since: int = 0) -> list[re.Match[str]]:
        regex = re.compile(pattern)
        return [m for line in list(self.lines[since:]) if (m := regex.search(line))]

    async def wait_line(self, pattern: str, timeout: float = 15.0, since: int = 0) -> re.Match[str]:
        found: list[re.Match[str]] = await poll(
            lambda: self.matches(pattern, since), f"a line matching {pattern!r}", timeout
        )
        return found[0]

    def output(self) -> str:
        return "\n".join(self.lines[-60:])


ClusterFactory = Callable[..., Cluster]


@pytest.fixture
def hubbub_cluster() -> Iterator[ClusterFactory]:
    """Factory: ``hubbub_cluster(*cli_args, workers=2)`` runs ``hubbub run`` with tests/cluster/cluster_app.py."""
    started: list[Cluster] = []

    def start(*args: str, workers: int = 2, app: str = "cluster_app:app") -> Cluster:
        cmd = [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0", "--workers", str(workers)]
        cmd += ["--app", app, *args]
        if "--auth-key" not in args:  # a cluster on a Redis broker refuses to start without one
            cmd += ["--auth-key", "cluster-test-key"]
        cluster = Cluster(start_process(cmd, cwd=HERE))
        for line in cluster.lines:
            match = METRICS_LINE.search(line)
            if match:
                cluster.status[int(match.group(1) or 0)] = match.group(2)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        if cluster.proc.poll() is None:
            cluster.proc.send_signal(signal.SIGTERM)
            try:
                cluster.proc.wait(20)
            except Exception:
                cluster.proc.kill()
                cluster.proc.wait(5)


@asynccontextmanager
async def client_on_worker(
    url: str,
    *,
    codec: str = "json",
    avoid: set[int] | None = None,
    attempts: int = 100,
    within: float = 20.0,
    **options: Any,
) -> AsyncIterator[tuple[Client, int]]:
    """A connected Python client whose worker pid is not in ``avoid``: (client, worker pid).

    Tries at least ``attempts`` connections and for at least ``within`` seconds: a worker that has
    reported ready may reach its accept loop late on a loaded machine, and until it does the
    other worker takes every connection.
    """
    options.setdefault("reconnect", FAST_RECONNECT)
    deadline = anyio.current_time() + within
    tried = 0
    while tried < attempts or anyio.current_time() < deadline:
        tried += 1
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(connect(url, codec=codec, **options))
            pid = (await client.invoke("worker"))["pid"]
            if not avoid or pid not in avoid:
                yield client, pid
                return
    raise AssertionError(f"no connection landed on a worker other than {avoid} in {tried} attempts")


def wait_exit(proc: Any, timeout: float) -> float:
    """Wait for ``proc`` to exit; the seconds it took."""
    started = time.monotonic()
    proc.wait(timeout)
    return time.monotonic() - started
