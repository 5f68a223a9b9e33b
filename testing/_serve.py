"""``serve_app``: one worker for an app, in this process, on the memory broker, for a test's length.

On trio the worker runs in the test's own event loop. On asyncio (or any other anyio backend) it
runs in a thread with its own trio loop, since the worker is a trio program: the test talks to it
over the loopback like any client, and :meth:`AppServer.run` carries app calls to that loop.
"""

from __future__ import annotations

import socket as stdsocket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import Any

import anyio
import trio

from hubbub.broker import MemoryBroker
from hubbub.client import ClientOptions, connect
from hubbub.cluster import App, Server, ServerConfig, bind_listener

from ._client import AppClient

__all__ = ["AppServer", "serve_app", "serve_app_in_thread"]


class AppServer:
    """A running app: its ``url``, ``connect()`` for clients, and ``publish``/``run`` on its side."""

    def __init__(self, app: App, url: str, server: Server, token: trio.lowlevel.TrioToken | None) -> None:
        #: The app being served.
        self.app = app
        #: ``ws://127.0.0.1:PORT/socketcluster/``: give it to any client.
        self.url = url
        #: The worker itself (its ``connection_count``, ``stats``, ``config``).
        self.server = server
        self._token = token  # set when the worker runs in a thread with its own trio loop

    @property
    def in_thread(self) -> bool:
        """True when the worker runs in a thread of its own (the test is not on trio)."""
        return self._token is not None

    @asynccontextmanager
    async def connect(
        self, options: ClientOptions | None = None, **overrides: Any
    ) -> AsyncIterator[AppClient]:
        """A connected :class:`AppClient` for the block (options as for :func:`hubbub.client.connect`)."""
        overrides.setdefault("codec", self.server.config.codec)
        async with connect(self.url, options, **overrides) as client, AppClient.recording(client) as recorded:
            yield recorded

    async def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Await ``fn(*args)`` in the worker's event loop and return its result (app code, hooks)."""
        token = self._token
        if token is None:
            return await fn(*args)
        return await anyio.to_thread.run_sync(lambda: trio.from_thread.run(fn, *args, trio_token=token))

    async def publish(self, channel: str, data: Any) -> None:
        """Publish from the server side, as ``await app.publish(channel, data)`` in the app would."""
        await self.run(self.app.publish, channel, data)


@asynccontextmanager
async def serve_app(
    app: App, config: ServerConfig | None = None, **settings: Any
) -> AsyncIterator[AppServer]:
    """Serve ``app`` on ``127.0.0.1`` (a free port) with the memory broker for the block.

    ``config`` or keyword settings (``ServerConfig`` fields: ``auth_key``, ``codec``,
    ``allow_client_publish``...) configure the worker. The app's startup hooks run before the
    block is entered; leaving it closes every socket (code 4011) and runs the shutdown hooks::

        async with serve_app(app) as server, server.connect() as client:
            assert await client.invoke("echo", 1) == 1

    On trio the worker shares the test's loop; on asyncio it runs in a thread with a trio loop
    of its own (:attr:`AppServer.in_thread`).
    """
    config = _config(config, settings)
    if _on_trio():
        async with _serve_here(app, config) as served:
            yield served
        return
    with serve_app_in_thread(app, config) as threaded:
        yield threaded


def _on_trio() -> bool:
    try:
        trio.lowlevel.current_trio_token()
    except RuntimeError:
        return False
    return True


def _config(config: ServerConfig | None, settings: dict[str, Any]) -> ServerConfig:
    base = config if config is not None else ServerConfig()
    return replace(base, host="127.0.0.1", port=0, **settings)


@asynccontextmanager
async def _serve_here(
    app: App, config: ServerConfig, token: trio.lowlevel.TrioToken | None = None
) -> AsyncIterator[AppServer]:
    listener = bind_listener(config.host, config.port)
    try:
        server = Server(app, config, MemoryBroker())
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, listener)
            try:
                yield AppServer(app, _url(listener, config.path), server, token)
            finally:
                with trio.CancelScope(shield=True):
                    await server.shutdown()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:  # the test's own error, or the startup hook's: not wrapped
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        listener.close()


@contextmanager
def serve_app_in_thread(app: App, config: ServerConfig | None = None, **settings: Any) -> Iterator[AppServer]:
    """:func:`serve_app` from synchronous code: the worker runs in a thread with its own trio loop."""
    config = _config(config, settings)
    ready: list[AppServer] = []
    failed: list[BaseException] = []
    started, stop = threading.Event(), threading.Event()
    stop_now: list[Callable[[], None]] = []

    async def main() -> None:
        token = trio.lowlevel.current_trio_token()
        stopping = trio.Event()
        stop_now.append(lambda: token.run_sync_soon(stopping.set))
        async with _serve_here(app, config, token) as served:
            ready.append(served)
            started.set()
            await stopping.wait()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as error:  # the startup hooks or the bind failed: re-raised below
            failed.append(error)
        finally:
            started.set()
            stop.set()

    thread = threading.Thread(target=run, name="hubbub-test-worker", daemon=True)
    thread.start()
    started.wait()
    if not ready:
        thread.join()
        raise failed[0]
    try:
        yield ready[0]
    finally:
        stop_now[0]()
        thread.join()
        if failed:
            raise failed[0]


def _url(listener: stdsocket.socket, path: str) -> str:
    host, port = listener.getsockname()[:2]
    return f"ws://{host}:{port}{path}"
