"""The subscription table in-process: when #subscribe goes out, confirmation, delivery, endings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import anyio.abc
import pytest

from hubbub.client import Channel, ChannelOverflowError, ChannelState, KickedOutError, Overflow, RemoteError
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

    def sent(self) -> list[object]:
        assert self.link.session is not None
        return self.link.session.packets

    def confirm(self, cid: int, error: object = None) -> None:
        self.calls.resolve(Response(rid=cid, error=error))


@pytest.fixture
async def parts() -> AsyncIterator[Parts]:
    link, authenticated = Link(), [False]
    calls = CallTable(link, ack_timeout=10, url="ws://test/")  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg:
        table = Subscriptions(
            link,  # type: ignore[arg-type]
            calls,
            Notifier(),
            spawn=tg.start_soon,
            is_authenticated=lambda: authenticated[0],
            events=EventHub(),
        )
        yield Parts(link, calls, table, authenticated)
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
