"""Subscribe, publish, unsubscribe and kickOut against the official server and hubbub."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from hubbub.client import (
    ChannelOverflowError,
    ChannelState,
    KickedOut,
    KickedOutError,
    Overflow,
    RemoteError,
    connect,
)

pytestmark = pytest.mark.anyio


async def test_subscribe_publish_receive(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        async with client.subscribe("room") as channel:
            assert channel.state is ChannelState.PENDING
            await channel.wait_subscribed(timeout=5)
            assert channel.state is ChannelState.SUBSCRIBED
            await client.publish("room", {"text": "acked"})
            await client.publish("room", "fire-and-forget", ack=False)
            with anyio.fail_after(5):
                assert await channel.receive() == {"text": "acked"}
                assert await channel.receive() == "fire-and-forget"
        assert channel.state is ChannelState.UNSUBSCRIBED
        assert client.channel_names() == []


async def test_messages_from_another_client_in_order(server: Any, servers: Any) -> None:
    async with (
        connect(server.url, codec=servers.codec) as reader,
        connect(server.url, codec=servers.codec) as writer,
        reader.subscribe("room") as channel,
    ):
        await channel.wait_subscribed(timeout=5)
        for i in range(20):
            await writer.publish("room", i, ack=i % 2 == 0)
        received = []
        with anyio.fail_after(5):
            async for message in channel:
                received.append(message)
                if len(received) == 20:
                    break
        assert received == list(range(20))


async def test_server_side_publish_reaches_channel(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client, client.subscribe("room") as channel:
        await channel.wait_subscribed(timeout=5)
        await client.invoke("serverPublish")
        with anyio.fail_after(5):
            first, second = await channel.receive(), await channel.receive()
        assert {first["via"], second["via"]} == {"transmitPublish", "invokePublish"}


async def test_two_handles_share_one_subscription(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        one = client.subscribe("room")
        two = client.subscribe("room")
        await one.wait_subscribed(timeout=5)
        await two.wait_subscribed(timeout=5)
        await client.publish("room", "both")
        with anyio.fail_after(5):
            assert await one.receive() == "both"
            assert await two.receive() == "both"
        await one.unsubscribe()
        assert one.state is ChannelState.UNSUBSCRIBED
        assert two.state is ChannelState.SUBSCRIBED
        await client.publish("room", "only two")
        with anyio.fail_after(5):
            assert await two.receive() == "only two"
        await two.unsubscribe()


async def test_unsubscribe_stops_delivery_on_the_server(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        room = client.subscribe("room")
        sentinel = client.subscribe("sentinel")
        await room.wait_subscribed(timeout=5)
        await sentinel.wait_subscribed(timeout=5)
        await room.unsubscribe()
        with pytest.raises(StopAsyncIteration):
            await room.receive()
        await client.publish("room", "nobody listens")
        await client.publish("sentinel", "marker")
        with anyio.fail_after(5):
            assert await sentinel.receive() == "marker"
        # the server no longer sent "room" messages: none reached the client at all
        assert client.statistics().ignored_publications == 0
        await sentinel.unsubscribe()


async def test_subscribe_refused_by_middleware(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        channel = client.subscribe("forbidden")
        with pytest.raises(RemoteError) as caught:
            await channel.wait_subscribed(timeout=5)
        assert caught.value.name == "SubscribeForbiddenError"
        assert channel.state is ChannelState.UNSUBSCRIBED
        with pytest.raises(RemoteError):
            await channel.receive()


async def test_publish_refused_by_middleware(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        with pytest.raises(RemoteError) as caught:
            await client.publish("readonly", "x")
        assert caught.value.name == "PublishForbiddenError"
        assert caught.value.message == "Channel readonly is read-only"


async def test_kick_out_ends_the_iterator(server: Any, servers: Any, next_event: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client, client.events() as events:
        async with client.subscribe("room") as channel:
            await channel.wait_subscribed(timeout=5)
            await client.invoke("kickMe", {"channel": "room"})
            with anyio.fail_after(5), pytest.raises(KickedOutError) as caught:
                async for _ in channel:
                    pass
            assert caught.value.channel == "room"
            assert caught.value.message == "you have been kicked"
            assert channel.state is ChannelState.UNSUBSCRIBED
            assert client.channel_names() == []
        event = await next_event(events, KickedOut)
        assert event.channel == "room"
        # subscribing again works after a kick
        async with client.subscribe("room") as again:
            await again.wait_subscribed(timeout=5)


@pytest.mark.parametrize(
    ("overflow", "expected", "ending"),
    [
        (Overflow.DROP_OLDEST, [3, 4], None),
        (Overflow.DROP_NEWEST, [0, 1], None),
        (Overflow.ERROR, [0, 1], ChannelOverflowError),
    ],
)
async def test_channel_overflow_policy(
    server: Any, servers: Any, overflow: Overflow, expected: list[int], ending: type[Exception] | None
) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        small = client.subscribe("room", max_size=2, overflow=overflow)
        sentinel = client.subscribe("sentinel")
        await small.wait_subscribed(timeout=5)
        await sentinel.wait_subscribed(timeout=5)
        for i in range(5):
            await client.publish("room", i)
        await client.publish("sentinel", "done")
        with anyio.fail_after(5):
            assert await sentinel.receive() == "done"  # deliveries are in order: all of room's arrived
        assert small.dropped == 3 if overflow is not Overflow.ERROR else small.dropped >= 1
        assert [await small.receive() for _ in expected] == expected
        if ending is None:
            assert small.state is ChannelState.SUBSCRIBED
            await small.unsubscribe()
        else:
            assert small.state is ChannelState.UNSUBSCRIBED
            with pytest.raises(ending):
                await small.receive()
            assert "room" not in client.channel_names()
