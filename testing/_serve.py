"""``serve_app``: one worker for an app, in this process, on the memory broker, for a test's length.

The worker runs in the test's own event loop, trio or asyncio, so the app's procedures may await
that loop's libraries. From synchronous code, ``serve_app_in_thread`` runs it in a thread with a
loop of its own (the ``loop`` setting: trio by default); the test talks to it over the loopback
like any client, and :meth:`AppServer.run` carries app calls to that loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from hubbub.client import ClientOptions, connect
from hubbub.cluster import App, Server, ServerConfig
from hubbub.cluster._embed import embedded

from ._client import AppClient

__all__ = ["AppServer", "serve_app", "serve_app_in_thread"]


class AppServer:
    """A running app: its ``url``, ``connect()`` for clients, and ``publish``/``run`` on its side."""

    def __init__(self, app: App, url: str, server: Server, portal: BlockingPortal | None = None) -> None:
        #: The app being served.
        self.app = app
        #: ``ws://127.0.0.1:PORT/socketcluster/``: give it to any client.
        self.url = url
        #: The worker itself (its ``connection_count``, ``stats``, ``config``).
        self.server = server
        self._portal = portal  # set when the worker runs in a thread with a loop of its own

    @property
    def in_thread(self) -> bool:
        """True when the worker runs in a thread of its own (``serve_app_in_thread``)."""
        return self._portal is not None

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
        portal = self._portal
        if portal is None:
            return await fn(*args)
        return await anyio.to_thread.run_sync(portal.call, fn, *args)

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

    The worker runs in the test's own loop, trio or asyncio.
    """
    async with embedded(app, _config(config, settings)) as (server, url):
        yield AppServer(app, url, server)


def _config(config: ServerConfig | None, settings: dict[str, Any]) -> ServerConfig:
    base = config if config is not None else ServerConfig()
    return replace(base, host="127.0.0.1", port=0, **settings)


@contextmanager
def serve_app_in_thread(app: App, config: ServerConfig | None = None, **settings: Any) -> Iterator[AppServer]:
    """:func:`serve_app` from synchronous code: the worker runs in a thread with a loop of its own.

    That loop is the ``loop`` setting's: trio unless ``loop="asyncio"`` is given.
    """
    config = _config(config, settings)
    with start_blocking_portal(config.loop) as portal:

        @asynccontextmanager
        async def served() -> AsyncIterator[AppServer]:
            async with embedded(app, config) as (server, url):
                yield AppServer(app, url, server, portal)

        with portal.wrap_async_context_manager(served()) as server:
            yield server
