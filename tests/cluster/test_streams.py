"""History channels in-process: offset order, gap healing, recovery on subscribe, coalesced reads.

Pub/sub loss cannot be produced on demand with a real broker in-process, so these tests use
:class:`LossyHistoryBroker`: a history broker that keeps what it is told to and can drop chosen
deliveries (what a killed Redis pub/sub connection does). The same behaviour against real Redis
is in ``tests/cluster/test_history_cluster.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing

from hubbub.broker import (
    DeliverFn,
    HistoryBroker,
    HistoryEntry,
    HistoryOptions,
    HistoryPage,
    PositionedDeliverFn,
    StreamPosition,
)
from hubbub.cluster._hub import Hub, Publication
from hubbub.cluster._recovery import HistoryChannels
from hubbub.protocol import JsonCodec

pytestmark = pytest.mark.trio

OPTIONS = HistoryOptions(size=20, ttl=60)


class Recorder:
    """A subscriber that keeps the offsets and data it is sent."""

    def __init__(self) -> None:
        self.link = self
        self.received: list[tuple[int, Any, str]] = []

    def send_frame(self, frame: bytes) -> None:
        data = json.loads(frame[2:] if frame[1] < 126 else frame[4:])["data"]
        self.received.append((data["offset"], data["data"], data["epoch"]))

    def deliver_filtered(self, publication: Publication) -> None:  # no outbound middleware here
        raise AssertionError("unexpected filtered delivery")

    def filtering(self) -> int:
        return 0

    def offsets(self) -> list[int]:
        return [offset for offset, _, _ in self.received]


class LossyHistoryBroker:
    """An in-process history broker whose deliveries can be dropped, and whose reads take a step."""

    def __init__(self) -> None:
        self.epoch = "e1"
        self.entries: dict[str, list[HistoryEntry]] = {}
        self.top: dict[str, int] = {}
        self.drop: set[int] = set()
        self.reads = 0
        self.read_gate: trio.Event | None = None
        self._deliver: PositionedDeliverFn | None = None
        self.reconnected: Callable[[], None] = lambda: None

    # plain Broker part
    def attach(self, deliver: DeliverFn) -> None:
        pass

    async def subscribe(self, channel: str) -> None:
        await trio.lowlevel.checkpoint()

    async def unsubscribe(self, channel: str) -> None:
        await trio.lowlevel.checkpoint()

    async def publish(self, channel: str, data: Any) -> None:
        raise AssertionError("plain publish on a history channel")

    @property
    def ready(self) -> bool:
        return True

    def subscriptions(self) -> frozenset[str]:
        return frozenset()

    # history part
    def attach_history(self, deliver: PositionedDeliverFn, reconnected: Callable[[], None]) -> None:
        self._deliver = deliver
        self.reconnected = reconnected

    def add(self, channel: str, data: Any) -> int:
        offset = self.top.get(channel, 0) + 1
        self.top[channel] = offset
        kept = self.entries.setdefault(channel, [])
        kept.append(HistoryEntry(offset, data))
        del kept[: -OPTIONS.size]
        if offset not in self.drop:
            assert self._deliver is not None
            self._deliver(channel, data, offset, self.epoch)
        return offset

    async def publish_history(self, channel: str, data: Any, options: HistoryOptions) -> StreamPosition:
        return StreamPosition(self.add(channel, data), self.epoch)

    async def history(
        self,
        channel: str,
        options: HistoryOptions,
        *,
        since: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> HistoryPage:
        self.reads += 1
        entries = [e for e in self.entries.get(channel, []) if since is None or e.offset > since]
        if reverse:
            entries.reverse()
        if limit is not None:
            entries = entries[:limit]
        page = HistoryPage(entries, StreamPosition(self.top.get(channel, 0), self.epoch))
        if self.read_gate is not None:  # the answer is on its way while more is published
            await self.read_gate.wait()
        await trio.lowlevel.checkpoint()
        return page

    async def remove_history(self, channel: str) -> None:
        self.entries.pop(channel, None)


async def _settle() -> None:
    """Let every task run until all wait (the clock is virtual: it jumps ahead when all tasks sleep)."""
    await trio.sleep(1)


@asynccontextmanager
async def _world() -> AsyncIterator[tuple[trio.Nursery, LossyHistoryBroker, Hub, HistoryChannels]]:
    """A hub with history channels on a :class:`LossyHistoryBroker`; its tasks end with the block."""
    async with trio.open_nursery() as nursery:
        broker = LossyHistoryBroker()
        assert isinstance(broker, HistoryBroker)
        hub = Hub(broker, nursery, [], JsonCodec())
        yield nursery, broker, hub, HistoryChannels(hub, broker, nursery)
        nursery.cancel_scope.cancel()


async def _subscribed(history: HistoryChannels) -> Recorder:
    """A subscriber of ``ch`` from now on."""
    sub = Recorder()
    (await history.subscribe(sub, "ch", OPTIONS, None)).finish()
    return sub


async def test_publications_arrive_in_offset_order_with_their_position(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _world() as (_nursery, broker, _hub, history):
        sub = Recorder()
        subscribed = await history.subscribe(sub, "ch", OPTIONS, None)
        assert subscribed.answer == {"offset": 0, "epoch": "e1"}
        subscribed.finish()
        for i in range(5):
            broker.add("ch", i)
        assert sub.received == [(i + 1, i, "e1") for i in range(5)]


async def test_a_gap_is_filled_from_the_history_before_what_came_after_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _world() as (_nursery, broker, _hub, history):
        sub = await _subscribed(history)
        broker.drop = {3, 4, 5}
        for i in range(8):
            broker.add("ch", i)
        await _settle()
        assert sub.offsets() == [1, 2, 3, 4, 5, 6, 7, 8]
        assert history.streams.stats.healed == 3
        assert history.streams.stats.lost == 0


async def test_after_a_reconnect_the_worker_reads_what_it_missed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _world() as (_nursery, broker, _hub, history):
        sub = await _subscribed(history)
        broker.add("ch", "a")
        broker.drop = {2, 3}
        broker.add("ch", "b")
        broker.add("ch", "c")
        assert sub.offsets() == [1]
        broker.reconnected()
        await _settle()
        assert sub.offsets() == [1, 2, 3]


async def test_a_gap_the_history_no_longer_holds_is_counted_and_delivery_goes_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _world() as (_nursery, broker, _hub, history):
        sub = await _subscribed(history)
        broker.drop = set(range(1, 31))
        for i in range(31):
            broker.add("ch", i)
        await _settle()
        assert sub.offsets() == list(range(12, 32))  # the last 20 the history held
        assert history.streams.stats.lost == 11


async def test_recovery_sends_what_was_missed_once_in_order_before_live_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _world() as (nursery, broker, _hub, history):
        await _subscribed(history)
        for i in range(10):
            broker.add("ch", i)
        sub = Recorder()
        gate = broker.read_gate = trio.Event()
        answer: dict[str, Any] = {}

        async def subscribe() -> None:
            subscribed = await history.subscribe(sub, "ch", OPTIONS, StreamPosition(4, "e1"))
            answer.update(subscribed.answer)
            subscribed.finish()

        nursery.start_soon(subscribe)
        await _settle()
        for i in range(10, 13):  # live while the recovery read waits
            broker.add("ch", i)
        assert sub.received == []
        gate.set()
        broker.read_gate = None
        await _settle()
        for i in range(13, 15):
            broker.add("ch", i)
        assert sub.offsets() == list(range(5, 16))
        assert answer == {"recovered": True, "offset": 10, "epoch": "e1"}  # 11-13 came live


async def test_recovery_reports_why_it_failed(autojump_clock: trio.testing.MockClock) -> None:
    async with _world() as (_nursery, broker, _hub, history):
        for i in range(30):
            broker.add("ch", i)
        old = await history.subscribe(Recorder(), "ch", OPTIONS, StreamPosition(3, "e0"))
        assert old.answer == {"recovered": False, "reason": "epoch changed", "offset": 30, "epoch": "e1"}
        sub = Recorder()
        far = await history.subscribe(sub, "ch", OPTIONS, StreamPosition(3, "e1"))
        far.finish()
        assert far.answer["recovered"] is False and far.answer["reason"] == "too many missed"
        broker.add("ch", "live")
        assert sub.offsets() == [31]
        assert history.streams.stats.recoveries == {"epoch changed": 1, "too many missed": 1}


async def test_many_recoveries_of_one_channel_share_one_history_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _world() as (_nursery, broker, _hub, history):
        await _subscribed(history)
        for i in range(15):
            broker.add("ch", i)
        before = broker.reads
        subs = [Recorder() for _ in range(100)]

        async def recover(sub: Recorder, since: int) -> None:
            subscribed = await history.subscribe(sub, "ch", OPTIONS, StreamPosition(since, "e1"))
            assert subscribed.answer["recovered"] is True
            subscribed.finish()

        async with trio.open_nursery() as inner:
            for i, sub in enumerate(subs):
                inner.start_soon(recover, sub, 5 + i % 5)
        assert broker.reads - before == 1
        assert all(sub.offsets() == list(range(6 + i % 5, 16)) for i, sub in enumerate(subs))


async def test_a_gap_right_after_the_position_read_is_filled_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with _world() as (nursery, broker, _hub, history):
        broker.add("ch", "before")
        gate = broker.read_gate = trio.Event()
        sub = Recorder()
        answers: list[dict[str, Any]] = []

        async def subscribe() -> None:
            subscribed = await history.subscribe(sub, "ch", OPTIONS, None)
            answers.append(subscribed.answer)
            subscribed.finish()

        nursery.start_soon(subscribe)
        await _settle()  # the position read waits at the gate
        broker.drop = {2}
        broker.add("ch", "lost on the way")
        broker.add("ch", "after the gap")
        broker.read_gate = None
        gate.set()
        await _settle()
        assert sub.offsets() == [2, 3]  # 3 arrived after the gap: 2 came from the history first
        assert answers == [{"offset": 1, "epoch": "e1"}]
        assert sub.offsets() == [2, 3]
        assert history.streams.stats.healed == 1


async def test_with_outbound_middleware_publications_keep_their_position(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        broker = LossyHistoryBroker()
        hub = Hub(broker, nursery, [object()], JsonCodec())  # any outbound middleware
        history = HistoryChannels(hub, broker, nursery)
        filtered: list[Publication] = []

        class Filtering(Recorder):
            def deliver_filtered(self, publication: Publication) -> None:
                filtered.append(publication)

        for i in range(3):
            broker.add("ch", i)
        sub = Filtering()
        subscribed = await history.subscribe(sub, "ch", OPTIONS, StreamPosition(1, "e1"))
        subscribed.finish()
        broker.add("ch", 3)
        assert [(p.offset, p.data) for p in filtered] == [(2, 1), (3, 2), (4, 3)]
        assert filtered[0].packet_data("changed") == {
            "channel": "ch",
            "data": "changed",
            "offset": 2,
            "epoch": "e1",
        }


async def test_no_hold_outlives_its_need(autojump_clock: trio.testing.MockClock) -> None:
    async with _world() as (nursery, broker, hub, history):
        for i in range(5):
            broker.add("ch", i)
        settled = Recorder()
        (await history.subscribe(settled, "ch", OPTIONS, StreamPosition(2, "e1"))).finish()
        assert settled.offsets() == [3, 4, 5]
        assert not history.fanout._holds  # the worker had delivered up to 5 already: nothing to skip
        gone = Recorder()
        gate = broker.read_gate = trio.Event()
        nursery.start_soon(history.subscribe, gone, "ch", OPTIONS, StreamPosition(1, "e1"))
        await _settle()
        assert history.fanout._holds  # held while its recovery read waits
        hub.remove(gone)
        hub.remove(settled)  # the channel has no subscriber left: its holds go with it
        assert not history.fanout._holds
        gate.set()
