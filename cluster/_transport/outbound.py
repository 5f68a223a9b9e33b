"""Sending on non-blocking sockets: writes coalesced per scheduler step, a bounded backlog per socket.

``Outbound.write`` only appends to the socket's pending list and marks the socket in the worker's
:class:`WriteBatch`. The batch's one task wakes when the writing task yields to trio and gives
each marked socket's pending frames to the kernel in one ``sendmsg``, so a burst of publications
reaches each subscriber as one syscall, not one per message. What the kernel does not take stays
queued and a flush task, started on demand, drains it when the socket is writable again. An idle
connection has no task and no buffer.

Frames are never joined or sliced: a publication's frame is one ``bytes`` object shared by every
subscriber, and a socket that falls behind keeps a reference to it and an offset into it, never a
copy of its own. A thousand stalled subscribers of one large publication hold one frame, not a
thousand.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from .._loop import TRIO, Loop
from .flow import FlowControl

__all__ = ["EARLY_SEND", "Outbound", "Owner", "WriteBatch"]

#: Bytes queued for one socket within one scheduler step that are sent at once, without the batch.
EARLY_SEND = 65536
#: Frames given to one ``sendmsg`` (IOV_MAX is 1024 on Linux and the BSDs).
_MAX_BUFFERS = 1024
#: Pending bytes up to which several frames are joined for one ``send`` instead (a copy of that size
#: costs less than ``sendmsg``; whatever the kernel does not take, the frames stay as they were).
_JOIN_LIMIT = 8192
#: Frames of one socket's own (responses, pongs) up to this size are copied into a private tail
#: buffer while the socket is backlogged, so a flood of tiny frames costs their bytes, not an
#: object each; shared frames are never copied.
_OWN_JOIN = 512
_TAIL_MAX = 65536


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

    def __init__(self, loop: Loop = TRIO) -> None:
        self._marked: list[Outbound] = []
        #: The worker's event loop primitives (the outbound buffers' flush tasks wait with them too).
        self.loop = loop
        self._lot = loop.parking_lot()

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

    With a :class:`~.flow.FlowControl`, ``limit`` is the soft limit: past it the buffer is
    *congested* (publishers to its channels are held back) and it overflows only past the flow's
    hard limit or when it stays congested without progress too long. Without one, ``limit`` is
    where it overflows.

    ``owner.overflowed()`` is called (once) when the backlog overflows, and
    ``owner.abort()`` when the kernel refuses the socket. After an overflow the backlog is dropped
    and only :meth:`write_final` data (the close frame) is still sent, right after the remaining
    bytes of a frame the kernel has begun (a WebSocket frame cannot be cut short); after an abort
    nothing more is sent: the connection is being torn down.
    """

    __slots__ = (
        "_batch",
        "_flow",
        "_flushing",
        "_limit",
        "_marked",
        "_offset",
        "_owner",
        "_pending",
        "_size",
        "_sock",
        "closed",
        "limited",
        "tag",
    )

    def __init__(
        self,
        sock: socket.socket,
        limit: int,
        owner: Owner,
        batch: WriteBatch,
        flow: FlowControl | None = None,
    ) -> None:
        self._sock = sock
        self._flow = flow
        #: The subscriber this buffer writes for, as flow control names it to publishers.
        self.tag: Any = None
        self._limit = limit
        self._owner = owner
        self._batch = batch
        self._pending: list[bytes | bytearray] = []  # whole frames (shared), or a private tail
        self._offset = 0  # bytes of _pending[0] the kernel has taken
        self._size = 0  # bytes of the frames in _pending, each counted whole
        self._flushing = False  # a flush task owns the backlog (the kernel is full)
        self._marked = False  # in the batch, waiting for send_pending()
        self.closed = False
        self.limited = False

    @property
    def backlog(self) -> int:
        """Bytes this socket keeps alive until the kernel takes them.

        Each queued frame counts whole, a partly sent one too: the frame stays in memory until
        its last byte is sent, whatever part of it remains.
        """
        return self._size

    def write(self, data: bytes, own: bool = False) -> None:
        """Queue ``data`` for the next batch; past the limit, drop the backlog and report the overflow once.

        The limit applies while the kernel refuses more. Bytes merely waiting for the batch are
        sent early once they reach :data:`EARLY_SEND` so one scheduler step never piles up much.
        ``own``: the bytes are this socket's only (a response, a pong), which may be copied.
        """
        if self.closed or self.limited:
            return
        if self._flushing:
            self._queue_behind(data, own)
            return
        self._pending.append(data)
        self._size += len(data)
        if self._size >= EARLY_SEND:
            self.send_pending()
        elif not self._marked:
            self._marked = True
            self._batch.mark(self)

    def _queue_behind(self, data: bytes, own: bool) -> None:
        """Queue ``data`` behind the backlog being flushed: small bytes of its own join a private tail."""
        pending = self._pending
        if own and len(data) <= _OWN_JOIN and pending:
            tail = pending[-1]
            if tail.__class__ is bytearray and len(tail) < _TAIL_MAX:
                tail += data
            else:
                pending.append(bytearray(data))
        else:
            pending.append(data)
        self._size += len(data)
        if self._size > self._limit:
            self._over_limit()

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
        """Give the kernel everything pending; queue what it does not take."""
        self._marked = False
        if self.closed or self._flushing or not self._pending or self._send():
            return
        self._flushing = True
        if self._flow is not None:
            self._flow.backlogged(self)
        self._owner.spawn(self._flush)
        if self._size > self._limit and not self.limited:
            self._over_limit()

    def detach(self) -> None:
        """The connection is gone: drop the reference to its owner (no cycle left to collect)."""
        self.closed = True
        self._owner = _DETACHED
        self.tag = None
        if self._flushing and self._flow is not None:  # flow control knows only a buffer that flushes
            self._flow.release(self)

    def stalled(self) -> None:
        """Congested without progress for the flow's timeout: overflow now."""
        if not (self.closed or self.limited):
            self._overflow()

    def _send(self) -> bool:
        """Hand pending frames to the kernel until it stops taking them; True when none is left.

        A few small frames are joined into one ``send`` (the copy is cheaper than ``sendmsg``'s
        setup); otherwise ``sendmsg`` takes the frames as they are, the first from its offset.
        """
        while self._pending:
            pending, offset = self._pending, self._offset
            count = len(pending)
            try:
                if count == 1:
                    sent = self._sock.send(memoryview(pending[0])[offset:] if offset else pending[0])
                elif not offset and self._size <= _JOIN_LIMIT:
                    sent = self._sock.send(b"".join(pending))
                else:
                    count = min(count, _MAX_BUFFERS)
                    head = memoryview(pending[0])[offset:]
                    sent = self._sock.sendmsg([head, *pending[1:count]])
            except BlockingIOError:
                return False
            except OSError:
                self._fail()
                return True
            if count == len(pending) and sent == self._size - offset:
                pending.clear()
                self._size = self._offset = 0
                return True
            if not self._advance(sent, count):
                return False
        return True

    def _advance(self, sent: int, count: int) -> bool:
        """Forget what the kernel took of the first ``count`` frames; True when it took them all."""
        pending = self._pending
        taken = self._offset + sent
        done = freed = 0
        while done < count and taken >= len(pending[done]):
            size = len(pending[done])
            taken -= size
            freed += size
            done += 1
        del pending[:done]
        self._size -= freed
        self._offset = taken
        return done == count

    def _over_limit(self) -> None:
        """The backlog passed the (soft) limit: congested, or overflowed past the hard limit."""
        flow = self._flow
        if flow is None or self._size > flow.hard_limit:
            self._overflow()
        else:
            flow.congest(self)

    def _overflow(self) -> None:
        """Drop the backlog, so that the close frame the owner now sends goes out next."""
        self.limited = True
        self._drop(keep_begun=True)
        if self._flow is not None:
            self._flow.release(self)
        self._owner.overflowed()

    def _drop(self, *, keep_begun: bool = False) -> None:
        """Forget the pending frames, except with ``keep_begun`` one the kernel has taken part of."""
        pending = self._pending
        if keep_begun and self._offset:
            del pending[1:]
            self._size = len(pending[0])
        else:
            pending.clear()
            self._size = self._offset = 0

    def _fail(self) -> None:
        self.closed = True
        self._drop()
        self._owner.abort()

    async def _flush(self) -> None:
        flow = self._flow
        wait_writable = self._batch.loop.wait_writable
        try:
            while self._pending and not self.closed:
                await wait_writable(self._sock)
                before = (self._size, self._offset)
                self._send()
                if flow is not None and (self._size, self._offset) != before:
                    flow.progress(self, self._size <= self._limit)
        except (trio.ClosedResourceError, OSError, ValueError):  # the connection closed meanwhile
            self.closed = True
        finally:
            self._flushing = False
            if flow is not None:
                flow.release(self)
