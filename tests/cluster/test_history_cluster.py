"""Channels with history across real workers and a real redis-server.

* Gap healing: Redis drops the workers' pub/sub connections (``CLIENT KILL TYPE pubsub``) again
  and again while another worker publishes 10,000 numbered messages; every subscriber still
  receives all of them, in order, once, because the worker fills each gap from the history.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from hubbub.client import RemoteError

from ..conftest import REDIS_CLI, RedisProcess
from .conftest import ClusterFactory, ahttp_get, client_on_worker

HISTORY_RULES = '[[channels]]\nmatch = "hist/*"\nhistory_size = 20000\nhistory_ttl = 300\n'


def history_config(tmp_path: Path) -> str:
    path = tmp_path / "hubbub.toml"
    path.write_text(HISTORY_RULES)
    return str(path)


def _kill_pubsub(redis: RedisProcess) -> int:
    out = subprocess.run(
        [REDIS_CLI, "-p", str(redis.port), "CLIENT", "KILL", "TYPE", "pubsub"],
        capture_output=True, text=True, timeout=5, check=True,
    )  # fmt: skip
    return int(out.stdout.strip() or 0)


def _metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.trio
@pytest.mark.timeout(180)
async def test_gaps_from_killed_pubsub_connections_are_healed(
    hubbub_cluster: ClusterFactory, own_redis_server: RedisProcess, prefix: str, tmp_path: Path
) -> None:
    total = 10_000
    redis = own_redis_server
    cluster = hubbub_cluster(
        "--broker", redis.url, "--broker-prefix", prefix, "--config", history_config(tmp_path),
        "--metrics-port", "0",
    )  # fmt: skip
    channel = f"hist/{uuid.uuid4().hex[:8]}"
    async with (
        client_on_worker(cluster.url) as (first, worker_a),
        client_on_worker(cluster.url, avoid={worker_a}) as (publisher, _worker_b),
        client_on_worker(cluster.url, avoid={_worker_b}) as (second, _),
        first.subscribe(channel, max_size=total * 2) as one,
        second.subscribe(channel, max_size=total * 2) as two,
    ):
        await one.wait_subscribed(5)
        await two.wait_subscribed(5)
        received: list[list[Any]] = [[], []]
        kills = 0
        published = trio.Event()

        async def publish_all() -> None:
            for number in range(total):
                while True:
                    try:
                        await publisher.publish(channel, number)
                        break
                    except RemoteError as error:  # the broker session was lost: publish again
                        if error.name != "BrokerError":
                            raise
            published.set()

        async def kill_pubsub_again_and_again() -> None:
            nonlocal kills
            while not published.is_set():
                kills += await trio.to_thread.run_sync(_kill_pubsub, redis)
                with trio.move_on_after(0.2):
                    await published.wait()

        async def collect(channel_handle: Any, into: list[Any]) -> None:
            while True:
                into.append(await channel_handle.receive())
                if into[-1] == total - 1:
                    return

        with trio.fail_after(150):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(publish_all)
                nursery.start_soon(kill_pubsub_again_and_again)
                nursery.start_soon(collect, one, received[0])
                nursery.start_soon(collect, two, received[1])
        assert kills >= 5, f"only {kills} pub/sub connections were killed"
        for got in received:
            # A publish retried after a lost answer may have been stored twice: then its number
            # follows itself. Anything else out of order, missing or repeated is a delivery fault.
            deduplicated = [n for i, n in enumerate(got) if i == 0 or got[i - 1] != n]
            assert deduplicated == list(range(total))
    healed = 0.0
    for status in cluster.status.values():
        _, body = await ahttp_get(status + "/metrics")
        healed += _metric(body, "hubbub_history_healed_total")
    print(f"\n{kills} pub/sub connections killed; {healed:.0f} publications healed from the history")
    assert healed > 0
