"""Redis-only behaviour: faults (kill/restart), pipelining, bad envelopes, prefixes, Sentinel."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from hubbub.broker import BrokerUnavailable, RedisBroker, open_broker

from .conftest import REDIS_SERVER, RedisProcess, free_port, ping, wait_until

pytestmark = [pytest.mark.redis, pytest.mark.trio]

FAST = {"backoff_initial": 0.02, "backoff_max": 0.3, "connect_timeout": 2.0, "publish_timeout": 3.0}


async def _raw_publish(port: int, channel: bytes, data: bytes) -> None:
    import coredis

    async with coredis.Redis("127.0.0.1", port) as client:
        await client.publish(channel, data)


async def test_redis_killed_and_restarted_mid_stream(
    own_redis_server: Any, prefix: str, make_collector: Any
) -> None:
    server = own_redis_server
    got1, got2 = make_collector(), make_collector()
    async with (
        open_broker(server.url, prefix=prefix, **FAST) as w1,
        open_broker(server.url, prefix=prefix, **FAST) as w2,
    ):
        w1.attach(got1)
        w2.attach(got2)
        await w1.subscribe("stream")
        await w2.subscribe("stream")
        for i in range(20):
            await w1.publish("stream", i)
        assert await got2.wait_count("stream", 20) == list(range(20))

        server.kill()  # SIGKILL, by PID, the process this test started
        killed = time.monotonic()
        with trio.fail_after(5):
            while True:
                try:
                    await w1.publish("stream", "during-outage")
                except BrokerUnavailable:
                    break
        assert time.monotonic() - killed < 5
        with trio.fail_after(5):
            while w1.ready or w2.ready:  # noqa: ASYNC110 -- polling a flag against a deadline
                await trio.sleep(0.01)
        # every publish during the outage fails fast and clearly
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(BrokerUnavailable):
                await w2.publish("stream", "during-outage")
            assert time.monotonic() - started < 1
        with pytest.raises(BrokerUnavailable):
            await w1.subscribe("new-during-outage")
        assert w1.subscriptions() == frozenset({"stream"})

        server.start()  # same port
        with trio.fail_after(15):
            await w1.wait_ready()
            await w2.wait_ready()
        assert isinstance(w1, RedisBroker)
        assert w1.stats.session_failures >= 1
        await w1.publish("stream", "after")
        assert (await got2.wait_count("stream", 21))[-1] == "after"
        assert (await got1.wait_count("stream", 21))[-1] == "after"
        assert "during-outage" not in got1.on("stream") + got2.on("stream")


async def test_broker_started_before_redis_connects_later(
    tmp_path: Path, prefix: str, make_collector: Any
) -> None:
    server = RedisProcess(free_port(), tmp_path / "late")
    got = make_collector()
    try:
        async with open_broker(server.url, prefix=prefix, **{**FAST, "connect_timeout": 0.2}) as broker:
            assert not broker.ready
            with pytest.raises(BrokerUnavailable):
                await broker.publish("x", 1)
            server.start()
            with trio.fail_after(15):
                await broker.wait_ready()
            broker.attach(got)
            await broker.subscribe("x")
            await broker.publish("x", 2)
            assert await got.wait_count("x", 1) == [2]
    finally:
        server.stop()


async def test_publishes_are_pipelined(redis_server: Any, prefix: str, make_collector: Any) -> None:
    got = make_collector()
    n = 2000
    async with open_broker(redis_server.url, prefix=prefix) as broker:
        assert isinstance(broker, RedisBroker)
        broker.attach(got)
        await broker.subscribe("bulk")
        async with trio.open_nursery() as nursery:
            for i in range(n):
                nursery.start_soon(broker.publish, "bulk", i)
        await got.wait_count("bulk", n)
        assert broker.stats.published == n
        # far fewer round trips than publishes
        assert broker.stats.publish_batches < n / 10, broker.stats


async def test_bad_envelopes_are_dropped_and_counted(
    redis_server: Any, prefix: str, make_collector: Any
) -> None:
    got = make_collector()
    async with open_broker(redis_server.url, prefix=prefix) as broker:
        assert isinstance(broker, RedisBroker)
        broker.attach(got)
        await broker.subscribe("c")
        name = (prefix + "c").encode()
        await _raw_publish(redis_server.port, name, b"\xc1 not msgpack")
        await _raw_publish(redis_server.port, name, b"\x81\xa1v\x07")  # {"v": 7}
        await broker.publish("c", "good")
        assert await got.wait_count("c", 1) == ["good"]
        assert broker.stats.decode_errors == 2
        assert broker.ready


async def test_deliver_exceptions_are_logged_not_fatal(
    redis_server: Any, prefix: str, caplog: pytest.LogCaptureFixture, make_collector: Any
) -> None:
    got = make_collector()

    def deliver(channel: str, data: Any) -> None:
        if data == "boom":
            raise RuntimeError("worker bug")
        got(channel, data)

    async with open_broker(redis_server.url, prefix=prefix) as broker:
        assert isinstance(broker, RedisBroker)
        broker.attach(deliver)
        await broker.subscribe("c")
        await broker.publish("c", "boom")
        await broker.publish("c", "ok")
        assert await got.wait_count("c", 1) == ["ok"]
        assert broker.stats.deliver_errors == 1
        assert any("deliver() raised" in r.getMessage() for r in caplog.records)


async def test_prefixes_isolate(redis_server: Any, prefix: str, make_collector: Any) -> None:
    got_a, got_b = make_collector(), make_collector()
    async with (
        open_broker(redis_server.url, prefix=prefix + "a:") as a,
        open_broker(redis_server.url, prefix=prefix + "b:") as b,
    ):
        a.attach(got_a)
        b.attach(got_b)
        await a.subscribe("ch")
        await b.subscribe("ch")
        await a.publish("ch", "for-a")
        await b.publish("ch", "for-b")
        assert await got_a.wait_count("ch", 1) == ["for-a"]
        assert await got_b.wait_count("ch", 1) == ["for-b"]
        await a.publish("ch", "for-a-2")
        assert await got_a.wait_count("ch", 2) == ["for-a", "for-a-2"]
        assert got_b.on("ch") == ["for-b"]


@pytest.fixture
def sentinel_port(redis_server: Any, tmp_path: Path) -> Iterator[int]:
    """A real redis sentinel monitoring the session's standalone server as ``hubbubmaster``."""
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor hubbubmaster 127.0.0.1 {redis_server.port} 1\n"
    )
    with (tmp_path / "sentinel.log").open("wb") as log:
        proc = subprocess.Popen([REDIS_SERVER, str(conf), "--sentinel"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: ping(port), "sentinel")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


async def test_sentinel(redis_server: Any, sentinel_port: int, prefix: str, make_collector: Any) -> None:
    """redis+sentinel:// finds the primary through a real sentinel and talks to the same Redis."""
    got = make_collector()
    url = f"redis+sentinel://127.0.0.1:{sentinel_port}/hubbubmaster"
    async with open_broker(url, prefix=prefix) as w1, open_broker(redis_server.url, prefix=prefix) as w2:
        assert w1.ready
        w1.attach(got)
        await w1.subscribe("s")
        await w2.publish("s", "via-standalone")
        await w1.publish("s", "via-sentinel")
        assert sorted(await got.wait_count("s", 2)) == ["via-sentinel", "via-standalone"]
