"""Bounded message buffers with an overflow policy, and a small condition helper.

The connection's reader task must never wait on a slow consumer (it would stop answering pings),
so it hands messages to :class:`MessageBuffer` without blocking; what happens when the buffer is
full is the buffer's :class:`Overflow` policy.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio
import anyio.lowlevel

from ._errors import ChannelOverflowError

__all__ = ["MessageBuffer", "Notifier", "Overflow"]

T = TypeVar("T")


class Overflow(enum.Enum):
    """What a full buffer does with one more message.

    * ``DROP_OLDEST`` (the default): discard the oldest buffered message, keep the new one.
    * ``DROP_NEWEST``: discard the new message.
    * ``ERROR``: end the subscription; the iterator yields what was buffered, then raises
      :class:`~hubbub.client.ChannelOverflowError`.

    Dropped messages are counted in ``dropped``.
    """

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
    ERROR = "error"


class Notifier:
    """Wake every waiter when something changed; waiters re-check their own condition."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        """Wake all current waiters."""
        self._event.set()
        self._event = anyio.Event()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` is true, re-checking it after every :meth:`notify`."""
        while not predicate():
            await self._event.wait()


class MessageBuffer(Generic[T]):
    """A bounded FIFO; :meth:`put` never blocks, :meth:`get` waits. Closing ends it after it drains."""

    def __init__(self, max_size: int, overflow: Overflow = Overflow.DROP_OLDEST) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        self.overflow = overflow
        self.dropped = 0
        self._items: deque[T] = deque()
        self._closed: BaseException | None = None
        self._is_closed = False
        self._notifier = Notifier()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (buffered items may remain)."""
        return self._is_closed

    def put(self, item: T) -> None:
        """Add ``item``, applying the overflow policy when full; ignored once closed."""
        if self._is_closed:
            return
        if len(self._items) >= self.max_size:
            self.dropped += 1
            if self.overflow is Overflow.DROP_NEWEST:
                return
            if self.overflow is Overflow.ERROR:
                self.close(ChannelOverflowError(f"buffer of {self.max_size} messages overflowed"))
                return
            self._items.popleft()
        self._items.append(item)
        self._notifier.notify()

    def close(self, error: BaseException | None = None) -> None:
        """No more items; once drained, :meth:`get` raises ``error`` (or ``StopAsyncIteration``)."""
        if not self._is_closed:
            self._is_closed = True
            self._closed = error
            self._notifier.notify()

    async def get(self) -> T:
        """The next item; raises the close error (or ``StopAsyncIteration``) when closed and drained."""
        await anyio.lowlevel.checkpoint()
        await self._notifier.wait_for(lambda: bool(self._items) or self._is_closed)
        if self._items:
            return self._items.popleft()
        if self._closed is not None:
            raise self._closed
        raise StopAsyncIteration
