"""One conformance suite for every broker: memory://, standalone Redis and Redis Cluster."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from .conftest import BrokerOpener


def same_shard(*names: str) -> list[str]:
    """Channel names in one hash slot, so their relative order holds on a cluster too."""
    return ["{t}" + name for name in names]


@pytest.mark.trio
async def test_ready_after_open(open_worker: BrokerOpener) -> None:
    async with open_worker() as broker:
        with trio.fail_after(10):
            await broker.wait_ready()
        assert broker.ready


@pytest.mark.trio
async def test_delivers_to_the_publishing_worker(open_worker: BrokerOpener, make_collector: Any) -> None:
    got = make_collector()
    async with open_worker() as broker:
        broker.attach(got)
        await broker.subscribe("news")
        await broker.publish("news", {"hello": "world"})
        assert await got.wait_count("news", 1) == [{"hello": "world"}]


@pytest.mark.trio
async def test_two_workers_deliver_to_each_other(
    backend: str, open_worker: BrokerOpener, make_collector: Any
) -> None:
    if backend == "memory":
        pytest.skip("the memory broker serves exactly one worker")
    got1, got2 = make_collector(), make_collector()
    async with open_worker() as w1, open_worker() as w2:
        w1.attach(got1)
        w2.attach(got2)
        await w1.subscribe("room")
        await w2.subscribe("room")
        await w1.publish("room", "from-1")
        await w2.publish("room", "from-2")
        for got in (got1, got2):
            assert sorted(await got.wait_count("room", 2)) == ["from-1", "from-2"]
        # a worker not subscribed receives nothing, even when it publishes
        await w2.unsubscribe("room")
        await w2.publish("room", "from-2-again")
        await got1.wait_count("room", 3)
        assert got2.on("room") == ["from-1", "from-2"] or sorted(got2.on("room")) == ["from-1", "from-2"]


@pytest.mark.trio
async def test_per_channel_order(backend: str, open_worker: BrokerOpener, make_collector: Any) -> None:
    n = 500
    channels = ["a", "b", "c"]
    receivers = [make_collector() for _ in range(1 if backend == "memory" else 2)]
    async with open_worker() as pub, open_worker() as other:
        workers = [pub, other][: len(receivers)]
        for worker, got in zip(workers, receivers, strict=True):
            worker.attach(got)
            for ch in channels:
                await worker.subscribe(ch)
        for i in range(n):
            for ch in channels:
                await pub.publish(ch, i)
        for got in receivers:
            for ch in channels:
                assert await got.wait_count(ch, n) == list(range(n))


@pytest.mark.trio
async def test_order_with_concurrent_publishers_in_one_worker(
    open_worker: BrokerOpener, make_collector: Any
) -> None:
    """Each task's publishes stay in order even when many tasks publish at once (batched)."""
    got = make_collector()
    tasks, per_task = 20, 50
    async with open_worker() as broker:
        broker.attach(got)
        await broker.subscribe("mix")

        async def publisher(task: int) -> None:
            for i in range(per_task):
                await broker.publish("mix", [task, i])

        async with trio.open_nursery() as nursery:
            for task in range(tasks):
                nursery.start_soon(publisher, task)
        received = await got.wait_count("mix", tasks * per_task)
        for task in range(tasks):
            assert [i for t, i in received if t == task] == list(range(per_task))  # type: ignore[misc]


@pytest.mark.trio
async def test_unsubscribe_stops_delivery(open_worker: BrokerOpener, make_collector: Any) -> None:
    got = make_collector()
    gone, marker = same_shard("gone", "marker")
    async with open_worker() as broker:
        broker.attach(got)
        await broker.subscribe(gone)
        await broker.subscribe(marker)
        await broker.publish(gone, 1)
        await got.wait_count(gone, 1)
        await broker.unsubscribe(gone)
        await broker.publish(gone, 2)
        await broker.publish(marker, "after")
        await got.wait_count(marker, 1)
        assert got.on(gone) == [1]
        # subscribing again works
        await broker.subscribe(gone)
        await broker.publish(gone, 3)
        assert await got.wait_count(gone, 2) == [1, 3]


@pytest.mark.trio
async def test_subscriptions_and_idempotent_calls(open_worker: BrokerOpener) -> None:
    async with open_worker() as broker:
        assert broker.subscriptions() == frozenset()
        await broker.subscribe("x")
        await broker.subscribe("y")
        await broker.subscribe("x")
        assert broker.subscriptions() == frozenset({"x", "y"})
        await broker.unsubscribe("x")
        await broker.unsubscribe("x")
        await broker.unsubscribe("never")
        assert broker.subscriptions() == frozenset({"y"})
        assert broker.ready


PAYLOADS: list[Any] = [
    b"\x00\xff\x10raw",
    "unicode é ✓",
    {"nested": {"list": [1, -2, 3.5, None, True, False, b"\x01"], "map": {"k": "v"}}, "n": 2**63 - 1},
    [[], {}, "", b""],
    None,
    0,
]


@pytest.mark.trio
async def test_bytes_and_nested_data_survive(open_worker: BrokerOpener, make_collector: Any) -> None:
    got = make_collector()
    async with open_worker() as broker:
        broker.attach(got)
        await broker.subscribe("data")
        for payload in PAYLOADS:
            await broker.publish("data", payload)
        assert await got.wait_count("data", len(PAYLOADS)) == PAYLOADS


@pytest.mark.trio
async def test_publish_without_subscribers_is_fine(open_worker: BrokerOpener, make_collector: Any) -> None:
    got = make_collector()
    async with open_worker() as broker:
        broker.attach(got)
        await broker.publish("nobody-listens", "hello")
        await broker.subscribe("later")
        await broker.publish("later", "now")
        await got.wait_count("later", 1)
        assert got.on("nobody-listens") == []


@pytest.mark.trio
async def test_channel_names_are_arbitrary_text(open_worker: BrokerOpener, make_collector: Any) -> None:
    got = make_collector()
    names = ["with space", "ünï/cødé", "a:b:c", "*", "{braces}"]
    async with open_worker() as broker:
        broker.attach(got)
        for name in names:
            await broker.subscribe(name)
            await broker.publish(name, name)
        for name in names:
            assert await got.wait_count(name, 1) == [name]


@pytest.mark.trio
async def test_strings_that_are_not_unicode_are_relayed(
    open_worker: BrokerOpener, make_collector: Any
) -> None:
    """Lone surrogates (which JSON and JavaScript allow) in names and data, as socketcluster relays them."""
    got = make_collector()
    name = "lone\ud800"
    payload = {"text": "a\udc00b\ud800", "list": ["\udfff"]}
    async with open_worker() as broker:
        broker.attach(got)
        await broker.subscribe(name)
        await broker.publish(name, payload)
        assert await got.wait_count(name, 1) == [payload]
        assert broker.subscriptions() == {name}
        await broker.subscribe("after")  # the broker still works for everyone else
        await broker.publish("after", 1)
        assert await got.wait_count("after", 1) == [1]
