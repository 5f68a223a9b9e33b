"""Channels: the wire subscription per channel name, and the handles users iterate over.

One :class:`Subscription` exists per channel name while anybody wants it; each ``client.subscribe()``
call returns its own :class:`Channel` handle with its own bounded buffer, so two tasks can read the
same channel independently. The wire subscription ends when the last handle is closed.

States follow socketcluster-client: ``pending`` (asked for, not confirmed; also after every
disconnect until the client resubscribes), ``subscribed``, ``unsubscribed``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import anyio
import anyio.lowlevel

from ._buffer import MessageBuffer, Notifier, Overflow
from ._errors import ClientError

__all__ = ["Channel", "ChannelState", "SubscribeOptions", "Subscription"]


class ChannelState(enum.Enum):
    """A channel's subscription state."""

    PENDING = "pending"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True, slots=True)
class SubscribeOptions:
    """``data`` goes to the server's subscribe middleware (only when truthy, as the official client does);
    ``wait_for_auth`` holds the request until the client is authenticated; ``priority`` orders
    resubscription after a reconnect (highest first)."""

    data: Any = None
    wait_for_auth: bool = False
    priority: int = 0

    def wire(self, channel: str) -> dict[str, Any]:
        """The ``#subscribe`` payload."""
        payload: dict[str, Any] = {"channel": channel}
        if self.wait_for_auth:
            payload["waitForAuth"] = True
        if self.data:
            payload["data"] = self.data
        return payload


class _Owner(Protocol):
    def release_channel(self, channel: Channel) -> None: ...


class Subscription:
    """The client's subscription to one channel name, shared by that name's handles."""

    def __init__(self, name: str, options: SubscribeOptions, notifier: Notifier) -> None:
        self.name = name
        self.options = options
        self.state = ChannelState.PENDING
        self.handles: set[Channel] = set()
        self.call_id: int | None = None  # the #subscribe request in flight
        self.notifier = notifier

    @property
    def in_flight(self) -> bool:
        """A ``#subscribe`` request is waiting for its response."""
        return self.call_id is not None

    def set_state(self, state: ChannelState) -> None:
        """Change state and wake waiters."""
        self.state = state
        self.notifier.notify()

    def deliver(self, data: Any) -> list[Channel]:
        """Buffer ``data`` in every handle; return the handles whose buffer overflowed (now ended)."""
        ended = []
        for handle in list(self.handles):
            handle._buffer.put(data)
            if handle._buffer.closed:
                ended.append(handle)
        return ended

    def end(self, error: BaseException | None) -> None:
        """The subscription is over: every handle stops after its buffered messages."""
        self.set_state(ChannelState.UNSUBSCRIBED)
        for handle in list(self.handles):
            handle._end(error)
        self.handles.clear()


class Channel:
    """One subscriber's view of a channel: an async iterator of published messages.

    Use it as an async context manager (leaving it unsubscribes) and iterate it::

        async with client.subscribe("room") as channel:
            await channel.wait_subscribed()
            async for message in channel:
                ...

    Iteration waits through reconnects (the client resubscribes by itself). It stops after an
    :meth:`unsubscribe`, and raises after the buffered messages when the subscription ended otherwise:
    :class:`~hubbub.client.RemoteError` (subscribe refused), :class:`~hubbub.client.KickedOutError`,
    :class:`~hubbub.client.ChannelOverflowError`, :class:`~hubbub.client.ConnectionClosedError`.
    """

    def __init__(self, owner: _Owner, subscription: Subscription, max_size: int, overflow: Overflow) -> None:
        self._owner = owner
        self._subscription = subscription
        self._buffer: MessageBuffer[Any] = MessageBuffer(max_size, overflow)
        self._ended = False
        self._error: BaseException | None = None

    @property
    def name(self) -> str:
        """The channel name."""
        return self._subscription.name

    @property
    def state(self) -> ChannelState:
        """``PENDING``, ``SUBSCRIBED`` or ``UNSUBSCRIBED`` (this handle ended, or the subscription did)."""
        if self._ended:
            return ChannelState.UNSUBSCRIBED
        return self._subscription.state

    @property
    def error(self) -> BaseException | None:
        """Why the subscription ended, when it was not by :meth:`unsubscribe`."""
        return self._error

    @property
    def dropped(self) -> int:
        """How many messages the overflow policy discarded."""
        return self._buffer.dropped

    @property
    def buffered(self) -> int:
        """How many messages wait in the buffer."""
        return len(self._buffer)

    async def wait_subscribed(self, timeout: float | None = None) -> None:
        """Wait until the server confirmed the subscription.

        Raises the reason if the subscription ends first (``RemoteError`` when the server refused it),
        and ``TimeoutError`` after ``timeout`` seconds.
        """
        with anyio.fail_after(timeout):
            await self._subscription.notifier.wait_for(lambda: self.state is not ChannelState.PENDING)
        if self.state is ChannelState.UNSUBSCRIBED:
            raise self._error or ClientError(f"channel {self.name!r} was unsubscribed")

    async def wait_unsubscribed(self, timeout: float | None = None) -> None:
        """Wait until this handle's subscription is over (for any reason)."""
        with anyio.fail_after(timeout):
            await self._subscription.notifier.wait_for(lambda: self.state is ChannelState.UNSUBSCRIBED)

    async def receive(self) -> Any:
        """The next message (see the class docstring for how it ends)."""
        return await self._buffer.get()

    def __aiter__(self) -> Channel:
        return self

    async def __anext__(self) -> Any:
        return await self._buffer.get()

    async def unsubscribe(self) -> None:
        """Stop this handle; the last handle of a channel unsubscribes it on the server."""
        await anyio.lowlevel.checkpoint()
        if not self._ended:
            self._owner.release_channel(self)

    async def __aenter__(self) -> Channel:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._ended:
            self._owner.release_channel(self)

    def _end(self, error: BaseException | None) -> None:
        if not self._ended:
            self._ended = True
            self._error = error
            self._buffer.close(error)
            self._subscription.notifier.notify()

    def __repr__(self) -> str:
        return f"<Channel {self.name!r} {self.state.value}>"
