"""The interface every broker implements, with the guarantees the worker relies on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["Broker", "BrokerUnavailable", "DeliverFn", "InProcessDelivery"]

#: Called by the broker for every message on a channel this worker subscribed to.
#: It is synchronous and must not block: the worker fans the message out inline.
DeliverFn = Callable[[str, Any], None]


class BrokerUnavailable(Exception):
    """The broker cannot take the operation now (connection lost, not yet connected, shutting down)."""


class Broker(Protocol):
    """Routes channel messages between the workers that share it.

    Guarantees a worker can rely on:

    * **Delivery to every subscribed worker, the publisher included.** After ``subscribe(ch)`` has
      returned, every message published on ``ch`` by any worker (this one too) is passed to the
      ``deliver`` function given to :meth:`attach`, until ``unsubscribe(ch)`` returns.
    * **Per-channel order.** Messages published on one channel by one worker are delivered in the
      order of their ``publish`` calls to every worker.
    * **No silent loss on publish.** ``publish`` returns once the broker has accepted the message
      and raises :class:`BrokerUnavailable` (or a subclass) when it cannot; it never drops a message
      and returns as if it had sent it. Delivery to remote workers is at-most-once: a worker that is
      disconnected from the broker misses what was published meanwhile.
    * **Idempotent subscription calls.** The worker reference-counts local subscribers and calls
      ``subscribe`` once per channel on the first one and ``unsubscribe`` after the last; a broker
      may still receive repeated calls and must treat them as no-ops.
    * ``ready`` is True while the broker is connected and every subscribed channel is active;
      :meth:`wait_ready` returns when it next becomes True.
    * ``deliver`` is called from the broker's own task with no locks held; it must not block.
    """

    def attach(self, deliver: DeliverFn) -> None:
        """Set the function that receives every message of every subscribed channel."""
        ...

    async def subscribe(self, channel: str) -> None:
        """Start receiving ``channel``; raises :class:`BrokerUnavailable` on failure."""
        ...

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``."""
        ...

    async def publish(self, channel: str, data: Any) -> None:
        """Send ``data`` to every worker subscribed to ``channel``."""
        ...

    @property
    def ready(self) -> bool:
        """True while connected with every subscription active."""
        ...

    def subscriptions(self) -> frozenset[str]:
        """The channels this worker is subscribed to at the broker."""
        ...


@runtime_checkable
class InProcessDelivery(Protocol):
    """A broker capability: delivery in this process, synchronously, before ``publish`` returns.

    A worker checks for it once (``isinstance(broker, InProcessDelivery)``) and then serves
    subscriptions and publishes without a coroutine. Brokers that talk to a network lack it.
    """

    def set_subscribed(self, channel: str, subscribed: bool) -> None:
        """``subscribe`` (True) or ``unsubscribe`` (False) at once; it never waits or fails."""
        ...

    def publish_now(self, channel: str, data: Any, prepared: Any = None) -> None:
        """``publish`` at once: ``deliver`` has run for this worker when it returns.

        ``prepared`` is opaque to the broker (the worker's encoded form of the message): when
        it is not None it is passed on to ``deliver`` as a third argument.
        """
        ...
