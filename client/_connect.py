"""``connect()``: the async context manager that runs a :class:`Client` for the length of a block."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ._client import Client
from ._options import ClientOptions

__all__ = ["connect"]


@asynccontextmanager
async def connect(url: str, options: ClientOptions | None = None, **overrides: Any) -> AsyncIterator[Client]:
    """Connect to a SocketCluster (or hubbub) server; the client lives until the block ends.

    ``url`` is ``ws://host:port/path`` (``wss://`` for TLS); with no path, ``/socketcluster/`` is used.
    The options are a :class:`ClientOptions`, its fields as keywords, or both (keywords win;
    an unknown keyword raises ``TypeError``, an invalid value ``ValueError``)::

        async with connect(url, codec="minbin", ack_timeout=5) as client: ...

    Times are in seconds. ``codec`` is ``"json"`` or ``"minbin"`` (it must match the server's).
    ``auth_token`` is saved in ``token_store`` (memory by default; see :class:`FileTokenStore`) and
    sent on every handshake. With ``wait_connected`` (default) entering the block waits for the
    first handshake and raises :class:`ConnectError`/:class:`HandshakeError` if it fails; otherwise
    the client connects in the background. After a disconnect the client reconnects as
    socketcluster-client does (``reconnect``: :class:`ReconnectOptions`; ``auto_reconnect=False``
    turns it off). ``channel_buffer``/``overflow`` are the default per-channel buffer size and
    overflow policy. ``procedures``/``receivers`` install handlers before the first handshake.
    """
    client = Client(url, options, **overrides)
    try:
        async with anyio.create_task_group() as tg:
            await client._start(tg)
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
