"""Channels: the wire subscription per channel name, and the handles users iterate over.

One :class:`Subscription` exists per channel name while anybody wants it; each ``client.subscribe()``
call returns its own :class:`Channel` handle with its own bounded buffer, so two tasks can read the
same channel independently. The wire subscription ends when the last handle is closed.

States follow socketcluster-client: ``pending`` (asked for, not confirmed; also after every
disconnect until the client resubscribes), ``subscribed``, ``unsubscribed``. A subscription's
place in its channel's history is its :class:`~hubbub.client._recovery.Recovery`; each handle
knows the position of the last publication it handed out.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import anyio
import anyio.lowlevel

from ._buffer import MessageBuffer, Notifier, Overflow
from ._errors import ClientError
from ._recovery import Publication, Recovery, StreamPosition, check_position, recover_data

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
    resubscription after a reconnect (highest first). ``recover`` sends the subscription's position
    in ``data["recover"]`` when it subscribes again (``data`` must then be a dict or None);
    ``since`` is a position to recover from on the first subscribe (it needs ``recover``).
    """

    data: Any = None
    wait_for_auth: bool = False
    priority: int = 0
    recover: bool = False
    since: StreamPosition | None = None

    def __post_init__(self) -> None:
        if self.since is not None:
            if not self.recover:
                raise ValueError("since= needs recover=True")
            check_position(self.since, "since")
        if not self.recover:
            return
        if self.data is not None and not isinstance(self.data, dict):
            raise TypeError(
                "with recover=True, data must be a dict or None (the position is sent in it under "
                f"'recover'), got {type(self.data).__name__}"
            )
        if isinstance(self.data, dict) and "recover" in self.data:
            raise ValueError("with recover=True, data must not have a 'recover' key (the client sets it)")

    def wire(self, channel: str, position: StreamPosition | None = None) -> dict[str, Any]:
        """The ``#subscribe`` payload; with ``position``, asking to recover from it."""
        payload: dict[str, Any] = {"channel": channel}
        if self.wait_for_auth:
            payload["waitForAuth"] = True
        data = self.data if position is None else recover_data(self.data, position)
        if data:
            payload["data"] = data
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
        self.recovery = Recovery(options.recover, options.since)

    @property
    def in_flight(self) -> bool:
        """A ``#subscribe`` request is waiting for its response."""
        return self.call_id is not None

    def set_state(self, state: ChannelState) -> None:
        """Change state and wake waiters."""
        self.state = state
        self.notifier.notify()

    def wire(self) -> dict[str, Any]:
        """The ``#subscribe`` payload to send now (with the position to recover from, if any)."""
        return self.options.wire(self.name, self.recovery.request())

    def confirm(self, answer: Any) -> bool:
        """The server confirmed the subscription with ``answer``; True when it was a resubscribe."""
        before = self.recovery.position
        resubscribed = self.recovery.confirmed(answer)
        if self.recovery.position != before:
            for handle in self.handles:
                if not len(handle._buffer):
                    handle._position = self.recovery.position
        self.set_state(ChannelState.SUBSCRIBED)
        return resubscribed

    def deliver(self, publication: Publication) -> list[Channel]:
        """Buffer ``publication`` in every handle; return the handles whose buffer overflowed (now ended)."""
        ended = []
        for handle in list(self.handles):
            handle._buffer.put(publication)
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

    Iteration yields each message's data and waits through reconnects (the client resubscribes by
    itself); :meth:`publications` yields :class:`Publication` objects (data, offset, epoch) instead.
    It stops after an :meth:`unsubscribe`, and raises after the buffered messages when the
    subscription ended otherwise: :class:`~hubbub.client.RemoteError` (subscribe refused),
    :class:`~hubbub.client.KickedOutError`, :class:`~hubbub.client.ChannelOverflowError`,
    :class:`~hubbub.client.ConnectionClosedError`.
    """

    def __init__(self, owner: _Owner, subscription: Subscription, max_size: int, overflow: Overflow) -> None:
        self._owner = owner
        self._subscription = subscription
        self._buffer: MessageBuffer[Publication] = MessageBuffer(max_size, overflow)
        self._ended = False
        self._error: BaseException | None = None
        self._position = subscription.recovery.position

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

    @property
    def position(self) -> StreamPosition | None:
        """Where this handle stands in the channel's history: the position of the last publication it
        handed out, else the one the server gave when subscribing (None for a channel without history,
        and after a publication that came without one).

        Store it with what you did with the messages; ``subscribe(name, recover=True, since=position)``
        continues from there.
        """
        return self._position

    @property
    def recovered(self) -> bool | None:
        """None until the channel was subscribed again (after a reconnect, or first with ``since``);
        then whether the last resubscribe recovered every missed publication."""
        return self._subscription.recovery.recovered

    @property
    def recovery_reason(self) -> str | None:
        """Why the last resubscribe did not recover (the server's reason, such as ``"epoch changed"``
        or ``"too many missed"``, or the client's); None when it did."""
        return self._subscription.recovery.reason

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

    async def wait_resubscribed(self, timeout: float | None = None) -> bool:
        """Wait for the next resubscribe to be answered; whether it recovered (see :attr:`recovered`).

        Raises like :meth:`wait_subscribed` if the subscription ends first. (The client's event stream
        has a :class:`~hubbub.client.Resubscribed` event for every resubscribe, none missed.)
        """
        recovery = self._subscription.recovery
        seen = recovery.resubscriptions
        with anyio.fail_after(timeout):
            await self._subscription.notifier.wait_for(
                lambda: recovery.resubscriptions > seen or self.state is ChannelState.UNSUBSCRIBED
            )
        if recovery.resubscriptions == seen:
            raise self._error or ClientError(f"channel {self.name!r} was unsubscribed")
        return bool(recovery.recovered)

    async def receive(self) -> Any:
        """The next message's data (see the class docstring for how it ends)."""
        return (await self.receive_publication()).data

    async def receive_publication(self) -> Publication:
        """The next message as a :class:`Publication`, with its offset and epoch."""
        publication = await self._buffer.get()
        self._position = publication.position
        return publication

    def publications(self) -> AsyncIterator[Publication]:
        """``async for publication in channel.publications():`` the messages with their positions."""
        return _Publications(self)

    def __aiter__(self) -> Channel:
        return self

    async def __anext__(self) -> Any:
        return await self.receive()

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


class _Publications:
    """A channel's messages as :class:`Publication` objects (they share the channel's buffer)."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel

    def __aiter__(self) -> _Publications:
        return self

    async def __anext__(self) -> Publication:
        return await self._channel.receive_publication()
