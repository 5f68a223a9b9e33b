"""The subscription table in-process: when #subscribe goes out, confirmation, delivery, endings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import anyio.abc
import pytest

from hubbub.client import (
    Channel,
    ChannelOverflowError,
    ChannelState,
    KickedOutError,
    Overflow,
    Publication,
    RemoteError,
    Resubscribed,
    StreamPosition,
)
from hubbub.client._buffer import Notifier
from hubbub.client._calls import CallTable
from hubbub.client._channel import SubscribeOptions
from hubbub.client._events import EventHub
from hubbub.client._subscriptions import Subscriptions
from hubbub.protocol import Response

from .fakes import Link

pytestmark = pytest.mark.anyio


@dataclass
class Parts:
    link: Link
    calls: CallTable
    table: Subscriptions
    authenticated: list[bool]
    events: EventHub

    def sent(self) -> list[object]:
        assert self.link.session is not None
        return self.link.session.packets

    def confirm(self, cid: int, error: object = None, data: object = None) -> None:
        self.calls.resolve(Response(rid=cid, data=data, error=error))

    def reconnect(self) -> None:
        self.link.drop()
        self.calls.fail_all(1006, "")
        self.table.on_disconnect()
        self.link.open()
        self.table.send_pending()


@pytest.fixture
async def parts() -> AsyncIterator[Parts]:
    link, authenticated, events = Link(), [False], EventHub()
    calls = CallTable(link, ack_timeout=10, url="ws://test/")  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg:
        table = Subscriptions(
            link,  # type: ignore[arg-type]
            calls,
            Notifier(),
            spawn=tg.start_soon,
            is_authenticated=lambda: authenticated[0],
            events=events,
        )
        yield Parts(link, calls, table, authenticated, events)
        tg.cancel_scope.cancel()


def subscribe(
    parts: Parts, name: str, priority: int = 0, wait_for_auth: bool = False, size: int = 10
) -> Channel:
    options = SubscribeOptions(priority=priority, wait_for_auth=wait_for_auth)
    return parts.table.subscribe(name, options, size, Overflow.ERROR)


async def test_pending_subscriptions_go_out_on_connect_by_priority_and_auth(parts: Parts) -> None:
    low, high = subscribe(parts, "low"), subscribe(parts, "high", priority=5)
    private = subscribe(parts, "private", wait_for_auth=True)
    parts.link.open()
    parts.table.send_pending()
    assert parts.sent() == [
        {"event": "#subscribe", "data": {"channel": "high"}, "cid": 1},
        {"event": "#subscribe", "data": {"channel": "low"}, "cid": 2},
    ]
    parts.authenticated[0] = True
    parts.table.send_pending()
    assert parts.sent()[2:] == [
        {"event": "#subscribe", "data": {"channel": "private", "waitForAuth": True}, "cid": 3}
    ]
    parts.confirm(1)
    await high.wait_subscribed(timeout=5)
    assert (high.state, low.state, private.state) == (
        ChannelState.SUBSCRIBED,
        ChannelState.PENDING,
        ChannelState.PENDING,
    )


async def test_a_second_handle_shares_the_wire_subscription(parts: Parts) -> None:
    parts.link.open()
    first, second = subscribe(parts, "room"), subscribe(parts, "room")
    assert len(parts.sent()) == 1 and parts.table.names() == ["room"]
    parts.confirm(1)
    await second.wait_subscribed(timeout=5)
    parts.table.on_publish({"channel": "room", "data": "hi"})
    parts.table.on_publish({"channel": "elsewhere", "data": "no"})
    parts.table.on_publish("malformed")
    assert (await first.receive(), await second.receive()) == ("hi", "hi")
    assert (parts.table.publications, parts.table.ignored_publications) == (1, 1)
    await first.unsubscribe()
    assert len(parts.sent()) == 1  # a handle remains
    await second.unsubscribe()
    assert parts.sent()[1] == {"event": "#unsubscribe", "data": "room"}
    assert parts.table.names() == []


async def test_a_refused_subscription_ends_its_handles(parts: Parts) -> None:
    parts.link.open()
    channel = subscribe(parts, "secret")
    parts.confirm(1, error={"name": "ForbiddenError", "message": "no"})
    with pytest.raises(RemoteError, match="no"):
        await channel.wait_subscribed(timeout=5)
    assert parts.table.names() == [] and channel.state is ChannelState.UNSUBSCRIBED


async def test_a_disconnect_makes_subscriptions_pending_and_they_go_out_again(parts: Parts) -> None:
    parts.link.open()
    channel = subscribe(parts, "room")
    parts.confirm(1)
    await channel.wait_subscribed(timeout=5)
    parts.link.drop()
    parts.calls.fail_all(1006, "")
    parts.table.on_disconnect()
    assert channel.state is ChannelState.PENDING
    parts.link.open()
    parts.table.send_pending()
    assert parts.sent() == [{"event": "#subscribe", "data": {"channel": "room"}, "cid": 2}]


async def test_kick_out_overflow_and_close_end_handles_with_their_reason(parts: Parts) -> None:
    parts.link.open()
    kicked, overflowing, closing = subscribe(parts, "a"), subscribe(parts, "b", size=1), subscribe(parts, "c")
    error = parts.table.on_kick_out({"channel": "a", "message": "bye"})
    assert isinstance(error, KickedOutError) and parts.table.on_kick_out({"no": "channel"}) is None
    for data in (1, 2):
        parts.table.on_publish({"channel": "b", "data": data})
    parts.table.end_all(RuntimeError("closed"))
    with pytest.raises(KickedOutError):
        await kicked.receive()
    assert await overflowing.receive() == 1
    with pytest.raises(ChannelOverflowError):
        await overflowing.receive()
    with pytest.raises(RuntimeError, match="closed"):
        await closing.receive()


def publish(parts: Parts, channel: str, *offsets: int, epoch: str = "e1") -> None:
    for offset in offsets:
        parts.table.on_publish({"channel": channel, "data": f"m{offset}", "offset": offset, "epoch": epoch})


async def test_a_resubscribe_recovers_from_the_last_publication(parts: Parts) -> None:
    parts.link.open()
    channel = parts.table.subscribe("hist/a", SubscribeOptions(recover=True), 100, Overflow.ERROR)
    assert parts.sent() == [{"event": "#subscribe", "data": {"channel": "hist/a"}, "cid": 1}]
    parts.confirm(1, data={"offset": 4, "epoch": "e1"})
    await channel.wait_subscribed(timeout=5)
    assert (channel.position, channel.recovered) == (StreamPosition(4, "e1"), None)
    publish(parts, "hist/a", 5, 6, 7)
    assert await channel.receive() == "m5"
    assert channel.position == StreamPosition(5, "e1")  # what was handed out, not what is buffered
    assert await channel.receive_publication() == Publication("m6", 6, "e1")

    async with parts.events.listen() as events:
        parts.reconnect()
        assert parts.sent() == [
            {
                "event": "#subscribe",
                "data": {"channel": "hist/a", "data": {"recover": {"offset": 7, "epoch": "e1"}}},
                "cid": 2,
            }
        ]
        publish(parts, "hist/a", 6, 7)  # duplicates: dropped
        parts.confirm(2, data={"recovered": True, "offset": 9, "epoch": "e1"})
        publish(parts, "hist/a", 8, 9, 9)
        assert await channel.wait_resubscribed(timeout=5) is True
        with anyio.fail_after(5):
            assert await anext(events) == Resubscribed("hist/a", True, None)
    assert [await channel.receive() for _ in range(3)] == ["m7", "m8", "m9"]
    assert channel.buffered == 0 and channel.position == StreamPosition(9, "e1")
    assert (channel.recovered, channel.recovery_reason) == (True, None)
    assert (parts.table.publications, parts.table.duplicate_publications) == (5, 3)


async def test_an_unrecovered_resubscribe_says_why_and_takes_the_new_epoch(parts: Parts) -> None:
    parts.link.open()
    options = SubscribeOptions(data={"room": "x"}, recover=True)
    channel = parts.table.subscribe("hist/b", options, 100, Overflow.ERROR)
    parts.confirm(1, data={"offset": 3, "epoch": "e1"})
    await channel.wait_subscribed(timeout=5)
    parts.reconnect()
    assert parts.sent()[0]["data"]["data"] == {"room": "x", "recover": {"offset": 3, "epoch": "e1"}}  # type: ignore[index]
    parts.confirm(2, data={"recovered": False, "reason": "epoch changed", "offset": 1, "epoch": "e2"})
    assert await channel.wait_resubscribed(timeout=5) is False
    assert (channel.recovery_reason, channel.position) == ("epoch changed", StreamPosition(1, "e2"))
    publish(parts, "hist/b", 1, 2, epoch="e2")
    assert await channel.receive_publication() == Publication("m2", 2, "e2")


async def test_without_recover_a_resubscribe_sends_no_position(parts: Parts) -> None:
    parts.link.open()
    channel = subscribe(parts, "hist/c")
    parts.confirm(1, data={"offset": 3, "epoch": "e1"})
    await channel.wait_subscribed(timeout=5)
    publish(parts, "hist/c", 4)
    parts.reconnect()
    assert parts.sent() == [{"event": "#subscribe", "data": {"channel": "hist/c"}, "cid": 2}]
    parts.confirm(2, data={"offset": 9, "epoch": "e1"})
    assert await channel.wait_resubscribed(timeout=5) is False
    assert channel.recovery_reason == "recovery not requested"
    publish(parts, "hist/c", 4, 5)
    assert [await channel.receive() for _ in range(2)] == ["m4", "m5"]
    assert channel.buffered == 0 and parts.table.duplicate_publications == 1


async def test_since_recovers_on_the_first_subscribe_and_positions_are_per_handle(parts: Parts) -> None:
    parts.link.open()
    since = StreamPosition(10, "e1")
    first = parts.table.subscribe("hist/d", SubscribeOptions(recover=True, since=since), 100, Overflow.ERROR)
    assert first.position == since
    assert parts.sent()[0]["data"]["data"] == {"recover": {"offset": 10, "epoch": "e1"}}  # type: ignore[index]
    parts.confirm(1, data={"recovered": True, "offset": 12, "epoch": "e1"})
    publish(parts, "hist/d", 11, 12)
    assert await first.wait_resubscribed(timeout=5) is True
    second = parts.table.subscribe("hist/d", SubscribeOptions(), 100, Overflow.ERROR)
    assert second.position == StreamPosition(12, "e1")  # joined after 12 was handed out
    assert await first.receive() == "m11"
    assert (first.position, second.position) == (StreamPosition(11, "e1"), StreamPosition(12, "e1"))


async def test_wait_resubscribed_raises_when_the_subscription_ends(parts: Parts) -> None:
    parts.link.open()
    channel = parts.table.subscribe("hist/e", SubscribeOptions(recover=True), 100, Overflow.ERROR)

    async def kick_out_while_waiting() -> None:
        await anyio.wait_all_tasks_blocked()
        parts.table.on_kick_out({"channel": "hist/e", "message": "out"})

    async with anyio.create_task_group() as tg:
        tg.start_soon(kick_out_while_waiting)
        with pytest.raises(KickedOutError):
            await channel.wait_resubscribed(timeout=5)


async def test_a_publication_without_position_stops_recovery(parts: Parts) -> None:
    parts.link.open()
    channel = parts.table.subscribe("hist/f", SubscribeOptions(recover=True), 100, Overflow.ERROR)
    parts.confirm(1, data={"offset": 3, "epoch": "e1"})
    await channel.wait_subscribed(timeout=5)
    parts.table.on_publish({"channel": "hist/f", "data": "min-bin dropped my offset"})
    assert await channel.receive() == "min-bin dropped my offset" and channel.position is None
    parts.reconnect()
    assert parts.sent() == [{"event": "#subscribe", "data": {"channel": "hist/f"}, "cid": 2}]
