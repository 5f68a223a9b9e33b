"""Safe defaults, with real supervisor and worker processes.

* ``--workers N`` without ``--auth-key``: one key for every worker (one log line), so a token set
  by one worker is accepted by the others; with a Redis broker the cluster refuses to start.
* After a drain (close 4011) the Python client reconnects within ``drain_window``, not after the
  official client's 10-20 s.
* Startup warnings for client publishing without inbound middleware and for origins ``*:*``.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
import trio
import trio.lowlevel

from hubbub.client import AuthState, Connected, Disconnected, ReconnectOptions, connect
from hubbub.cluster.supervisor import NEEDS_AUTH_KEY

from ..conftest import start_process, stop_and_close
from .conftest import HERE, Cluster, client_on_worker

KEY_LINE = "no auth_key: one random key made for the 2 workers of this supervisor"


@pytest.fixture
def keyless_cluster() -> Iterator[Cluster]:
    command = [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0", "--workers", "2"]
    running = start_process([*command, "--app", "cluster_app:app", "--log-level", "INFO"], cwd=HERE)
    yield Cluster(running)
    stop_and_close([running])


@pytest.mark.trio
async def test_workers_without_a_key_share_one_and_say_so(keyless_cluster: Cluster) -> None:
    assert len(keyless_cluster.matches(KEY_LINE)) == 1, keyless_cluster.output()
    async with client_on_worker(keyless_cluster.url) as (first, first_pid):
        await first.invoke("login", "alice")
        token = first.auth_token
        assert token is not None
        async with client_on_worker(keyless_cluster.url, avoid={first_pid}, auth_token=token) as (second, _):
            # The other worker verified the token the first one signed (a bad signature unauthenticates).
            assert (await second.invoke("worker"))["pid"] != first_pid
            assert second.auth_state is AuthState.AUTHENTICATED
            assert second.auth_token == token


def test_redis_cluster_without_a_key_refuses_to_start() -> None:
    command = [sys.executable, "-m", "hubbub.cluster", "run", "--port", "0", "--workers", "2"]
    done = subprocess.run(
        [*command, "--broker", "redis://127.0.0.1:1/0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == NEEDS_AUTH_KEY
    assert "HUBBUB_AUTH_KEY" in NEEDS_AUTH_KEY and "--auth-key" in NEEDS_AUTH_KEY


def test_first_reconnect_after_a_drain_is_spread_over_the_window() -> None:
    options = ReconnectOptions()
    rng = random.Random(7)
    delays = [options.delay(0, 4011, rng) for _ in range(1000)]
    assert all(d is not None and 0 <= d <= options.drain_window for d in delays)
    assert max(d for d in delays if d is not None) > options.drain_window * 0.9  # spread, not bunched
    assert min(d for d in delays if d is not None) < options.drain_window * 0.1
    # Other codes keep the official client's backoff.
    assert options.delay(0, 1006, rng) is not None and options.delay(0, 1006, rng) >= 10  # type: ignore[operator]


@pytest.mark.trio
async def test_client_of_a_drained_worker_reconnects_within_the_window(keyless_cluster: Cluster) -> None:
    window = ReconnectOptions().drain_window
    # Default reconnect options: the official client's backoff, with hubbub's drain window.
    async with connect(keyless_cluster.url) as client, client.events() as events:
        pid = (await client.invoke("worker"))["pid"]
        os.kill(pid, signal.SIGTERM)  # that worker drains: its sockets get 4011
        async for event in events:
            if isinstance(event, Disconnected):
                assert event.code == 4011, event
                drained_at = trio.current_time()
                break
        with trio.fail_after(window + 3):  # the official client's first attempt: 10-20 s
            async for event in events:
                if isinstance(event, Connected):
                    break
        gap = trio.current_time() - drained_at
        assert gap <= window + 2
        assert (await client.invoke("worker"))["pid"] != pid


def test_open_defaults_are_warned_at_startup(hubbub_server) -> None:
    bare = hubbub_server("json", app=None)
    warned = "\n".join(bare.lines)
    assert "clients may publish to any channel: the app has no inbound middleware" in warned
    assert "WebSocket upgrades are accepted from any Origin (origins = *:*)" in warned
    guarded = hubbub_server("json", "--allow-client-publish", "false", "--origins", "example.com:*", app=None)
    assert not [line for line in guarded.lines if "WARNING" in line], guarded.lines


@pytest.mark.trio
async def test_rolling_restart_gap(keyless_cluster: Cluster) -> None:
    """Both workers restarted one after the other (SIGTERM, drain, the supervisor starts a new one):
    every client's gap from its 4011 to its next handshake. The figures are in docs/deployment.md
    (``pytest -s`` prints them)."""
    window = ReconnectOptions().drain_window
    gaps: list[float] = []
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(keyless_cluster.url)) for _ in range(20)]
        for _ in range(2):  # one restart per worker
            pids = {(await c.invoke("worker"))["pid"] for c in clients}
            victim = min(pids)
            watched = [c for c in clients if (await c.invoke("worker"))["pid"] == victim]
            since = len(keyless_cluster.lines)

            async def gap_of(
                client: Any, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
            ) -> None:
                async with client.events() as events:
                    task_status.started()
                    async for event in events:
                        if isinstance(event, Disconnected):
                            assert event.code == 4011, event
                            closed = trio.current_time()
                        elif isinstance(event, Connected):
                            gaps.append(trio.current_time() - closed)
                            return

            with trio.fail_after(window + 10):
                async with trio.open_nursery() as nursery:
                    for client in watched:
                        nursery.start_soon(gap_of, client)
                    await (
                        trio.lowlevel.checkpoint()
                    )  # the watchers subscribe to events before the drain starts
                    os.kill(victim, signal.SIGTERM)
                await keyless_cluster.wait_line(r"worker \d+ ready \(pid \d+\)", since=since)
    assert gaps and max(gaps) <= window + 2, gaps
    gaps.sort()
    print(
        f"\nrolling restart, {len(gaps)} reconnects: median {statistics.median(gaps):.2f} s, max {gaps[-1]:.2f} s"
    )
