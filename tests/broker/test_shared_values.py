"""SharedValues on every broker: memory://, standalone Redis and Redis Cluster.

Two brokers opened on one prefix stand for two workers: what one stores the other reads (the
memory broker shares within itself only, so it is checked with one broker).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack

import pytest
import trio

from hubbub.broker import ManagedBroker, MemoryBroker, SharedValues, open_broker

pytestmark = pytest.mark.trio

Opener = Callable[[], AbstractAsyncContextManager[ManagedBroker]]


async def _pair(stack: AsyncExitStack, open_worker: Opener, kind: str) -> tuple[SharedValues, SharedValues]:
    first = await stack.enter_async_context(open_worker())
    second = first if kind == "memory" else await stack.enter_async_context(open_worker())
    for broker in (first, second):
        with trio.fail_after(10):
            await broker.wait_ready()
        assert isinstance(broker, SharedValues)
    assert isinstance(first, SharedValues) and isinstance(second, SharedValues)
    return first, second


async def _until(predicate: Callable[[], object], what: str, timeout: float = 5.0) -> None:
    """Poll an async predicate (expiry needs time to pass) against a deadline."""
    with trio.fail_after(timeout):
        while not await predicate():  # type: ignore[misc]  # noqa: ASYNC110 -- expiry has no event
            await trio.sleep(0.02)


async def test_values(open_worker: Opener, backend: str) -> None:
    async with AsyncExitStack() as stack:
        one, two = await _pair(stack, open_worker, backend)
        assert await two.get_value("k") is None
        assert await one.set_value("k", b"v1", 30, only_new=True)
        assert not await two.set_value("k", b"v2", 30, only_new=True)  # taken
        assert await two.get_value("k") == b"v1"
        assert await two.set_value("k", b"\x00\xffbinary", 30)  # replaced
        assert await one.get_value("k") == b"\x00\xffbinary"
        await two.delete_value("k")
        assert await one.get_value("k") is None
        assert await one.set_value("k", b"again", 30, only_new=True)

        assert await one.set_value("short", b"x", 0.2)
        assert await two.get_value("short") == b"x"

        async def short_gone() -> bool:
            return await two.get_value("short") is None

        await _until(short_gone, "the short value expired")
        assert await two.set_value("short", b"y", 30, only_new=True)  # free again after expiry


async def test_tables(open_worker: Opener, backend: str) -> None:
    async with AsyncExitStack() as stack:
        one, two = await _pair(stack, open_worker, backend)
        assert await one.entries("nodes") == {}
        await one.put_entry("nodes", "a", b'{"n": 1}', 30)
        await two.put_entry("nodes", "b", b"b:with:colons\n", 0.3)
        assert await one.entries("nodes") == {"a": b'{"n": 1}', "b": b"b:with:colons\n"}
        await one.put_entry("nodes", "a", b"new", 30)  # replaced
        assert (await two.entries("nodes"))["a"] == b"new"
        assert await one.entries("other") == {}

        async def b_gone() -> bool:
            return "b" not in await one.entries("nodes")

        await _until(b_gone, "entry b expired")
        assert await two.entries("nodes") == {"a": b"new"}
        await two.delete_entry("nodes", "a")
        assert await one.entries("nodes") == {}


@pytest.mark.redis
async def test_a_redis_table_is_one_hash_pruned_by_writers_and_expiring_with_its_last_entry(
    redis_server: object, prefix: str
) -> None:
    from coredis import Redis

    url = redis_server.url  # type: ignore[attr-defined]
    async with open_broker(url, prefix=prefix) as broker:
        with trio.fail_after(10):
            await broker.wait_ready()
        assert isinstance(broker, SharedValues)
        await broker.put_entry("nodes", "stale", b"x", 0.1)
        await broker.put_entry("nodes", "kept", b"y", 0.5)
        client = Redis.from_url(url)
        async with client:
            key = f"{prefix}{{nodes}}".encode()
            assert await client.hlen(key) == 2
            assert 0 < await client.pttl(key) <= 500

            async def stale_expired() -> bool:
                return await broker.entries("nodes") == {"kept": b"y"}

            await _until(stale_expired, "the stale entry expired")
            await broker.put_entry("nodes", "fresh", b"z", 30)  # a write prunes what expired
            assert set(await client.hkeys(key)) == {b"kept", b"fresh"}
            assert 29_000 < await client.pttl(key) <= 30_000


async def test_memory_broker_values_are_its_own() -> None:
    first, second = MemoryBroker(), MemoryBroker()
    await first.set_value("k", b"1", 30)
    await first.put_entry("t", "n", b"1", 30)
    assert await second.get_value("k") is None
    assert await second.entries("t") == {}
