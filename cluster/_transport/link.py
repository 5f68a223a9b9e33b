"""What a session needs of its connection, whichever transport carries it.

A connection on the worker's own listener is a :class:`~.connection.WsConnection`; one that an
ASGI server holds (a path of a FastAPI app) is an :class:`~.asgi.AsgiLink`. Sessions, the hub,
the timers and the app's socket handle see only this.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hubbub.protocol import CloseCode, Liveness

from .._loop import TRIO, Loop
from .._stats import ServerStats
from .flow import FlowControl
from .outbound import WriteBatch
from .rate import TokenBucket
from .state import SocketState
from .timers import Timers

__all__ = ["NO_SINK", "ConnectionParts", "Link", "LinkState", "MessageSink"]

log = logging.getLogger("hubbub.server")


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


@dataclass(eq=False, slots=True)
class ConnectionParts:
    """What the connections of one worker share."""

    max_payload: int
    outbound_limit: int
    ping_timeout: float
    close_timeout: float
    write_batch: WriteBatch
    timers: Timers
    stats: ServerStats
    #: Runs ``fn(*args)`` in the worker's nursery (an exception is logged, never fatal).
    spawn: Callable[..., None]
    #: A buffer for reads: every read is processed before the next one.
    recv_view: memoryview
    #: The worker's flow control (None: a socket overflows at ``outbound_limit``, no push-back).
    flow: FlowControl | None = None
    #: Messages per second a client may send on average (0: no limit), and in one burst.
    message_rate: float = 0.0
    message_burst: int = 0
    #: The worker's event loop primitives.
    loop: Loop = TRIO


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
        "_parts",
        "_tasks",
        "close_code",
        "close_deadline",
        "close_reason",
        "opened_at",
        "sink",
        "state",
    )

    def __init__(self, parts: ConnectionParts) -> None:
        self._parts = parts
        self._tasks: set[Any] | None = None  # the cancel scopes of the tasks run on its behalf
        now = parts.loop.current_time()
        self.sink: MessageSink = NO_SINK
        #: Set by the session after a publish that must wait for congested subscribers: reading
        #: pauses until it returns False (see :mod:`.flow`).
        self._hold: Callable[[], bool] | None = None
        self.state = SocketState.CONNECTING
        self.opened_at = now
        self._liveness = Liveness(parts.ping_timeout, now)
        self._bucket = TokenBucket.for_limits(parts.message_rate, parts.message_burst, now)
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

    # -- tasks and faults ------------------------------------------------------------------

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in the worker's nursery, in a task cancelled when this connection ends."""
        self._parts.spawn(self._run_task, fn, *args)

    async def _run_task(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self.state is SocketState.CLOSED:
            return
        with self._parts.loop.cancel_scope() as scope:
            if self._tasks is None:
                self._tasks = set()
            self._tasks.add(scope)
            try:
                await fn(*args)
            finally:
                self._tasks.discard(scope)

    def cancel_tasks(self) -> None:
        """Cancel the tasks run on this connection's behalf (it ended)."""
        for scope in self._tasks or ():
            scope.cancel()

    def overflowed(self) -> None:
        """The outbound backlog passed the limit: close as a slow consumer (4010)."""
        self._parts.stats.slow_consumer_disconnects += 1
        log.info(
            "connection %x: outbound buffer overflow, closing with %d", id(self), CloseCode.SLOW_CONSUMER
        )
        self.disconnect(CloseCode.SLOW_CONSUMER, "Outbound buffer overflow")

    def flooded(self) -> None:
        """The client sent more messages than its bucket allows: close with 4012."""
        self._parts.stats.rate_limited_disconnects += 1
        log.info(
            "connection %x: message rate limit exceeded, closing with %d", id(self), CloseCode.RATE_LIMITED
        )
        self.disconnect(CloseCode.RATE_LIMITED, "Message rate limit exceeded")

    def send_frame(self, frame: bytes) -> None:
        """Send a framed message shared by many connections (each transport has its own)."""
        raise NotImplementedError

    def send_own_frame(self, frame: bytes) -> None:
        """:meth:`send_frame` for a frame only this connection sends."""
        raise NotImplementedError

    def disconnect(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Start the close handshake with ``code`` (each transport has its own)."""
        raise NotImplementedError
