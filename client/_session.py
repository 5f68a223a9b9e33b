"""One connection: open the WebSocket, run the ``#handshake``, then queue and write packets in order.

A :class:`Session` lives from a successful handshake until its WebSocket closes; the client opens
a new one on every reconnect. Sending is synchronous (:meth:`Session.send` encodes and queues), so
packets leave in the order they were queued; :meth:`Session.write_loop` drains the queue.
"""

from __future__ import annotations

import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from hubbub.protocol import (
    Connection,
    Heartbeat,
    Packet,
    Response,
    Role,
    SCError,
    client_invoke_packet,
    get_codec,
    hydrate_error,
)

from ._buffer import Notifier
from ._errors import ConnectError, HandshakeError
from ._websocket import TransportClosed, UpgradeFailed, WebSocket, open_websocket

__all__ = ["HandshakeReply", "PacketSink", "Session", "SessionLink", "open_session"]


@dataclass(frozen=True, slots=True)
class HandshakeReply:
    """The server's answer to ``#handshake``; ``ping_timeout`` in seconds."""

    id: str
    ping_timeout: float
    is_authenticated: bool
    auth_error: SCError | None
    token: str | None


class Session:
    """An open, handshaken connection."""

    def __init__(
        self, ws: WebSocket, conn: Connection, reply: HandshakeReply, leftovers: list[Packet]
    ) -> None:
        self.ws = ws
        self.conn = conn
        self.reply = reply
        self.leftovers = leftovers
        self.ping_scope: anyio.CancelScope | None = None
        self._outbox: deque[str | bytes] = deque()
        self._notifier = Notifier()

    @property
    def backlog(self) -> int:
        """Messages queued and not yet written."""
        return len(self._outbox)

    def on_ping(self) -> None:
        """A ping arrived: answer it and move the ping deadline."""
        if self.ping_scope is not None:
            self.ping_scope.deadline = anyio.current_time() + self.reply.ping_timeout
        self.send_message(self.conn.pong_message)

    def send(self, packet: Any) -> None:
        """Encode ``packet`` and queue it behind everything queued before."""
        self.send_message(self.conn.encode(packet))

    def send_message(self, message: str | bytes) -> None:
        """Queue an already-encoded message (heartbeats)."""
        self._outbox.append(message)
        self._notifier.notify()

    async def wait_backlog_below(self, limit: int) -> None:
        """Wait until fewer than ``limit`` messages are queued."""
        await self._notifier.wait_for(lambda: len(self._outbox) < limit)

    async def write_loop(self) -> None:
        """Write queued messages until the WebSocket fails (then abort it, so the reader sees it)."""
        try:
            while True:
                await self._notifier.wait_for(lambda: bool(self._outbox))
                await self.ws.send(self._outbox.popleft())
                self._notifier.notify()
        except TransportClosed:
            await self.ws.abort()


class PacketSink(Protocol):
    """Where packets to the server go (a :class:`Session`)."""

    def send(self, packet: Any) -> None:
        """Encode ``packet`` and queue it."""
        ...


class SessionLink(Protocol):
    """The client's current connection, as the parts that send on it see it."""

    @property
    def session(self) -> Session | None:
        """The open session, or None while connecting (or closed)."""
        ...

    async def wait_session(self) -> Session:
        """The open session, once there is one; raises ``ConnectionClosedError`` when closed for good."""
        ...


#: Close codes a server sends when it cannot read the client's #handshake: most often the codecs differ.
_CODEC_MISMATCH = frozenset({4009, 1003, 1007})
_CODEC_HINT = (
    "; the server likely uses another codec than this client's {!r} (json or minbin: they must match)"
)


async def _open_ws(
    url: str, timeout: float, max_size: int | None, ssl_context: ssl.SSLContext | None
) -> WebSocket:
    try:
        with anyio.fail_after(timeout):
            return await open_websocket(url, max_size=max_size, ssl_context=ssl_context)
    except TimeoutError:
        raise ConnectError(f"timed out connecting to {url} after {timeout:g} s", code=4007) from None
    except UpgradeFailed as exc:
        raise ConnectError(str(exc), status=exc.status) from None
    except OSError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
        raise ConnectError(f"cannot connect to {url}: {cause.strerror or cause}") from None


async def _await_reply(ws: WebSocket, conn: Connection, cid: int) -> tuple[Response, list[Packet]]:
    """Read until the handshake response; pings before it are ignored (answering them would break
    the server's strict-handshake rule), other packets are kept for later."""
    leftovers: list[Packet] = []
    while True:
        for item in conn.receive(await ws.receive()):
            if isinstance(item, Response) and item.rid == cid:
                return item, leftovers
            if not isinstance(item, Heartbeat):
                leftovers.append(item)


async def _drain_until_closed(ws: WebSocket, timeout: float) -> tuple[int, str] | None:
    """Read (and discard) until the peer closes; the close code, or None after ``timeout``."""
    with anyio.move_on_after(timeout):
        try:
            while True:
                await ws.receive()
        except TransportClosed as exc:
            return exc.code, exc.reason
    return None


def _reply(response: Response, token: str | None) -> HandshakeReply:
    data = response.data if isinstance(response.data, dict) else {}
    ping_timeout = data.get("pingTimeout")
    return HandshakeReply(
        id=str(data.get("id", "")),
        ping_timeout=(ping_timeout / 1000) if isinstance(ping_timeout, int | float) else 20.0,
        is_authenticated=bool(data.get("isAuthenticated")),
        auth_error=hydrate_error(data.get("authError")),
        token=token,
    )


async def _rejected(ws: WebSocket, error: SCError, close_timeout: float) -> HandshakeError:
    status = error.fields.get("statusCode")
    code = status if isinstance(status, int) else 4003
    closed = await _drain_until_closed(ws, close_timeout)
    if closed is not None:
        code = closed[0]
    return HandshakeError(error, code=code)


async def open_session(
    url: str,
    *,
    codec: str,
    protocol_version: int,
    token: str | None,
    cid: int,
    connect_timeout: float,
    ack_timeout: float,
    close_timeout: float,
    max_size: int | None = 2**24,
    ssl_context: ssl.SSLContext | None = None,
) -> Session:
    """Open a connection and complete the SocketCluster handshake with ``token`` and call id ``cid``.

    Raises :class:`ConnectError` (refused, HTTP error status, timeout, closed early) or
    :class:`HandshakeError` (the server answered ``#handshake`` with an error).
    """
    ws = await _open_ws(url, connect_timeout, max_size, ssl_context)
    try:
        return await _handshake(ws, codec, protocol_version, token, cid, ack_timeout, close_timeout)
    except BaseException:
        await ws.abort()
        raise


async def _handshake(
    ws: WebSocket,
    codec: str,
    protocol_version: int,
    token: str | None,
    cid: int,
    ack_timeout: float,
    close_timeout: float,
) -> Session:
    conn = Connection(Role.CLIENT, get_codec(codec), protocol_version)
    try:
        await ws.send(conn.encode(client_invoke_packet("#handshake", {"authToken": token}, cid)))
        with anyio.fail_after(ack_timeout):
            response, leftovers = await _await_reply(ws, conn, cid)
    except TimeoutError:
        await ws.close(4003, "handshake timed out", timeout=0)
        raise ConnectError(f"no #handshake response within {ack_timeout:g} s", code=4003) from None
    except TransportClosed as exc:
        detail = f": {exc.reason}" if exc.reason else ""
        hint = _CODEC_HINT.format(codec) if exc.code in _CODEC_MISMATCH else ""
        raise ConnectError(
            f"connection closed during the handshake (code {exc.code}{detail}){hint}", code=exc.code
        ) from None
    error = hydrate_error(response.error)
    if error is not None:
        raise await _rejected(ws, error, close_timeout)
    conn.handshake_complete()
    return Session(ws, conn, _reply(response, token), leftovers)
