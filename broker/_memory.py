"""The in-process broker: one worker, no network, delivery inline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._base import DeliverFn

__all__ = ["MemoryBroker"]


def _drop(channel: str, data: Any) -> None:
    del channel, data


class MemoryBroker:
    """A :class:`~hubbub.broker.Broker` for a single process, with :class:`~hubbub.broker.InProcessDelivery`.

    ``publish`` delivers synchronously before it returns, so per-channel order is the call order.
    """

    def __init__(self) -> None:
        self._deliver: Callable[..., None] = _drop
        self._channels: set[str] = set()

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
