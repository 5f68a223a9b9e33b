"""A TCP relay between a client and a server, so a test can cut the client's connection and keep it down.

::

    async with open_relay(server.port) as relay:
        async with connect(relay.url) as client:
            relay.cut()       # every relayed connection drops; new ones are closed at once
            ...               # the client retries meanwhile (ConnectFailed)
            relay.resume()    # optionally to another server: relay.resume(other.port)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc

_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, OSError)


class Relay:
    """Relays each accepted connection to ``127.0.0.1:target_port`` until cut."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._open = True
        self._scopes: set[anyio.CancelScope] = set()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socketcluster/"

    def cut(self) -> None:
        """Drop every relayed connection and close new ones at once, until :meth:`resume`."""
        self._open = False
        for scope in self._scopes:
            scope.cancel()

    def resume(self, target_port: int | None = None) -> None:
        """Relay new connections again (to ``target_port`` if given)."""
        if target_port is not None:
            self.target_port = target_port
        self._open = True

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            if not self._open:
                return
            try:
                server = await anyio.connect_tcp("127.0.0.1", self.target_port)
            except OSError:
                return
            async with server:
                with anyio.CancelScope() as scope:
                    self._scopes.add(scope)
                    try:
                        async with anyio.create_task_group() as tg:
                            tg.start_soon(_pipe, client, server, scope)
                            tg.start_soon(_pipe, server, client, scope)
                    finally:
                        self._scopes.discard(scope)


async def _pipe(
    source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream, scope: anyio.CancelScope
) -> None:
    try:
        async for chunk in source:
            await sink.send(chunk)
    except _GONE:
        pass
    scope.cancel()


@asynccontextmanager
async def open_relay(target_port: int) -> AsyncIterator[Relay]:
    """A running :class:`Relay` on a free loopback port."""
    relay = Relay(target_port)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as tg:
        relay.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.start_soon(listener.serve, relay.handle)
        try:
            yield relay
        finally:
            tg.cancel_scope.cancel()
