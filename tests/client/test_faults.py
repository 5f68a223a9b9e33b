"""Real faults: a server killed and restarted, a server that stops answering, handshakes refused."""

from __future__ import annotations

import os
import signal
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread
import pytest

from hubbub.client import (
    AckTimeoutError,
    ChannelState,
    ClientState,
    Connected,
    ConnectError,
    ConnectFailed,
    ConnectionClosedError,
    Disconnected,
    HandshakeError,
    Reconnecting,
    ReconnectOptions,
    connect,
)

pytestmark = pytest.mark.anyio


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _events_until_connected(events: Any, timeout: float) -> tuple[list[Any], float]:
    """Collect events up to the next Connected; return them and when Connected arrived."""
    seen: list[Any] = []
    with anyio.fail_after(timeout):
        async for event in events:
            seen.append(event)
            if isinstance(event, Connected):
                return seen, anyio.current_time()
    raise AssertionError("event stream ended")


@pytest.mark.slow
async def test_kill_and_restart_reconnects_and_resubscribes(servers: Any, next_event: Any) -> None:
    options = ReconnectOptions(initial_delay=0.3, randomness=0.2, multiplier=1.5, max_delay=1.2)
    port = _free_port()
    first = servers.start(port=port)
    async with (
        connect(first.url, codec=servers.codec, reconnect=options, connect_timeout=2) as client,
        client.events() as events,
    ):
        channels = [client.subscribe(name, priority=i) for i, name in enumerate(["a", "b", "c"])]
        for channel in channels:
            await channel.wait_subscribed(timeout=5)

        first.proc.kill()
        await anyio.to_thread.run_sync(first.proc.wait)
        dropped = await next_event(events, Disconnected)
        down_at = anyio.current_time()
        assert dropped.code == 1006
        assert client.state is ClientState.CONNECTING
        assert all(channel.state is ChannelState.PENDING for channel in channels)

        await servers.start_async(port=port)
        seen, up_at = await _events_until_connected(events, timeout=30)

        delays = [event.delay for event in seen if isinstance(event, Reconnecting)]
        for attempt, delay in enumerate(delays):
            low, high = options.bounds(attempt)
            assert low <= delay <= high, (attempt, delay)
        assert delays, "the client reconnected without backing off"
        # it waited its backoff, and did not linger after the server came back
        assert up_at - down_at >= options.bounds(0)[0]
        assert up_at - down_at <= sum(delays) + 2.0 * len(delays) + 1.0

        for channel in channels:
            await channel.wait_subscribed(timeout=5)
        async with connect(first.url, codec=servers.codec) as publisher:
            for channel in channels:
                await publisher.publish(channel.name, f"after restart to {channel.name}")
        with anyio.fail_after(5):
            for channel in channels:
                assert await channel.receive() == f"after restart to {channel.name}"


@pytest.mark.slow
async def test_server_that_stops_pinging_is_detected(
    servers: Any, stopped_processes: list[int], fast_reconnect: Any, next_event: Any
) -> None:
    server = servers.start(ping_interval=0.2, ping_timeout=1.0)
    async with (
        connect(
            server.url, codec=servers.codec, reconnect=fast_reconnect, connect_timeout=1.0, close_timeout=0.5
        ) as client,
        client.events() as events,
    ):
        channel = client.subscribe("room")
        await channel.wait_subscribed(timeout=5)
        os.kill(server.proc.pid, signal.SIGSTOP)
        stopped_processes.append(server.proc.pid)
        stopped_at = anyio.current_time()
        dropped = await next_event(events, Disconnected, timeout=10)
        assert dropped.code == 4000
        assert anyio.current_time() - stopped_at < 1.0 + 0.5 + 1.0  # ping timeout + close timeout + slack
        os.kill(server.proc.pid, signal.SIGCONT)
        await next_event(events, Connected, timeout=15)
        await channel.wait_subscribed(timeout=5)
        assert await client.invoke("echo", "alive") == "alive"


async def test_handshake_rejected_raises_clearly(server: Any, servers: Any) -> None:
    with anyio.fail_after(10), pytest.raises(HandshakeError) as caught:
        async with connect(server.url + "?reject=1", codec=servers.codec):
            pytest.fail("connected despite the rejection")
    assert caught.value.code == 4008
    assert caught.value.error.name == "RejectedError"
    assert "SC handshake rejected by test middleware" in str(caught.value)


async def test_handshake_rejected_with_custom_status(server: Any, servers: Any) -> None:
    with anyio.fail_after(10), pytest.raises(HandshakeError) as caught:
        async with connect(server.url + "?reject=1&status=4555", codec=servers.codec):
            pass
    assert caught.value.code == 4555


async def test_http_upgrade_denied_raises_clearly(server: Any, servers: Any) -> None:
    with anyio.fail_after(10), pytest.raises(ConnectError) as caught:
        async with connect(server.url + "?deny=1", codec=servers.codec):
            pass
    assert caught.value.status == 401
    assert "401" in str(caught.value)
    assert "WS handshake denied by test middleware" in str(caught.value)


async def test_background_client_keeps_trying_without_hanging_calls(
    server: Any, servers: Any, fast_reconnect: Any, next_event: Any
) -> None:
    async with connect(
        server.url + "?reject=1", codec=servers.codec, wait_connected=False, reconnect=fast_reconnect
    ) as client:
        async with client.events() as events:
            failed = await next_event(events, ConnectFailed)
            assert isinstance(failed.error, HandshakeError)
            await next_event(events, Reconnecting)
        with anyio.fail_after(5), pytest.raises(AckTimeoutError):
            await client.invoke("echo", 1, timeout=0.3)
        assert client.state is ClientState.CONNECTING


async def test_permanent_close_code_stops_reconnecting(
    server: Any, servers: Any, fast_reconnect: Any
) -> None:
    url = server.url + "?reject=1&status=4555"
    async with connect(url, codec=servers.codec, wait_connected=False, reconnect=fast_reconnect) as client:
        with anyio.fail_after(10), pytest.raises(ConnectionClosedError):
            await client.wait_connected()
        assert client.state is ClientState.CLOSED
        with pytest.raises(ConnectionClosedError):
            await client.invoke("echo", 1)
        assert isinstance(client.last_error, HandshakeError)


async def test_connection_refused() -> None:
    with anyio.fail_after(10), pytest.raises(ConnectError) as caught:
        async with connect(f"ws://127.0.0.1:{_free_port()}/socketcluster/"):
            pass
    assert caught.value.code == 1006


async def test_connect_timeout_on_a_silent_server() -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        accepted: list[anyio.abc.SocketStream] = []

        async def hold(stream: anyio.abc.SocketStream) -> None:
            accepted.append(stream)  # accept, then say nothing
            await anyio.sleep_forever()

        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, hold)
            with anyio.fail_after(10), pytest.raises(ConnectError) as caught:
                async with connect(f"ws://127.0.0.1:{port}/socketcluster/", connect_timeout=0.5):
                    pass
            assert caught.value.code == 4007
            tg.cancel_scope.cancel()


@pytest.mark.slow
@pytest.mark.parametrize("version", [1, 2])
async def test_heartbeat_keeps_the_connection_alive(servers: Any, version: int, next_event: Any) -> None:
    server = servers.start(ping_interval=0.2, ping_timeout=0.8, protocol_version=version)
    async with connect(server.url, codec=servers.codec, protocol_version=version) as client:
        async with client.events() as events:
            with anyio.move_on_after(2.0) as waited:  # more than twice the ping timeout of either side
                dropped = await next_event(events, Disconnected, timeout=10)
                pytest.fail(f"the connection dropped: {dropped}")
            assert waited.cancelled_caught
        assert await client.invoke("echo", version) == version
        assert client.statistics().connections == 1
