"""Broker test helpers. The Redis process fixtures (``redis_server``, ``own_redis_server``,
``redis_cluster``, ``prefix``) live in ``tests/conftest.py``, shared with the cluster tests; the
helpers are re-exported here for ``from .conftest import ...``.
"""

from __future__ import annotations

import pytest

from ..conftest import REDIS_CLI, REDIS_SERVER, RedisCluster, RedisProcess, free_port, ping, wait_until

__all__ = [
    "REDIS_CLI",
    "REDIS_SERVER",
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
