"""Broker test helpers. The Redis process fixtures (``redis_server``, ``own_redis_server``,
``redis_cluster``, ``prefix``) live in ``tests/conftest.py``, shared with the cluster tests; the
helpers are re-exported here for ``from .conftest import ...``.

``backend`` parametrizes a test over memory://, standalone Redis and Redis Cluster; ``open_worker``
opens one more broker ("worker") on that backend under the test's prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from hubbub.broker import ManagedBroker, open_broker

from ..conftest import REDIS_CLI, REDIS_SERVER, RedisCluster, RedisProcess, free_port, ping, wait_until

__all__ = [
    "REDIS_CLI",
    "REDIS_SERVER",
    "BrokerOpener",
    "Collector",
    "RedisCluster",
    "RedisProcess",
    "free_port",
    "ping",
    "wait_until",
]


class Collector:
    """A ``deliver`` function that records messages and lets a test wait for them (no sleeps)."""

    def __init__(self) -> None:
        import trio

        self._trio = trio
        self.messages: list[tuple[str, object]] = []
        self._changed = trio.Event()

    def __call__(self, channel: str, data: object) -> None:
        self.messages.append((channel, data))
        self._changed.set()
        self._changed = self._trio.Event()

    def on(self, channel: str) -> list[object]:
        return [data for ch, data in self.messages if ch == channel]

    async def wait_for(self, predicate: object, timeout: float = 10.0) -> None:
        assert callable(predicate)
        with self._trio.fail_after(timeout):
            while not predicate():
                await self._changed.wait()

    async def wait_count(self, channel: str, count: int, timeout: float = 10.0) -> list[object]:
        await self.wait_for(lambda: len(self.on(channel)) >= count, timeout)
        return self.on(channel)


@pytest.fixture
def make_collector() -> type[Collector]:
    return Collector


BrokerOpener = Callable[..., AbstractAsyncContextManager[ManagedBroker]]


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
        pytest.param("cluster", id="cluster", marks=pytest.mark.redis),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def broker_url(backend: str, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "redis":
        return str(request.getfixturevalue("redis_server").url)
    return str(request.getfixturevalue("redis_cluster").url)


@pytest.fixture
def open_worker(broker_url: str, prefix: str) -> BrokerOpener:
    """Opens a broker as one more "worker" on this test's prefix (keyword options go to it)."""
    counter = iter(range(1000))

    def opener(**options: Any) -> AbstractAsyncContextManager[ManagedBroker]:
        return open_broker(broker_url, prefix=prefix, worker_id=f"w{next(counter)}", **options)

    return opener
