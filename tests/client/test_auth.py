"""Auth tokens against the official server and hubbub: handshake, setAuthToken, reconnect, refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from hubbub.client import (
    AuthState,
    AuthStateChanged,
    ChannelState,
    Connected,
    Disconnected,
    FileTokenStore,
    RemoteError,
    TokenChanged,
    connect,
)

pytestmark = pytest.mark.anyio


async def _login(url: str, codec: str, username: str = "alice") -> str:
    async with connect(url, codec=codec) as client:
        assert await client.invoke("login", {"username": username}) == "logged-in"
        await client.wait_authenticated(timeout=5)
        assert client.auth_token is not None
        return client.auth_token


async def test_set_auth_token_is_stored_and_decoded(server: Any, servers: Any, next_event: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client, client.events() as events:
        await client.invoke("login", {"username": "alice"})
        change = await next_event(events, AuthStateChanged)
        assert change.old_state is AuthState.UNAUTHENTICATED
        assert change.new_state is AuthState.AUTHENTICATED
        assert change.payload["username"] == "alice"
        assert client.auth_state is AuthState.AUTHENTICATED
        assert client.auth_claims["username"] == "alice"
        assert {"iat", "exp"} <= set(client.auth_claims)
        assert client.token_store.load() == client.auth_token
        assert (await client.invoke("whoami"))["username"] == "alice"


async def test_set_auth_token_as_rpc(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        assert await client.invoke("loginAck", {"username": "bob"}) == "logged-in-ack"
        assert client.auth_state is AuthState.AUTHENTICATED
        assert client.auth_claims["username"] == "bob"
        assert await client.invoke("logoutAck") == "logged-out-ack"
        assert client.auth_state is AuthState.UNAUTHENTICATED
        assert client.token_store.load() is None


async def test_handshake_with_valid_token(server: Any, servers: Any) -> None:
    token = await _login(server.url, servers.codec)
    async with connect(server.url, codec=servers.codec, auth_token=token) as client:
        assert client.auth_state is AuthState.AUTHENTICATED
        assert client.auth_token == token
        assert client.auth_error is None
        assert (await client.invoke("whoami"))["username"] == "alice"


async def test_bad_token_gives_visible_auth_error(server: Any, servers: Any, next_event: Any) -> None:
    async with connect(server.url, codec=servers.codec, auth_token="not-a-jwt") as client:
        async with client.events() as events:
            assert client.auth_state is AuthState.UNAUTHENTICATED
            assert client.auth_error is not None
            assert client.auth_error.name == "AuthTokenInvalidError"
            assert client.auth_error.fields.get("isBadToken") is True
            if client.token_store.load() is not None:  # #removeAuthToken follows the handshake reply
                removed = await next_event(events, TokenChanged)
                assert removed.token is None
        assert client.token_store.load() is None
        assert await client.invoke("whoami") is None


async def test_token_set_then_reconnect_authenticated(
    server: Any, servers: Any, fast_reconnect: Any, next_event: Any
) -> None:
    async with connect(server.url, codec=servers.codec, reconnect=fast_reconnect) as client:
        async with client.events() as events:
            await client.invoke("login", {"username": "carol"})
            await client.wait_authenticated(timeout=5)
            private = client.subscribe("private", wait_for_auth=True)
            await private.wait_subscribed(timeout=5)
            first_id = client.id
            await client.invoke("dropMe")  # the server closes with 4100 just after answering
            dropped = await next_event(events, Disconnected)
            assert dropped.code == 4100
            connected = await next_event(events, Connected)
        assert connected.is_authenticated
        assert client.id != first_id
        assert client.auth_state is AuthState.AUTHENTICATED
        assert (await client.invoke("whoami"))["username"] == "carol"
        await private.wait_subscribed(timeout=5)


async def test_wait_for_auth_subscription(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        channel = client.subscribe("private", wait_for_auth=True, data={"reason": "test"})
        async with client.listen("greetBack") as stream:
            await client.transmit("greet", "sync")  # a round trip: the subscribe would have been answered
            with anyio.fail_after(5):
                await stream.__anext__()
        assert channel.state is ChannelState.PENDING
        await client.invoke("login", {"username": "dave"})
        await channel.wait_subscribed(timeout=5)
        await client.publish("private", "secret")
        with anyio.fail_after(5):
            assert await channel.receive() == "secret"


async def test_authenticate_and_deauthenticate(server: Any, servers: Any) -> None:
    token = await _login(server.url, servers.codec, "erin")
    async with connect(server.url, codec=servers.codec) as client:
        await client.authenticate(token)
        assert client.auth_state is AuthState.AUTHENTICATED
        assert (await client.invoke("whoami"))["username"] == "erin"
        await client.deauthenticate()
        assert client.auth_state is AuthState.UNAUTHENTICATED
        assert client.token_store.load() is None
        assert await client.invoke("whoami") is None
        with pytest.raises(RemoteError) as caught:
            await client.authenticate("garbage")
        assert caught.value.name == "AuthTokenInvalidError"
        assert client.auth_state is AuthState.UNAUTHENTICATED


async def test_server_deauthenticates(server: Any, servers: Any, next_event: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client, client.events() as events:
        await client.invoke("login", {"username": "frank"})
        await client.wait_authenticated(timeout=5)
        assert await client.invoke("logoutServer") == "logged-out"
        change = await next_event(
            events, AuthStateChanged, timeout=5
        )  # authenticated first, then unauthenticated
        if change.new_state is AuthState.AUTHENTICATED:
            change = await next_event(events, AuthStateChanged, timeout=5)
        assert change.new_state is AuthState.UNAUTHENTICATED
        assert client.token_store.load() is None


async def test_file_token_store_survives_clients(server: Any, servers: Any, tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "token")
    async with connect(server.url, codec=servers.codec, token_store=store) as client:
        await client.invoke("login", {"username": "gina"})
        await client.wait_authenticated(timeout=5)
    assert store.load() is not None
    async with connect(
        server.url, codec=servers.codec, token_store=FileTokenStore(tmp_path / "token")
    ) as again:
        assert again.auth_state is AuthState.AUTHENTICATED
        assert (await again.invoke("whoami"))["username"] == "gina"
