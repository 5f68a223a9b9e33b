"""Channel recovery end to end: a hubbub server with channel history, a client whose connection is cut.

The connection goes through a relay (``relay.py``) that the test cuts and holds down while another
client publishes, so what the first client misses is known exactly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

import hubbub.broker
import hubbub.cluster
from hubbub.client import (
    Channel,
    Client,
    Disconnected,
    Publication,
    Resubscribed,
    StreamPosition,
    connect,
    connect_blocking,
)

from .relay import Relay, open_relay

#: The worker keeps channel history (issue 12's server side) and so does its default broker (memory).
SERVER_HAS_HISTORY = hasattr(hubbub.cluster.App, "history") and hasattr(
    hubbub.broker.MemoryBroker, "publish_history"
)

pytestmark = pytest.mark.skipif(not SERVER_HAS_HISTORY, reason="the server keeps no channel history yet")

CONFIG = """
[[channels]]
match = "hist/*"
history_size = 100
history_ttl = 60
"""


@pytest.fixture
def history_server(start_server: Any, tmp_path: Path) -> Callable[..., Any]:
    """``history_server(codec="json")``: a worker whose ``hist/*`` channels keep 100 publications."""
    config = tmp_path / "hubbub.toml"
    config.write_text(CONFIG, encoding="utf-8")
    return lambda codec="json": start_server("--config", str(config), codec=codec)


async def receive(channel: Channel, count: int) -> list[Publication]:
    with anyio.fail_after(10):
        return [await channel.receive_publication() for _ in range(count)]


async def subscribed_with_three(
    client: Client, writer: Client, name: str, *, recover: bool = True
) -> Channel:
    """A subscription of ``client`` to ``name`` that got publications 0, 1, 2 (offsets 1, 2, 3)."""
    channel = client.subscribe(name, recover=recover)
    await channel.wait_subscribed(timeout=5)
    assert channel.position is not None and channel.position.offset == 0
    for i in range(3):
        await writer.publish(name, i)
    got = await receive(channel, 3)
    assert [(p.data, p.offset) for p in got] == [(0, 1), (1, 2), (2, 3)]
    assert channel.position == got[-1].position == StreamPosition(3, got[-1].epoch or "")
    return channel


@dataclass
class Rig:
    """A client connected through a relay, its event stream, and a writer connected directly."""

    relay: Relay
    client: Client
    writer: Client
    events: Any
    next_event: Any

    async def cut(self) -> None:
        """Cut the client's connection and keep it down until ``relay.resume()``."""
        self.relay.cut()
        await self.next_event(self.events, Disconnected)

    async def resubscribed(self) -> Resubscribed:
        event: Resubscribed = await self.next_event(self.events, Resubscribed)
        return event


@pytest.fixture
def open_rig(next_event: Any, fast_reconnect: Any) -> Callable[..., AbstractAsyncContextManager[Rig]]:
    """``async with open_rig(server, codec="json") as rig:``."""

    @asynccontextmanager
    async def open_(server: Any, codec: str = "json") -> AsyncIterator[Rig]:
        async with (
            open_relay(server.port) as relay,
            connect(relay.url, codec=codec, reconnect=fast_reconnect) as client,
            connect(server.url, codec=codec) as writer,
            client.events() as events,
        ):
            yield Rig(relay, client, writer, events, next_event)

    return open_


@pytest.mark.anyio
@pytest.mark.parametrize("codec", ["json", "minbin"])
async def test_missed_publications_arrive_in_order_once(
    history_server: Any, open_rig: Any, codec: str
) -> None:
    async with open_rig(history_server(codec), codec) as rig:
        channel = await subscribed_with_three(rig.client, rig.writer, "hist/a")
        assert channel.recovered is None
        epoch = channel.position.epoch  # type: ignore[union-attr]
        await rig.cut()
        for i in range(3, 53):
            await rig.writer.publish("hist/a", i)
        rig.relay.resume()
        assert await rig.resubscribed() == Resubscribed("hist/a", True, None)
        got = await receive(channel, 50)
        assert [(p.data, p.offset, p.epoch) for p in got] == [(i, i + 1, epoch) for i in range(3, 53)]
        await rig.writer.publish("hist/a", "live")
        assert await receive(channel, 1) == [Publication("live", 54, epoch)]  # nothing twice before it
        assert (channel.recovered, channel.recovery_reason) == (True, None)
        assert channel.position == StreamPosition(54, epoch)


@pytest.mark.anyio
async def test_a_lost_history_is_not_recovered_epoch_changed(history_server: Any, open_rig: Any) -> None:
    first = history_server()
    async with open_rig(first) as rig:
        channel = await subscribed_with_three(rig.client, rig.writer, "hist/b")
        old_epoch = channel.position.epoch  # type: ignore[union-attr]
        await rig.cut()
        await anyio.to_thread.run_sync(first.stop)  # the memory broker's history goes with it
        second = await anyio.to_thread.run_sync(history_server)
        async with connect(second.url) as writer:
            for i in range(2):
                await writer.publish("hist/b", f"missed {i}")
            rig.relay.resume(second.port)
            assert await rig.resubscribed() == Resubscribed("hist/b", False, "epoch changed")
            assert (channel.recovered, channel.recovery_reason) == (False, "epoch changed")
            await writer.publish("hist/b", "live")
            [live] = await receive(channel, 1)
    assert (live.data, live.offset) == ("live", 3)  # offset 3 again, in another epoch: not a duplicate
    assert live.epoch != old_epoch and channel.position == live.position


@pytest.mark.anyio
async def test_more_missed_than_the_history_holds_is_not_recovered(
    history_server: Any, open_rig: Any
) -> None:
    async with open_rig(history_server()) as rig:
        channel = await subscribed_with_three(rig.client, rig.writer, "hist/c")
        epoch = channel.position.epoch  # type: ignore[union-attr]
        await rig.cut()
        for i in range(3, 153):  # offsets 4..153; the history keeps 54..153
            await rig.writer.publish("hist/c", i)
        rig.relay.resume()
        assert await rig.resubscribed() == Resubscribed("hist/c", False, "too many missed")
        await rig.writer.publish("hist/c", "live")
        assert await receive(channel, 1) == [Publication("live", 154, epoch)]  # none of the missed


@pytest.mark.anyio
async def test_without_recover_nothing_missed_is_sent(history_server: Any, open_rig: Any) -> None:
    async with open_rig(history_server()) as rig:
        channel = await subscribed_with_three(rig.client, rig.writer, "hist/d", recover=False)
        await rig.cut()
        await rig.writer.publish("hist/d", "missed")
        rig.relay.resume()
        assert await rig.resubscribed() == Resubscribed("hist/d", False, "recovery not requested")
        await rig.writer.publish("hist/d", "live")
        assert [p.data for p in await receive(channel, 1)] == ["live"]


@pytest.mark.anyio
async def test_since_recovers_what_a_previous_client_left(history_server: Any) -> None:
    server = history_server()
    async with connect(server.url) as first, connect(server.url) as writer:
        channel = await subscribed_with_three(first, writer, "hist/e")
        stored = channel.position
        await channel.unsubscribe()
        for i in range(3, 6):
            await writer.publish("hist/e", i)
    async with connect(server.url) as second:
        channel = second.subscribe("hist/e", recover=True, since=stored)
        assert [(p.data, p.offset) for p in await receive(channel, 3)] == [(3, 4), (4, 5), (5, 6)]
        assert channel.recovered is True


def test_the_blocking_client_recovers(history_server: Any, fast_reconnect: Any) -> None:
    server = history_server()
    with (
        connect_blocking(server.url, reconnect=fast_reconnect) as client,
        client.subscribe("hist/f", recover=True) as channel,
        client.events() as events,
    ):
        channel.wait_subscribed(timeout=5)
        client.publish("hist/f", "first")
        publication = channel.receive_publication(timeout=5)
        assert (publication.data, publication.offset) == ("first", 1)
        assert channel.position == publication.position and channel.recovered is None
        client.invoke("dropMe")  # the server closes the connection (4100); the client comes back
        resubscribed = next(event for event in events if isinstance(event, Resubscribed))
        assert resubscribed == Resubscribed("hist/f", True, None)
        assert (channel.recovered, channel.recovery_reason) == (True, None)
        client.publish("hist/f", "second")
        assert channel.receive(timeout=5) == "second"
