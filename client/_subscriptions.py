"""The client's channel subscriptions: subscribe and unsubscribe on the wire, resubscribe, deliver.

One :class:`~hubbub.client._channel.Subscription` per channel name, in subscription order. A
subscription is sent when the client is connected (and, with ``wait_for_auth``, authenticated),
goes back to pending on every disconnect and is sent again after the next handshake, highest
``priority`` first (with its position when it recovers, see ``_recovery``); every answered
resubscribe is told as a :class:`~hubbub.client.Resubscribed` event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.lowlevel

from hubbub.protocol import transmit_packet

from ._buffer import Notifier, Overflow
from ._calls import CallTable, PendingCall
from ._channel import Channel, ChannelState, SubscribeOptions, Subscription
from ._errors import ChannelOverflowError, ConnectionClosedError, KickedOutError, RemoteError
from ._events import EventHub, Resubscribed
from ._handlers import Spawn
from ._recovery import read_publication
from ._session import SessionLink

__all__ = ["Subscriptions"]


class Subscriptions:
    """The subscription table; :class:`Channel` handles release themselves through it."""

    def __init__(
        self,
        link: SessionLink,
        calls: CallTable,
        notifier: Notifier,
        *,
        spawn: Spawn,
        is_authenticated: Callable[[], bool],
        events: EventHub,
    ) -> None:
        self._link = link
        self._calls = calls
        self._notifier = notifier
        self._spawn = spawn
        self._is_authenticated = is_authenticated
        self._events = events
        self._table: dict[str, Subscription] = {}
        #: ``#publish`` messages delivered to a subscribed (or pending) channel.
        self.publications = 0
        #: ``#publish`` messages for channels not subscribed to (dropped).
        self.ignored_publications = 0
        #: ``#publish`` messages at or below their channel's position (dropped as duplicates).
        self.duplicate_publications = 0

    def counters(self) -> dict[str, int]:
        """The ``#publish`` counters, named as in ``ClientStatistics``."""
        return {
            "publications": self.publications,
            "ignored_publications": self.ignored_publications,
            "duplicate_publications": self.duplicate_publications,
        }

    def names(self) -> list[str]:
        """The channels subscribed or pending, in subscription order."""
        return list(self._table)

    def subscribe(
        self, channel: str, options: SubscribeOptions, max_size: int, overflow: Overflow
    ) -> Channel:
        """A new handle on ``channel``'s subscription (created, and sent when possible, if new)."""
        subscription = self._table.get(channel)
        if subscription is None:
            subscription = Subscription(channel, options, self._notifier)
            self._table[channel] = subscription
            self._send_subscribe(subscription)
        handle = Channel(self, subscription, max_size, overflow)
        subscription.handles.add(handle)
        return handle

    async def unsubscribe(self, channel: str) -> None:
        """Release every handle of ``channel``."""
        await anyio.lowlevel.checkpoint()
        subscription = self._table.get(channel)
        if subscription is not None:
            for handle in list(subscription.handles):
                self.release_channel(handle)

    def release_channel(self, channel: Channel, error: BaseException | None = None) -> None:
        """End one handle; the last one unsubscribes on the wire."""
        channel._end(error)
        subscription = channel._subscription
        subscription.handles.discard(channel)
        if subscription.handles or self._table.get(subscription.name) is not subscription:
            return
        del self._table[subscription.name]
        active = subscription.state is ChannelState.SUBSCRIBED or subscription.in_flight
        subscription.set_state(ChannelState.UNSUBSCRIBED)
        session = self._link.session
        if active and session is not None:
            session.send(transmit_packet("#unsubscribe", subscription.name))

    def send_pending(self) -> None:
        """Send every pending subscription that may go now, highest priority first."""
        pending = [s for s in self._table.values() if s.state is ChannelState.PENDING]
        for subscription in sorted(pending, key=lambda s: -s.options.priority):
            self._send_subscribe(subscription)

    def on_publish(self, data: Any) -> None:
        """A ``#publish`` arrived: buffer it in the channel's handles (or count it as ignored)."""
        if not (isinstance(data, dict) and isinstance(data.get("channel"), str)):
            return
        channel = data["channel"]
        subscription = self._table.get(channel)
        if subscription is None or subscription.state is ChannelState.UNSUBSCRIBED:
            self.ignored_publications += 1
            return
        publication = read_publication(data)
        if not subscription.recovery.accept(publication):
            self.duplicate_publications += 1
            return
        self.publications += 1
        for handle in subscription.deliver(publication):
            self.release_channel(handle, ChannelOverflowError(f"channel {channel!r}: buffer overflowed"))

    def on_kick_out(self, data: Any) -> KickedOutError | None:
        """A ``#kickOut`` arrived: end the channel's subscription; the error, or None if malformed."""
        if not (isinstance(data, dict) and isinstance(data.get("channel"), str)):
            return None
        error = KickedOutError(data["channel"], data.get("message"))
        subscription = self._table.pop(error.channel, None)
        if subscription is not None:
            subscription.end(error)
        return error

    def on_disconnect(self) -> None:
        """The connection closed: every subscription is pending again."""
        for subscription in self._table.values():
            subscription.call_id = None
            if subscription.state is ChannelState.SUBSCRIBED:
                subscription.set_state(ChannelState.PENDING)

    def end_all(self, error: BaseException) -> None:
        """The client closed for good: every handle ends with ``error``."""
        for subscription in list(self._table.values()):
            subscription.end(error)
        self._table.clear()

    def _send_subscribe(self, subscription: Subscription) -> None:
        """Send ``#subscribe`` now if connected, allowed (auth) and not already in flight."""
        session = self._link.session
        waiting_for_auth = subscription.options.wait_for_auth and not self._is_authenticated()
        if session is None or waiting_for_auth or subscription.in_flight:
            return
        if subscription.state is not ChannelState.PENDING:
            return
        call = self._calls.send(session, "#subscribe", subscription.wire())
        subscription.call_id = call.cid
        self._spawn(self._subscribe_result, subscription, call)

    async def _subscribe_result(self, subscription: Subscription, call: PendingCall) -> None:
        try:
            answer = await self._calls.result(call)
        except RemoteError as exc:
            if self._table.get(subscription.name) is subscription:
                del self._table[subscription.name]
                subscription.end(exc)
        except ConnectionClosedError:
            pass  # stays pending; the next handshake resubscribes it
        else:
            current = self._table.get(subscription.name) is subscription
            if current and subscription.call_id == call.cid and subscription.confirm(answer):
                recovery = subscription.recovery
                self._events.emit(Resubscribed(subscription.name, bool(recovery.recovered), recovery.reason))
        finally:
            if subscription.call_id == call.cid:
                subscription.call_id = None
