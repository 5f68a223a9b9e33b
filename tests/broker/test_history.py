"""Channel history on every broker (memory://, standalone Redis, Redis Cluster): offsets, epochs,
trimming, expiry, reads, delivery with positions; and on Redis alone: the epoch after FLUSHALL,
a restart or a lost meta key, the ``reconnected`` callback, the script cache flushed, failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from hubbub.broker import (
    BrokerUnavailable,
    HistoryBroker,
    HistoryEntry,
    HistoryOptions,
    ManagedBroker,
    MemoryBroker,
    RedisBroker,
    StreamPosition,
    open_broker,
)

from .conftest import BrokerOpener, RedisCluster, free_port, wait_until
from .test_failover import _cluster_nodes, _move_slot, _slot_owner_everywhere, cli_sync

KEEP = HistoryOptions(size=100, ttl=60)
FAST = {"backoff_initial": 0.02, "backoff_max": 0.3, "connect_timeout": 2.0, "publish_timeout": 3.0}


class Positioned:
    """A history deliver function that records ``(channel, data, offset, epoch)`` and can be waited on."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, Any, int, str]] = []
        self._changed = trio.Event()

    def __call__(self, channel: str, data: Any, offset: int, epoch: str) -> None:
        self.messages.append((channel, data, offset, epoch))
        self._changed.set()
        self._changed = trio.Event()

    def on(self, channel: str) -> list[tuple[Any, int, str]]:
        return [(data, offset, epoch) for ch, data, offset, epoch in self.messages if ch == channel]

    async def wait_count(self, channel: str, count: int, timeout: float = 10.0) -> list[tuple[Any, int, str]]:
        with trio.fail_after(timeout):
            while len(self.on(channel)) < count:
                await self._changed.wait()
        return self.on(channel)


def history_of(broker: ManagedBroker) -> HistoryBroker:
    assert isinstance(broker, HistoryBroker)
    return broker


def never() -> None:
    raise AssertionError("reconnected called without a reconnect")


async def wait_until_true(
    predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05
) -> None:
    """Poll ``predicate`` (expiry in Redis has no event to wait on) against a deadline."""
    with trio.fail_after(timeout):
        while not await predicate():  # noqa: ASYNC110 -- polling a remote state against a deadline
            await trio.sleep(interval)


# -- every backend ------------------------------------------------------------------------------


@pytest.mark.trio
async def test_offsets_count_from_one_and_deliveries_carry_the_stored_position(
    open_worker: BrokerOpener, make_collector: Any
) -> None:
    plain, positioned = make_collector(), Positioned()
    async with open_worker() as broker:
        history = history_of(broker)
        broker.attach(plain)
        history.attach_history(positioned, never)
        await broker.subscribe("h")
        positions = [await history.publish_history("h", {"n": i}, KEEP) for i in range(5)]
        assert [p.offset for p in positions] == [1, 2, 3, 4, 5]
        epoch = positions[0].epoch
        assert epoch and all(p.epoch == epoch for p in positions)
        assert await positioned.wait_count("h", 5) == [({"n": i}, i + 1, epoch) for i in range(5)]
        page = await history.history("h", KEEP)
        assert page.position == StreamPosition(5, epoch)
        assert page.entries == [HistoryEntry(i + 1, {"n": i}) for i in range(5)]

        # plain publishes take the plain path, on the same channel too
        await broker.publish("h", "plain")
        assert await plain.wait_count("h", 1) == ["plain"]
        assert len(positioned.messages) == 5
        assert (await history.history("h", KEEP)).position == StreamPosition(5, epoch)


@pytest.mark.trio
async def test_offsets_have_no_gap_and_no_repeat_under_concurrent_publishers(
    backend: str, open_worker: BrokerOpener
) -> None:
    tasks, per_task = 10, 15
    total = (1 if backend == "memory" else 2) * tasks * per_task
    receivers = [Positioned(), Positioned()]
    async with open_worker() as w1, open_worker() as w2:
        workers = [w1] if backend == "memory" else [w1, w2]
        for worker, got in zip(workers, receivers, strict=False):
            history_of(worker).attach_history(got, never)
            await worker.subscribe("busy")
        positions: list[StreamPosition] = []

        async def publisher(worker: ManagedBroker, task: int) -> None:
            for i in range(per_task):
                positions.append(await history_of(worker).publish_history("busy", [task, i], KEEP))

        async with trio.open_nursery() as nursery:
            for worker in workers:
                for task in range(tasks):
                    nursery.start_soon(publisher, worker, task)
        assert sorted(p.offset for p in positions) == list(range(1, total + 1))
        assert len({p.epoch for p in positions}) == 1
        for got in receivers[: len(workers)]:
            delivered = await got.wait_count("busy", total)
            assert [offset for _, offset, _ in delivered] == list(range(1, total + 1))
        if isinstance(w1, RedisBroker):
            assert w1.stats.publish_batches < tasks * per_task  # bursts share round trips


@pytest.mark.trio
async def test_history_keeps_the_last_size_publications(open_worker: BrokerOpener) -> None:
    options = HistoryOptions(size=3, ttl=60)
    async with open_worker() as broker:
        history = history_of(broker)
        for i in range(1, 6):
            await history.publish_history("trim", i * 10, options)
        page = await history.history("trim", options)
        assert page.entries == [HistoryEntry(3, 30), HistoryEntry(4, 40), HistoryEntry(5, 50)]
        assert page.position.offset == 5


@pytest.mark.trio
@pytest.mark.parametrize(
    ("since", "limit", "reverse", "offsets"),
    [
        (None, None, False, [1, 2, 3, 4, 5, 6]),
        (2, None, False, [3, 4, 5, 6]),
        (2, 2, False, [3, 4]),
        (None, 2, False, [1, 2]),
        (None, None, True, [6, 5, 4, 3, 2, 1]),
        (None, 2, True, [6, 5]),
        (4, None, True, [6, 5]),
        (3, 10, True, [6, 5, 4]),
        (None, 0, False, []),
        (0, None, False, [1, 2, 3, 4, 5, 6]),
        (6, None, False, []),
        (100, 5, True, []),
    ],
)
async def test_reads_with_since_limit_and_reverse(
    open_worker: BrokerOpener, since: int | None, limit: int | None, reverse: bool, offsets: list[int]
) -> None:
    async with open_worker() as broker:
        history = history_of(broker)
        for i in range(1, 7):
            await history.publish_history("read", f"m{i}", KEEP)
        page = await history.history("read", KEEP, since=since, limit=limit, reverse=reverse)
        assert page.entries == [HistoryEntry(o, f"m{o}") for o in offsets]
        assert page.position.offset == 6


@pytest.mark.trio
async def test_a_read_before_the_first_publish_fixes_the_epoch(open_worker: BrokerOpener) -> None:
    async with open_worker() as broker:
        history = history_of(broker)
        page = await history.history("fresh", KEEP)
        assert page.entries == [] and page.position.offset == 0 and page.position.epoch
        assert await history.publish_history("fresh", "x", KEEP) == StreamPosition(1, page.position.epoch)


@pytest.mark.trio
async def test_history_expires_ttl_after_the_last_publish_and_the_offsets_go_on(
    open_worker: BrokerOpener,
) -> None:
    options = HistoryOptions(size=10, ttl=1)
    async with open_worker() as broker:
        history = history_of(broker)
        await history.publish_history("ttl", "a", options)
        first = await history.publish_history("ttl", "b", options)
        assert len((await history.history("ttl", options)).entries) == 2

        async def expired() -> bool:
            return (await history.history("ttl", options)).entries == []

        await wait_until_true(expired)
        assert (await history.history("ttl", options)).position == first  # the meta lives on
        assert await history.publish_history("ttl", "c", options) == StreamPosition(3, first.epoch)
        assert (await history.history("ttl", options)).entries == [HistoryEntry(3, "c")]


@pytest.mark.trio
async def test_when_the_meta_expires_a_new_epoch_starts_at_offset_one(open_worker: BrokerOpener) -> None:
    short = HistoryOptions(size=10, ttl=0.05, meta_ttl=0.05)
    async with open_worker() as broker:
        history = history_of(broker)
        await history.publish_history("meta", "old", short)
        old = await history.publish_history("meta", "old", short)

        async def new_epoch() -> bool:  # polled less often than the meta ttl, so reads do not keep it
            return (await history.history("meta", short)).position.epoch != old.epoch

        await wait_until_true(new_epoch, interval=0.2)
        position = await history.publish_history("meta", "new", KEEP)
        assert position.offset == 1 and position.epoch != old.epoch
        assert (await history.history("meta", KEEP)).entries == [HistoryEntry(1, "new")]


@pytest.mark.trio
async def test_channel_names_with_braces_or_not_unicode_keep_history(
    open_worker: BrokerOpener, make_collector: Any
) -> None:
    """On a cluster the keys, the script and the shard channel must share each name's slot."""
    names = ["a}b", "}", "{", "x{}y", "{}", "{a", "a{b}c", "{{x}}", "", "lone\ud800", "}\ud800{"]
    plain, positioned = make_collector(), Positioned()
    async with open_worker() as broker:
        history = history_of(broker)
        broker.attach(plain)
        history.attach_history(positioned, never)
        for name in names:
            await broker.subscribe(name)
            await history.publish_history(name, [name, 1], KEEP)
            await history.publish_history(name, [name, 2], KEEP)
            await broker.publish(name, name)
        for name in names:
            delivered = await positioned.wait_count(name, 2)
            assert [(data, offset) for data, offset, _ in delivered] == [([name, 1], 1), ([name, 2], 2)]
            assert await plain.wait_count(name, 1) == [name]
            page = await history.history(name, KEEP, since=1)
            assert page.entries == [HistoryEntry(2, [name, 2])]
        assert broker.subscriptions() == frozenset(names)


@pytest.mark.trio
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"since": -1}, "since must be None or an integer >= 0"),
        ({"limit": -2}, "limit must be None or an integer >= 0"),
        ({"since": "3"}, "since must be"),
        ({"limit": True}, "limit must be"),
    ],
)
async def test_bad_read_arguments_are_a_clear_error(
    open_worker: BrokerOpener, kwargs: dict[str, Any], message: str
) -> None:
    async with open_worker() as broker:
        with pytest.raises(ValueError, match=message):
            await history_of(broker).history("c", KEEP, **kwargs)


# -- memory only ----------------------------------------------------------------------------------


def test_memory_history_publishes_and_reads_without_a_coroutine() -> None:
    broker = MemoryBroker()
    positioned = Positioned()
    broker.attach_history(positioned, never)
    broker.set_subscribed("c", True)
    position = broker.publish_history_now("c", "x", KEEP)
    assert positioned.messages == [("c", "x", 1, position.epoch)]  # delivered before it returned
    broker.publish_history_now("elsewhere", "y", KEEP)  # not subscribed: stored, not delivered
    assert len(positioned.messages) == 1
    assert broker.history_now("elsewhere", KEEP).entries == [HistoryEntry(1, "y")]


def test_memory_history_expiry_on_a_clock_of_its_own() -> None:
    from hubbub.broker._memory_history import MemoryHistory

    now = [100.0]
    history = MemoryHistory(clock=lambda: now[0])
    options = HistoryOptions(size=2, ttl=10, meta_ttl=30)
    first = history.publish("c", "a", options)
    history.publish("c", "b", options)
    assert history.publish("c", "c", options) == StreamPosition(3, first.epoch)
    assert history.read("c", options, None, None, False).entries == [
        HistoryEntry(2, "b"),
        HistoryEntry(3, "c"),
    ]
    now[0] += 10  # ttl after the last publish: the entries go, the meta stays
    page = history.read("c", options, None, None, False)
    assert page.entries == [] and page.position == StreamPosition(3, first.epoch)
    now[0] += 29.9  # that read kept the meta alive
    assert history.read("c", options, 0, None, False).position.epoch == first.epoch
    now[0] += 30  # meta ttl after the last read: a new epoch from offset 1
    renewed = history.publish("c", "d", options)
    assert renewed.offset == 1 and renewed.epoch != first.epoch
    assert history.read("c", options, None, None, True).entries == [HistoryEntry(1, "d")]


def test_memory_history_sweeps_out_expired_channels() -> None:
    from hubbub.broker._memory_history import MemoryHistory

    now = [0.0]
    history = MemoryHistory(clock=lambda: now[0])
    options = HistoryOptions(size=1, ttl=1, meta_ttl=1)
    for i in range(5000):
        history.publish(f"c{i}", i, options)
        now[0] += 0.01
    assert len(history._channels) < 2 * 1024


# -- Redis only -----------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.trio
async def test_flushall_starts_a_new_epoch(own_redis_server: Any, prefix: str) -> None:
    async with open_broker(own_redis_server.url, prefix=prefix) as broker:
        history = history_of(broker)
        for i in range(3):
            old = await history.publish_history("f", i, KEEP)
        assert old.offset == 3
        assert await history.publish_history("f", 3, KEEP) == StreamPosition(4, old.epoch)
        cli_sync(own_redis_server.port, "FLUSHALL")
        new = await history.publish_history("f", "after", KEEP)
        assert new.offset == 1 and new.epoch != old.epoch
        assert (await history.history("f", KEEP)).entries == [HistoryEntry(1, "after")]


@pytest.mark.redis
@pytest.mark.trio
async def test_a_lost_meta_drops_the_old_entries(redis_server: Any, prefix: str) -> None:
    async with open_broker(redis_server.url, prefix=prefix) as broker:
        assert isinstance(broker, RedisBroker)
        old = [await broker.publish_history("lost", i, KEEP) for i in range(3)][-1]
        meta, stream = broker._publisher._names.history_keys("lost")
        assert cli_sync(redis_server.port, "XLEN", stream.decode()).strip() == "3"
        cli_sync(redis_server.port, "DEL", meta.decode())
        new = await broker.publish_history("lost", "new", KEEP)
        assert new.offset == 1 and new.epoch != old.epoch
        assert (await broker.history("lost", KEEP)).entries == [HistoryEntry(1, "new")]


@pytest.mark.redis
@pytest.mark.trio
async def test_reconnected_is_called_after_the_subscriptions_are_back(
    own_redis_server: Any, prefix: str
) -> None:
    positioned = Positioned()
    reconnects = 0
    back = trio.Event()

    def reconnected() -> None:
        nonlocal reconnects
        reconnects += 1
        assert broker.subscriptions() == {"r"} and broker.ready
        back.set()

    async with open_broker(own_redis_server.url, prefix=prefix, **FAST) as broker:
        history = history_of(broker)
        history.attach_history(positioned, reconnected)
        await broker.subscribe("r")
        await history.publish_history("r", "before", KEEP)
        await positioned.wait_count("r", 1)
        assert reconnects == 0  # the first session is no reconnect
        cli_sync(own_redis_server.port, "CLIENT", "KILL", "TYPE", "pubsub")
        with trio.fail_after(15):
            await back.wait()
        assert reconnects == 1
        await history.publish_history("r", "after", KEEP)
        assert [(d, o) for d, o, _ in await positioned.wait_count("r", 2)] == [("before", 1), ("after", 2)]


@pytest.mark.redis
@pytest.mark.trio
async def test_a_restart_without_persistence_starts_a_new_epoch(own_redis_server: Any, prefix: str) -> None:
    positioned = Positioned()
    back = trio.Event()
    async with open_broker(own_redis_server.url, prefix=prefix, **FAST) as broker:
        history = history_of(broker)
        history.attach_history(positioned, back.set)
        await broker.subscribe("s")
        old = await history.publish_history("s", "before", KEEP)
        own_redis_server.kill()
        own_redis_server.start()
        with trio.fail_after(15):
            await back.wait()
        new = await history.publish_history("s", "after", KEEP)
        assert new.offset == 1 and new.epoch != old.epoch
        assert (await positioned.wait_count("s", 2))[-1] == ("after", 1, new.epoch)


@pytest.mark.redis
@pytest.mark.trio
async def test_a_flushed_script_cache_falls_back_to_eval(own_redis_server: Any, prefix: str) -> None:
    async with open_broker(own_redis_server.url, prefix=prefix) as broker:
        history = history_of(broker)
        first = await history.publish_history("n", 1, KEEP)
        cli_sync(own_redis_server.port, "SCRIPT", "FLUSH")
        assert await history.publish_history("n", 2, KEEP) == StreamPosition(2, first.epoch)
        cli_sync(own_redis_server.port, "SCRIPT", "FLUSH")
        assert (await history.history("n", KEEP)).entries == [HistoryEntry(1, 1), HistoryEntry(2, 2)]


@pytest.mark.redis
@pytest.mark.trio
async def test_history_fails_clearly_without_redis(prefix: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    async with open_broker(url, prefix=prefix, **{**FAST, "connect_timeout": 0.2}) as broker:
        history = history_of(broker)
        with trio.fail_after(2):
            with pytest.raises(BrokerUnavailable, match="not connected"):
                await history.publish_history("c", 1, KEEP)
            with pytest.raises(BrokerUnavailable, match="not connected"):
                await history.history("c", KEEP)


@pytest.mark.redis
@pytest.mark.trio
async def test_unencodable_history_data_is_a_type_error(redis_server: Any, prefix: str) -> None:
    async with open_broker(redis_server.url, prefix=prefix) as broker:
        history = history_of(broker)
        with pytest.raises(TypeError):
            await history.publish_history("c", object(), KEEP)
        assert (await history.publish_history("c", "fine", KEEP)).offset == 1


@pytest.mark.redis
@pytest.mark.trio
@pytest.mark.timeout(30)
async def test_a_history_publish_redirected_by_moved_fails_and_the_history_moves_with_its_keys(
    redis_cluster: RedisCluster, prefix: str
) -> None:
    """The slot moves (keys migrated) behind the broker's back: the publish that coredis had to
    follow through MOVED raises BrokerUnavailable (the old shard's subscribers missed it), but
    the script ran on the new owner, so the offsets go on in the same epoch."""
    cluster = redis_cluster
    async with open_broker(cluster.url, prefix=prefix) as broker:
        assert isinstance(broker, RedisBroker)
        meta, stream = (key.decode() for key in broker._publisher._names.history_keys("moving"))
        slot = int(cli_sync(cluster.nodes[0].port, "cluster", "keyslot", meta).strip())
        assert slot == int(cli_sync(cluster.nodes[0].port, "cluster", "keyslot", prefix + "moving").strip())
        first = await broker.publish_history("moving", 1, KEEP)
        from_port = next(
            p for p, (_, slots) in _cluster_nodes(cluster.nodes[0].port).items() if slot in slots
        )
        to_port = next(n.port for n in cluster.nodes if n.port != from_port)
        try:
            _move_slot(cluster, slot, to_port, (meta, stream))
            with pytest.raises(BrokerUnavailable, match="slot moved"):
                await broker.publish_history("moving", 2, KEEP)
            assert await broker.publish_history("moving", 3, KEEP) == StreamPosition(3, first.epoch)
            page = await broker.history("moving", KEEP)
            assert page.entries == [HistoryEntry(1, 1), HistoryEntry(2, 2), HistoryEntry(3, 3)]
        finally:  # give the slot back so the shared cluster keeps its original layout
            _move_slot(cluster, slot, from_port, (meta, stream))
            wait_until(lambda: _slot_owner_everywhere(cluster, slot, from_port), "slot moved back", 10, 0.05)
