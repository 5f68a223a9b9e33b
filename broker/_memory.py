"""The in-process broker: one worker, no network, delivery inline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import DeliverFn
from ._history import HistoryOptions, HistoryPage, PositionedDeliverFn, StreamPosition
from ._memory_history import MemoryHistory
from ._memory_values import MemoryValues

__all__ = ["MemoryBroker"]


def _drop(channel: str, data: Any) -> None:
    del channel, data


def _drop_positioned(channel: str, data: Any, offset: int, epoch: str) -> None:
    del channel, data, offset, epoch


def _nothing() -> None:
    pass


class MemoryBroker(MemoryValues):
    """A :class:`~hubbub.broker.Broker` for a single process, with :class:`~hubbub.broker.InProcessDelivery`,
    :class:`~hubbub.broker.HistoryBroker` and :class:`~hubbub.broker.SharedValues` (shared within
    this process).

    ``publish`` and ``publish_history`` deliver synchronously before they return, so per-channel
    order is the call order. History lives in this process (see ``MemoryHistory``); it never
    reconnects, so ``reconnected`` is never called.
    """

    def __init__(self) -> None:
        super().__init__()
        self._deliver: Callable[..., None] = _drop
        self._deliver_history: PositionedDeliverFn = _drop_positioned
        self._channels: set[str] = set()
        self._history = MemoryHistory()

    def attach(self, deliver: DeliverFn) -> None:
        self._deliver = deliver

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    def set_subscribed(self, channel: str, subscribed: bool) -> None:
        """:meth:`subscribe` or :meth:`unsubscribe` without the coroutine (neither ever waits)."""
        if subscribed:
            self._channels.add(channel)
        else:
            self._channels.discard(channel)

    async def publish(self, channel: str, data: Any) -> None:
        self.publish_now(channel, data)

    def publish_now(self, channel: str, data: Any, prepared: Any = None) -> None:
        """:meth:`publish` without the coroutine: delivery is inline either way.

        A ``prepared`` form of the message (not None) is passed on to ``deliver`` as its third argument.
        """
        if channel in self._channels:
            if prepared is None:
                self._deliver(channel, data)
            else:
                self._deliver(channel, data, prepared)

    @property
    def ready(self) -> bool:
        return True

    async def wait_ready(self) -> None:
        """Always ready: returns at once."""

    def subscriptions(self) -> frozenset[str]:
        return frozenset(self._channels)

    # -- HistoryBroker -------------------------------------------------------------------------

    def attach_history(self, deliver: PositionedDeliverFn, reconnected: Callable[[], None]) -> None:
        """Set the receiver of history publications (``reconnected`` is never called here)."""
        del reconnected
        self._deliver_history = deliver

    async def publish_history(self, channel: str, data: Any, options: HistoryOptions) -> StreamPosition:
        """:meth:`publish_history_now` as a coroutine."""
        return self.publish_history_now(channel, data, options)

    def publish_history_now(self, channel: str, data: Any, options: HistoryOptions) -> StreamPosition:
        """Store and number ``data``; the history deliver function has run when it returns."""
        position = self._history.publish(channel, data, options)
        if channel in self._channels:
            self._deliver_history(channel, data, position.offset, position.epoch)
        return position

    async def history(
        self,
        channel: str,
        options: HistoryOptions,
        *,
        since: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> HistoryPage:
        """Read ``channel``'s position and kept publications (at once: nothing is awaited)."""
        return self.history_now(channel, options, since=since, limit=limit, reverse=reverse)

    def history_now(
        self,
        channel: str,
        options: HistoryOptions,
        *,
        since: int | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> HistoryPage:
        """:meth:`history` without the coroutine."""
        return self._history.read(channel, options, since, limit, reverse)

    async def remove_history(self, channel: str) -> None:
        """Drop ``channel``'s kept publications (at once); its offset and epoch go on."""
        self._history.remove(channel)
