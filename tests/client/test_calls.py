"""Handshake, invoke, transmit and server-initiated calls against the official server and hubbub."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from hubbub.client import AckTimeoutError, AuthState, ClientState, RemoteError, connect

pytestmark = pytest.mark.anyio


async def test_handshake_without_token(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        assert client.state is ClientState.OPEN
        assert isinstance(client.id, str) and client.id
        assert client.auth_state is AuthState.UNAUTHENTICATED
        assert client.auth_error is None
        assert client.auth_token is None
    assert client.state is ClientState.CLOSED


async def test_invoke_returns_result(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        data = {"a": 1, "nested": [1, "two", None, True], "text": "héllo"}
        assert await client.invoke("echo", data) == data
        assert await client.invoke("echo", "plain") == "plain"


async def test_invoke_error_carries_name_message_fields(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        with pytest.raises(RemoteError) as caught:
            await client.invoke("fail")
        assert caught.value.name == "MyCustomError"
        assert caught.value.message == "Procedure fail always fails"
        assert caught.value.fields == {"code": "E_FAIL"}
        with pytest.raises(RemoteError) as plain:
            await client.invoke("failPlain")
        assert plain.value.message == "plain Error object"
        # the connection is still usable after errors
        assert await client.invoke("echo", 5) == 5


async def test_invoke_timeout(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        with anyio.fail_after(5):
            with pytest.raises(AckTimeoutError, match="Event response for never event timed out"):
                await client.invoke("never", timeout=0.3)
        assert client.statistics().pending_calls == 0
        assert await client.invoke("echo", "after") == "after"


async def test_default_ack_timeout_applies(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec, ack_timeout=0.3) as client:
        with anyio.fail_after(5), pytest.raises(TimeoutError):
            await client.invoke("never")


async def test_transmit_both_ways(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client, client.listen("greetBack") as stream:
        await client.transmit("greet", "world")
        with anyio.fail_after(5):
            assert await stream.__anext__() == {"hello": "world"}


async def test_receiver_handler(server: Any, servers: Any) -> None:
    got = anyio.Event()
    seen: list[Any] = []

    def on_greet_back(data: Any) -> None:
        seen.append(data)
        got.set()

    async with connect(server.url, codec=servers.codec, receivers={"greetBack": on_greet_back}) as client:
        await client.transmit("greet", 42)
        with anyio.fail_after(5):
            await got.wait()
    assert seen == [{"hello": 42}]


async def test_server_initiated_invoke(server: Any, servers: Any) -> None:
    async def client_proc(data: Any) -> Any:
        await anyio.lowlevel.checkpoint()
        return {"answer": "pong", "asked": data}

    async with connect(server.url, codec=servers.codec) as client:
        client.set_procedure("clientProc", client_proc)
        result = await client.invoke("serverInvoke")
        assert result == {"clientAnswered": {"answer": "pong", "asked": {"question": "ping?"}}}


async def test_calls_from_many_tasks(server: Any, servers: Any) -> None:
    async with connect(server.url, codec=servers.codec) as client:
        results: dict[int, Any] = {}

        async def call(i: int) -> None:
            results[i] = await client.invoke("echo", i)

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(call, i)
        assert results == {i: i for i in range(50)}
