"""The blocking facade (event loop in a thread), on both loop backends, against real servers."""

from __future__ import annotations

from typing import Any

import pytest

from hubbub.client import (
    AuthState,
    ChannelState,
    ClientState,
    Connected,
    HandshakeError,
    RemoteError,
    connect_blocking,
)


@pytest.fixture(params=["trio", "asyncio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_blocking_calls(server: Any, servers: Any, backend: str) -> None:
    with connect_blocking(server.url, codec=servers.codec, backend=backend) as client:
        assert client.state is ClientState.OPEN
        assert client.id
        assert client.invoke("echo", {"x": [1]}) == {"x": [1]}
        with pytest.raises(RemoteError) as caught:
            client.invoke("fail")
        assert caught.value.fields == {"code": "E_FAIL"}
        with pytest.raises(TimeoutError):
            client.invoke("never", timeout=0.2)
    assert client.state is ClientState.CLOSED
    client.close()  # idempotent


def test_blocking_channel(server: Any, servers: Any, backend: str) -> None:
    with connect_blocking(server.url, codec=servers.codec, backend=backend) as client:
        with client.subscribe("room") as channel:
            channel.wait_subscribed(timeout=5)
            assert channel.state is ChannelState.SUBSCRIBED
            client.publish("room", 1)
            client.publish("room", 2, ack=False)
            assert channel.receive(timeout=5) == 1
            assert next(channel) == 2
            with pytest.raises(TimeoutError):
                channel.receive(timeout=0.1)
        assert channel.state is ChannelState.UNSUBSCRIBED
        with pytest.raises(StopIteration):
            next(channel)


def test_blocking_handlers_and_streams(server: Any, servers: Any, backend: str) -> None:
    with connect_blocking(server.url, codec=servers.codec, backend=backend) as client:
        client.set_procedure("clientProc", lambda data: {"sync": data["question"]})
        assert client.invoke("serverInvoke") == {"clientAnswered": {"sync": "ping?"}}
        with client.listen("greetBack") as stream:
            client.transmit("greet", "blocking")
            assert stream.receive(timeout=5) == {"hello": "blocking"}
        with client.events() as events:
            client.invoke("login", {"username": "sync"})
            client.wait_authenticated(timeout=5)
            assert client.auth_state is AuthState.AUTHENTICATED
            assert client.auth_claims["username"] == "sync"
            client.deauthenticate()
            assert client.auth_state is AuthState.UNAUTHENTICATED
            assert next(events) is not None


def test_blocking_connect_error(server: Any, servers: Any, backend: str) -> None:
    with pytest.raises(HandshakeError):
        connect_blocking(server.url + "?reject=1", codec=servers.codec, backend=backend)


def test_blocking_events_see_reconnect(server: Any, servers: Any, fast_reconnect: Any) -> None:
    with connect_blocking(server.url, codec=servers.codec, reconnect=fast_reconnect) as client:
        with client.events() as events:
            client.invoke("dropMe")
            assert any(isinstance(event, Connected) for event in _take_until_connected(events))
        assert client.invoke("echo", "back") == "back"


def _take_until_connected(events: Any) -> list[Any]:
    seen = []
    while True:
        event = events.receive(timeout=10)
        seen.append(event)
        if isinstance(event, Connected):
            return seen
