"""``connect()``: the async context manager that runs a :class:`Client` for the length of a block."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import anyio

from ._auth import TokenStore
from ._backoff import ReconnectOptions
from ._buffer import Overflow
from ._client import Client
from ._handlers import Handler

__all__ = ["connect"]


@asynccontextmanager
async def connect(
    url: str,
    *,
    codec: str = "json",
    ack_timeout: float = 10.0,
    connect_timeout: float = 20.0,
    auth_token: str | None = None,
    token_store: TokenStore | None = None,
    auto_reconnect: bool = True,
    reconnect: ReconnectOptions | None = None,
    wait_connected: bool = True,
    protocol_version: int = 2,
    channel_buffer: int = 1000,
    overflow: Overflow = Overflow.DROP_OLDEST,
    close_timeout: float = 2.0,
    max_message_size: int | None = 2**24,
    ssl_context: ssl.SSLContext | None = None,
    procedures: Mapping[str, Handler] | None = None,
    receivers: Mapping[str, Handler] | None = None,
) -> AsyncIterator[Client]:
    """Connect to a SocketCluster (or hubbub) server; the client lives until the block ends.

    ``url`` is ``ws://host:port/path`` (``wss://`` for TLS); with no path, ``/socketcluster/`` is used.
    Times are in seconds. ``codec`` is ``"json"`` or ``"minbin"`` (it must match the server's).
    ``auth_token`` is saved in ``token_store`` (memory by default; see :class:`FileTokenStore`) and
    sent on every handshake. With ``wait_connected`` (default) entering the block waits for the
    first handshake and raises :class:`ConnectError`/:class:`HandshakeError` if it fails; otherwise
    the client connects in the background. After a disconnect the client reconnects as
    socketcluster-client does (``reconnect``: :class:`ReconnectOptions`; ``auto_reconnect=False``
    turns it off). ``channel_buffer``/``overflow`` are the default per-channel buffer size and
    overflow policy. ``procedures``/``receivers`` install handlers before the first handshake.
    """
    client = Client(
        url,
        codec=codec,
        ack_timeout=ack_timeout,
        connect_timeout=connect_timeout,
        auth_token=auth_token,
        token_store=token_store,
        auto_reconnect=auto_reconnect,
        reconnect=reconnect,
        protocol_version=protocol_version,
        channel_buffer=channel_buffer,
        overflow=overflow,
        close_timeout=close_timeout,
        max_message_size=max_message_size,
        ssl_context=ssl_context,
        procedures=procedures,
        receivers=receivers,
    )
    try:
        async with anyio.create_task_group() as tg:
            await client._start(tg, wait_connected)
            try:
                yield client
            finally:
                with anyio.CancelScope(shield=True):
                    await client.aclose()
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
