"""What a session needs of its connection, whichever transport carries it.

A connection on the worker's own listener is a :class:`~.connection.WsConnection`; one that an
ASGI server holds (a path of a FastAPI app) is an :class:`~.asgi.AsgiLink`. Sessions, the hub,
the timers and the app's socket handle see only this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from hubbub.protocol import CloseCode

from .connection import MessageSink
from .state import SocketState

__all__ = ["Link"]


class Link(Protocol):
    """One client's connection as its session sees it."""

    state: SocketState
    close_code: int | None
    close_reason: str
    #: When the connection opened (the loop's clock), and when a closing one is dropped.
    opened_at: float
    close_deadline: float

    def attach(self, sink: MessageSink) -> None:
        """Give complete messages to ``sink`` (the session)."""
        ...

    def hold_reading(self, holds: Callable[[], bool]) -> None:
        """Read nothing more while ``holds()`` is True (checked after the current message)."""
        ...

    def open(self) -> None:
        """The SocketCluster handshake completed."""
        ...

    def send_frame(self, frame: bytes) -> None:
        """Send a framed message (shared by many connections) while connecting or open."""
        ...

    def send_own_frame(self, frame: bytes) -> None:
        """:meth:`send_frame` for a frame only this connection sends."""
        ...

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in a task that is cancelled when the connection ends."""
        ...

    def disconnect(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the close handshake with ``code``."""
        ...

    def abort(self) -> None:
        """Drop the connection now, without a close handshake."""
        ...

    def release(self) -> None:
        """The connection ended: drop what is queued and the reference to the session."""
        ...

    def ping_expired(self, now: float) -> bool:
        """True when the peer has sent nothing for longer than the ping timeout."""
        ...
