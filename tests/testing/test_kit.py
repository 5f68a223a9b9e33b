"""hubbub.testing on trio and on asyncio: serve an app, connect, invoke, receive, publish from the server."""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest

from hubbub.client import RemoteError
from hubbub.cluster import App, Request, ServerSocket
from hubbub.testing import AppServer, NothingReceived, serve_app, serve_app_in_thread

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_app(journal: list[str]) -> App:
    app = App()

    @app.on_startup
    async def started() -> None:
        journal.append("startup")

    @app.on_shutdown
    async def stopped() -> None:
        journal.append("shutdown")

    @app.on_connection
    async def greet(socket: ServerSocket) -> None:
        socket.transmit("greeting", {"id": socket.id})
        socket.transmit("notice", 1)

    @app.procedure("echo")
    async def echo(request: Request) -> Any:
        return request.data

    @app.receiver("shout")
    async def shout(socket: ServerSocket, data: Any) -> None:
        socket.transmit("shouted", str(data).upper())

    return app


async def test_an_app_answers_and_sends_in_process(anyio_backend: str) -> None:
    journal: list[str] = []
    async with serve_app(make_app(journal)) as server:
        assert journal == ["startup"]
        assert not server.in_thread  # the worker runs in the test's own loop
        assert server.url.startswith("ws://127.0.0.1:")
        async with server.connect() as client:
            assert await client.invoke("echo", {"a": [1, 2]}) == {"a": [1, 2]}
            # Taken by event, each once; the other event stays for later.
            assert await client.receive("notice") == 1
            greeting = await client.receive("greeting")
            assert greeting == {"id": client.id}
            await client.transmit("shout", "hey")
            assert await client.receive() == ("shouted", "HEY")
            assert [event for event, _ in client.received] == ["greeting", "notice", "shouted"]
            with pytest.raises(NothingReceived, match="received so far"):
                await client.receive("never", timeout=0.05)
            with pytest.raises(RemoteError):
                await client.invoke("missing")
    assert journal == ["startup", "shutdown"]


async def test_server_side_publish_reaches_a_subscriber(anyio_backend: str) -> None:
    async with serve_app(App()) as server, server.connect() as client, client.subscribe("room") as channel:
        await channel.wait_subscribed(timeout=5)
        await server.publish("room", {"text": "from the server"})
        with anyio.fail_after(5):
            assert await channel.__anext__() == {"text": "from the server"}


async def test_settings_reach_the_worker(anyio_backend: str) -> None:
    async with serve_app(App(), allow_client_publish=False, codec="minbin") as server:
        assert server.server.config.codec == "minbin"
        async with server.connect() as client:  # the client takes the worker's codec
            with pytest.raises(RemoteError):
                await client.publish("room", 1)


async def test_a_failing_startup_hook_fails_serve_app(anyio_backend: str) -> None:
    app = App()

    @app.on_startup
    async def boom() -> None:
        raise RuntimeError("no database")

    with pytest.raises(RuntimeError, match="no database"):
        async with serve_app(app):
            pytest.fail("entered the block")


def make_asyncio_app() -> App:
    """An app whose procedure needs asyncio itself (as asyncpg or redis.asyncio would)."""
    import asyncio

    app = App()

    @app.procedure("queued")
    async def queued(request: Request) -> Any:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        asyncio.get_running_loop().call_soon(queue.put_nowait, request.data)
        return await asyncio.wait_for(queue.get(), 5)

    return app


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_asyncio_app_runs_in_an_asyncio_test(anyio_backend: str) -> None:
    async with serve_app(make_asyncio_app()) as server, server.connect() as client:
        assert await client.invoke("queued", [1]) == [1]


def test_serve_app_in_thread_runs_the_loop_it_is_given() -> None:
    with serve_app_in_thread(make_asyncio_app(), loop="asyncio") as server:
        assert server.server.config.loop == "asyncio"

        async def check() -> None:
            async with server.connect() as client:
                assert await client.invoke("queued", "x") == "x"

        anyio.run(check)


def test_serve_app_in_thread_from_synchronous_code() -> None:
    journal: list[str] = []
    with serve_app_in_thread(make_app(journal)) as server:
        assert isinstance(server, AppServer) and server.in_thread
        assert threading.active_count() >= 2

        async def check() -> None:
            async with server.connect() as client:
                assert await client.invoke("echo", 5) == 5

        anyio.run(check)
    assert journal == ["startup", "shutdown"]
