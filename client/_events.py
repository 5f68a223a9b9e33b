"""Client events (connection, auth and subscription changes) and the hub that fans them out to listeners."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from hubbub.protocol import SCError

from ._auth import AuthState
from ._buffer import MessageBuffer, Overflow

__all__ = [
    "AuthStateChanged",
    "ClientEvent",
    "ConnectFailed",
    "Connected",
    "Disconnected",
    "EventHub",
    "KickedOut",
    "Reconnecting",
    "Resubscribed",
    "TokenChanged",
]


@dataclass(frozen=True, slots=True)
class Connected:
    """A handshake succeeded: ``id`` is the server's socket id; ``auth_error`` is set for a refused token."""

    id: str
    ping_timeout: float
    is_authenticated: bool
    auth_error: SCError | None


@dataclass(frozen=True, slots=True)
class Disconnected:
    """An open connection closed with ``code`` (and ``reason``)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ConnectFailed:
    """A connection attempt failed (``error`` is a ConnectError or HandshakeError)."""

    error: Exception


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The client will try again after ``delay`` seconds (``attempt`` counts from 0)."""

    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class AuthStateChanged:
    """The auth state changed; ``token``/``payload`` are the new token and its claims (None when out)."""

    old_state: AuthState
    new_state: AuthState
    token: str | None
    payload: Any


@dataclass(frozen=True, slots=True)
class TokenChanged:
    """A new token was set (``#setAuthToken`` or ``authenticate``), or it was removed (``token`` None)."""

    token: str | None
    payload: Any


@dataclass(frozen=True, slots=True)
class KickedOut:
    """The server kicked the client out of ``channel``."""

    channel: str
    message: Any


@dataclass(frozen=True, slots=True)
class Resubscribed:
    """The server answered a resubscribe of ``channel`` (after a reconnect, or a first subscribe with
    ``since``): ``recovered`` is True when every missed publication follows; else ``reason`` says why
    not (``"epoch changed"``, ``"too many missed"``, ... see ``Channel.recovery_reason``)."""

    channel: str
    recovered: bool
    reason: str | None


ClientEvent = (
    Connected
    | Disconnected
    | ConnectFailed
    | Reconnecting
    | AuthStateChanged
    | TokenChanged
    | KickedOut
    | Resubscribed
)


class EventHub:
    """Delivers each event to every open listener; a listener's buffer drops its oldest event when full."""

    def __init__(self) -> None:
        self._listeners: set[MessageBuffer[ClientEvent]] = set()

    def emit(self, event: ClientEvent) -> None:
        """Hand ``event`` to every listener (never blocks)."""
        for buffer in self._listeners:
            buffer.put(event)

    def close(self) -> None:
        """End every listener's iteration (after it drains)."""
        for buffer in self._listeners:
            buffer.close()

    @asynccontextmanager
    async def listen(self, max_size: int = 256) -> AsyncIterator[AsyncIterator[ClientEvent]]:
        """An iterator of the events emitted while the context is open."""
        buffer: MessageBuffer[ClientEvent] = MessageBuffer(max_size, Overflow.DROP_OLDEST)
        self._listeners.add(buffer)
        try:
            yield _Listener(buffer)
        finally:
            self._listeners.discard(buffer)


class _Listener:
    """Async iterator over one listener's buffer."""

    def __init__(self, buffer: MessageBuffer[ClientEvent]) -> None:
        self._buffer = buffer

    def __aiter__(self) -> _Listener:
        return self

    async def __anext__(self) -> ClientEvent:
        return await self._buffer.get()
