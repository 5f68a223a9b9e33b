"""Write-through sending on a non-blocking socket, with a bounded backlog.

``write`` tries the kernel first and queues only what it did not take; a flush task is started on
demand to drain the backlog when the socket becomes writable again, coalescing everything queued
into one ``send``. An idle connection therefore has no writer task and no buffer.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

__all__ = ["Outbound"]


class Owner(Protocol):
    """The connection an :class:`Outbound` writes for."""

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` in a task of the connection."""
        ...

    def overflowed(self) -> None:
        """The backlog passed the limit (called once)."""
        ...

    def abort(self) -> None:
        """The kernel refused the socket (peer gone)."""
        ...


class Outbound:
    """The sending side of one connection.

    ``owner.overflowed()`` is called (once) when the backlog exceeds ``limit`` bytes, and
    ``owner.abort()`` when the kernel refuses the socket. After either, writes are dropped: the
    connection is being torn down.
    """

    __slots__ = ("_flushing", "_limit", "_owner", "_pending", "_size", "_sock", "closed", "limited")

    def __init__(self, sock: socket.socket, limit: int, owner: Owner) -> None:
        self._sock = sock
        self._limit = limit
        self._owner = owner
        self._pending: list[bytes] = []
        self._size = 0
        self._flushing = False
        self.closed = False
        self.limited = False

    @property
    def backlog(self) -> int:
        """Bytes queued that the kernel has not taken yet."""
        return self._size

    def write(self, data: bytes) -> None:
        """Send ``data`` now or queue it; past the limit, drop it and report the overflow once."""
        if self.closed or self.limited:
            return
        if self._pending:
            self._queue(data)
            if self._size > self._limit:
                self.limited = True
                self._owner.overflowed()
            return
        self._send(data)

    def write_final(self, data: bytes) -> None:
        """Queue ``data`` (a close frame) behind everything pending, ignoring the limit."""
        if self.closed:
            return
        if self._pending:
            self._queue(data)
        else:
            self._send(data)

    def _send(self, data: bytes) -> None:
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._fail()
            return
        if sent < len(data):
            self._queue(data[sent:])
            if not self._flushing:
                self._flushing = True
                self._owner.spawn(self._flush)

    def _queue(self, data: bytes) -> None:
        self._pending.append(data)
        self._size += len(data)

    def _fail(self) -> None:
        self.closed = True
        self._pending = []
        self._size = 0
        self._owner.abort()

    async def _flush(self) -> None:
        try:
            while self._pending and not self.closed:
                await trio.lowlevel.wait_writable(self._sock)
                chunk = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
                try:
                    sent = self._sock.send(chunk)
                except BlockingIOError:
                    continue
                except OSError:
                    self._fail()
                    return
                rest = chunk[sent:]
                self._pending = [rest] if rest else []
                self._size = len(rest)
        except (trio.ClosedResourceError, OSError, ValueError):  # the connection closed meanwhile
            self.closed = True
        finally:
            self._flushing = False
