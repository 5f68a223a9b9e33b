"""What a session needs of its connection, whichever transport carries it.

A connection on the worker's own listener is a :class:`~.connection.WsConnection`; one that an
ASGI server holds (a path of a FastAPI app) is an :class:`~.asgi.AsgiLink`. Sessions, the hub,
the timers and the app's socket handle see only this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from hubbub.protocol import CloseCode, Liveness

from .rate import TokenBucket
from .state import SocketState

__all__ = ["NO_SINK", "Link", "LinkState", "MessageSink"]


class MessageSink(Protocol):
    """Where a connection's complete messages go (one client's session)."""

    def publish_inline(self, payload: bytes) -> bool:
        """Serve a text message without awaiting if it can (the fast path); False to pass it on."""
        ...

    async def on_message(self, message: str | bytes) -> None:
        """Process one message; raises :class:`ProtocolViolation` to close the connection."""
        ...


class _NoSink:
    def publish_inline(self, payload: bytes) -> bool:
        return True

    async def on_message(self, message: str | bytes) -> None:
        pass


#: The sink of a connection before its session attaches and after it ends.
NO_SINK = _NoSink()


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


class LinkState:
    """What every link keeps, whatever transport carries it.

    Its state, close code and reason, when it opened and when a closing one is dropped, its pong
    timer, its message bucket, its sink and the hold a congested publish puts on its reading.
    """

    __slots__ = (
        "_bucket",
        "_hold",
        "_liveness",
        "close_code",
        "close_deadline",
        "close_reason",
        "opened_at",
        "sink",
        "state",
    )

    def __init__(self, now: float, ping_timeout: float, message_rate: float, message_burst: int) -> None:
        self.sink: MessageSink = NO_SINK
        #: Set by the session after a publish that must wait for congested subscribers: reading
        #: pauses until it returns False (see :mod:`.flow`).
        self._hold: Callable[[], bool] | None = None
        self.state = SocketState.CONNECTING
        self.opened_at = now
        self._liveness = Liveness(ping_timeout, now)
        self._bucket = TokenBucket.for_limits(message_rate, message_burst, now)
        #: When a ``CLOSING`` connection is dropped if the peer has not closed by then.
        self.close_deadline = 0.0
        self.close_code: int | None = None
        self.close_reason = ""

    def ping_expired(self, now: float) -> bool:
        """True when the peer has sent nothing for longer than the ping timeout."""
        return self._liveness.expired(now)

    def hold_reading(self, holds: Callable[[], bool]) -> None:
        """Read nothing more while ``holds()`` is True (checked after the current read is processed)."""
        self._hold = holds

    def open(self) -> None:
        """The SocketCluster handshake completed (unless the connection was closed meanwhile)."""
        if self.state is SocketState.CONNECTING:
            self.state = SocketState.OPEN

    def _still_open(self) -> bool:
        return self.state is SocketState.OPEN or self.state is SocketState.CONNECTING
