"""The app-facing handle of one client connection: :class:`ServerSocket`."""

from __future__ import annotations

import base64
import os
from itertools import count
from typing import TYPE_CHECKING, Any, Protocol

from hubbub.protocol import CloseCode

if TYPE_CHECKING:
    from ._transport.http import HttpRequest
    from ._transport.state import SocketState

__all__ = ["ServerSocket", "SocketControl", "make_socket_id"]

_ids = count()
_random_pool = memoryview(b"")


def make_socket_id() -> str:
    """20 URL-safe characters: 12 random bytes and a 3-byte per-process sequence (as base64id).

    The random bytes come from a pool drawn from ``os.urandom`` 4 KiB at a time, as base64id does.
    """
    global _random_pool
    if len(_random_pool) < 12:
        _random_pool = memoryview(os.urandom(4092))
    raw = _random_pool[:12].tobytes() + (next(_ids) & 0xFFFFFF).to_bytes(3, "big")
    _random_pool = _random_pool[12:]
    return base64.urlsafe_b64encode(raw).decode("ascii")


class _Link(Protocol):
    state: SocketState
    close_code: int | None
    close_reason: str

    def disconnect(self, code: int = CloseCode.NORMAL, reason: str = "") -> None: ...


class SocketControl(Protocol):
    """What a :class:`ServerSocket` acts through: the session of its connection."""

    id: str
    request: HttpRequest
    auth_token: dict[str, Any] | None
    signed_auth_token: str | None

    @property
    def link(self) -> _Link: ...

    @property
    def channels(self) -> frozenset[str]: ...

    def transmit(self, event: str, data: Any = None) -> None: ...

    async def invoke(self, event: str, data: Any = None, *, timeout: float | None = None) -> Any: ...

    def set_token(self, token: dict[str, Any] | None, signed: str | None) -> None: ...

    def sign_token(self, claims: dict[str, Any], expires_in: float | None) -> tuple[str, dict[str, Any]]: ...

    def kick_out(self, channel: str | None, message: str | None) -> None: ...

    def start_batch(self) -> None: ...

    def flush_batch(self) -> None: ...


class ServerSocket:
    """A connected SocketCluster client, as application code sees it."""

    __slots__ = ("_session",)

    def __init__(self, session: SocketControl) -> None:
        self._session = session

    def __repr__(self) -> str:
        return f"<ServerSocket {self.id} {self.state.value}>"

    @property
    def id(self) -> str:
        """The socket id the client got in its handshake."""
        return self._session.id

    @property
    def request(self) -> HttpRequest:
        """The HTTP request that opened the connection."""
        return self._session.request

    @property
    def state(self) -> SocketState:
        return self._session.link.state

    @property
    def auth_token(self) -> dict[str, Any] | None:
        """The verified token payload while authenticated, else None."""
        return self._session.auth_token

    @property
    def signed_auth_token(self) -> str | None:
        return self._session.signed_auth_token

    @property
    def is_authenticated(self) -> bool:
        return self._session.auth_token is not None

    @property
    def channels(self) -> frozenset[str]:
        """The channels this socket is subscribed to."""
        return self._session.channels

    @property
    def close_code(self) -> int | None:
        """The code the connection closed (or is closing) with, if known."""
        return self._session.link.close_code

    @property
    def close_reason(self) -> str:
        return self._session.link.close_reason

    def transmit(self, event: str, data: Any = None) -> None:
        """Send an event to the client; no reply is expected."""
        self._session.transmit(event, data)

    async def invoke(self, event: str, data: Any = None, *, timeout: float | None = None) -> Any:
        """Call ``event`` on the client and return its answer.

        Raises :class:`TimeoutError` after ``timeout`` (default: the server's ``ack_timeout``),
        the client's error as :class:`SCError`, or ``SCError(name="BadConnectionError")`` if the
        socket closes first.
        """
        return await self._session.invoke(event, data, timeout=timeout)

    def start_batch(self) -> None:
        """Collect packets instead of sending them, until :meth:`flush_batch`."""
        self._session.start_batch()

    def flush_batch(self) -> None:
        """Send the collected packets as one array frame."""
        self._session.flush_batch()

    async def set_auth_token(
        self,
        claims: dict[str, Any],
        *,
        expires_in: float | None = None,
        reject_on_failed_delivery: bool = False,
    ) -> str:
        """Sign ``claims``, authenticate this socket and push ``#setAuthToken`` to the client.

        With ``reject_on_failed_delivery`` the push is an invoke and this waits for the client's
        acknowledgement. Returns the signed token.
        """
        token, payload = self._session.sign_token(claims, expires_in)
        self._session.set_token(payload, token)
        if reject_on_failed_delivery:
            await self.invoke("#setAuthToken", {"token": token})
        else:
            self.transmit("#setAuthToken", {"token": token})
        return token

    async def deauthenticate(self, *, reject_on_failed_delivery: bool = False) -> None:
        """Drop this socket's token and tell the client to remove its copy."""
        self._session.set_token(None, None)
        if reject_on_failed_delivery:
            await self.invoke("#removeAuthToken")
        else:
            self.transmit("#removeAuthToken")

    def kick_out(self, channel: str | None = None, message: str | None = None) -> None:
        """Unsubscribe from ``channel`` (all channels if None) and tell the client with ``#kickOut``."""
        self._session.kick_out(channel, message)

    def disconnect(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close the connection with ``code``; the client sees it in its close event."""
        self._session.link.disconnect(code, reason)
