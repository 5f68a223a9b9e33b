"""Sending on non-blocking sockets: writes coalesced per scheduler step, a bounded backlog per socket.

``Outbound.write`` only appends to the socket's pending list and marks the socket in the worker's
:class:`WriteBatch`. The batch's one task wakes when the writing task yields to trio and sends
each marked socket's pending bytes in one ``send``, so a burst of publications reaches each
subscriber as one syscall, not one per message. What the kernel does not take stays queued and a
flush task, started on demand, drains it when the socket is writable again. An idle connection has
no task and no buffer.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

__all__ = ["EARLY_SEND", "Outbound", "Owner", "WriteBatch"]

#: Bytes queued for one socket within one scheduler step that are sent at once, without the batch.
EARLY_SEND = 65536


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


class _Detached:
    """The owner of an :class:`Outbound` whose connection ended: nothing is left to tell."""

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        pass

    def overflowed(self) -> None:
        pass

    def abort(self) -> None:
        pass


_DETACHED = _Detached()


class WriteBatch:
    """The sockets written to since the batch task last ran; :meth:`run` sends their bytes."""

    def __init__(self) -> None:
        self._marked: list[Outbound] = []
        self._lot = trio.lowlevel.ParkingLot()

    def mark(self, out: Outbound) -> None:
        if not self._marked:
            self._lot.unpark_all()
        self._marked.append(out)

    async def run(self) -> None:
        """Send marked sockets' pending bytes each time the writers yield; runs until cancelled."""
        while True:
            if not self._marked:
                await self._lot.park()
            marked, self._marked = self._marked, []
            for out in marked:
                out.send_pending()


class Outbound:
    """The sending side of one connection.

    ``owner.overflowed()`` is called (once) when the backlog exceeds ``limit`` bytes, and
    ``owner.abort()`` when the kernel refuses the socket. After either, writes are dropped: the
    connection is being torn down.
    """

    __slots__ = (
        "_batch",
        "_flushing",
        "_limit",
        "_marked",
        "_owner",
        "_pending",
        "_size",
        "_sock",
        "closed",
        "limited",
    )

    def __init__(self, sock: socket.socket, limit: int, owner: Owner, batch: WriteBatch) -> None:
        self._sock = sock
        self._limit = limit
        self._owner = owner
        self._batch = batch
        self._pending: list[bytes] = []
        self._size = 0
        self._flushing = False  # a flush task owns the backlog (the kernel is full)
        self._marked = False  # in the batch, waiting for send_pending()
        self.closed = False
        self.limited = False

    @property
    def backlog(self) -> int:
        """Bytes queued that the kernel has not taken yet."""
        return self._size

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the next batch; past the limit, drop it and report the overflow once.

        The limit counts what the kernel refused. Bytes merely waiting for the batch are sent
        early once they reach :data:`EARLY_SEND` so one scheduler step never piles up much.
        """
        if self.closed or self.limited:
            return
        self._pending.append(data)
        self._size += len(data)
        if self._flushing:
            if self._size > self._limit:
                self.limited = True
                self._owner.overflowed()
        elif self._size >= EARLY_SEND:
            self.send_pending()
        elif not self._marked:
            self._marked = True
            self._batch.mark(self)

    def write_final(self, data: bytes) -> None:
        """Queue ``data`` (a close frame) behind everything pending, ignoring the limit."""
        if self.closed:
            return
        self._pending.append(data)
        self._size += len(data)
        if not self._marked and not self._flushing:
            self._marked = True
            self._batch.mark(self)

    def send_pending(self) -> None:
        """Give the kernel everything pending in one ``send``; queue what it does not take."""
        self._marked = False
        if self.closed or self._flushing or not self._pending:
            return
        pending = self._pending
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._fail()
            return
        if sent == len(data):
            self._pending = []
            self._size = 0
            return
        rest = data[sent:]
        self._pending = [rest]
        self._size = len(rest)
        if self._size > self._limit:
            self.limited = True
            self._owner.overflowed()
        self._flushing = True
        self._owner.spawn(self._flush)

    def detach(self) -> None:
        """The connection is gone: drop the reference to its owner (no cycle left to collect)."""
        self.closed = True
        self._owner = _DETACHED

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
