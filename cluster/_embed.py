"""Run a worker inside an existing trio or asyncio program (a FastAPI app's lifespan, a script)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from hubbub.broker import Broker

from ._app import App
from ._config import ServerConfig
from ._loop import current
from ._runner import listening_url, open_broker_url
from ._server import Server
from ._transport.listen import bind_listener

__all__ = ["serve"]


@asynccontextmanager
async def serve(
    app: App,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    broker: str | Broker = "memory://",
    broker_prefix: str = "hubbub:",
    config: ServerConfig | None = None,
    drain_timeout: float | None = None,
) -> AsyncIterator[str]:
    """Serve ``app`` on ``host:port`` in the running trio or asyncio program; yields the ``ws://`` URL.

    The worker runs on the caller's event loop (so the app's procedures may await its libraries),
    and ``app.publish`` works from the caller's code, e.g. an HTTP route, while the block runs.
    ``broker`` is a broker URL (``memory://``, ``redis://...``; opened and closed here) or a
    :class:`~hubbub.broker.Broker` the caller opened. ``config`` gives the other settings
    (its ``host``, ``port`` and ``loop`` are replaced). On leaving the block the worker stops
    accepting, closes every socket with 4011 and waits for them up to ``drain_timeout`` seconds
    (default: ``close_timeout + 1``).
    """
    settings = dataclasses.replace(config or ServerConfig(), host=host, port=port)
    async with embedded(app, settings, broker, broker_prefix, drain_timeout) as (_, url):
        yield url


@asynccontextmanager
async def embedded(
    app: App,
    config: ServerConfig,
    broker: str | Broker = "memory://",
    broker_prefix: str = "hubbub:",
    drain_timeout: float | None = None,
    *,
    listen: bool = True,
) -> AsyncIterator[tuple[Server, str]]:
    """The worker of :func:`serve` and its URL, for ``hubbub.testing``, which needs both.

    ``config.loop`` is replaced by the running loop. An exception that is the only one of the
    worker's task group (the block's own, a startup hook's) comes out as itself, not in a group.
    Without ``listen`` the worker has no listener (an ASGI server brings its connections) and
    the URL is empty.
    """
    settings = dataclasses.replace(config, loop=current().name)
    listener = bind_listener(settings.host, settings.port) if listen else None
    try:
        async with open_broker_url(broker, broker_prefix) as opened, anyio.create_task_group() as tasks:
            server = Server(app, settings, opened)
            await tasks.start(server.serve, listener)
            try:
                yield server, listening_url(listener, settings.path) if listener is not None else ""
            finally:
                with anyio.CancelScope(shield=True):
                    await server.shutdown(timeout=drain_timeout)
                tasks.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        only = _only(group)
        if only is not None:
            raise only from None
        raise
    finally:
        if listener is not None:
            listener.close()


def _only(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception in ``group`` (through nested groups of one), else None."""
    while len(group.exceptions) == 1:
        inner = group.exceptions[0]
        if not isinstance(inner, BaseExceptionGroup):
            return inner
        group = inner
    return None
