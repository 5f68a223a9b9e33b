"""Worker-local channel membership and fan-out.

The hub knows which local subscribers are on which channel. It tells the broker about a channel on
its first local subscriber and after its last one leaves, and when the broker delivers a message
it encodes the ``#publish`` packet once, frames it once, and hands the same bytes to every
subscriber. With outbound middleware each subscriber filters its own deliveries instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Sized
from typing import Any, Protocol

import anyio

from hubbub.broker import Broker, BrokerUnavailable, InProcessDelivery
from hubbub.protocol import Codec

from ._loop import Spawner
from ._transport.framing import frame_message

__all__ = ["FrameSink", "Hub", "Publication", "Subscriber"]

log = logging.getLogger("hubbub.hub")


class FrameSink(Protocol):
    """Where a subscriber's shared frames go (its connection)."""

    def send_frame(self, frame: bytes) -> None:
        """Send an already framed message: the same bytes go to every subscriber of the channel."""
        ...


class Subscriber(Protocol):
    """What the hub needs of a local subscriber (one client connection)."""

    @property
    def link(self) -> FrameSink:
        """The connection the fan-out hands frames to directly (no call through the subscriber)."""
        ...

    def deliver_filtered(self, publication: Publication) -> None:
        """Deliver ``publication`` through this subscriber's outbound middleware (only when there is some)."""
        ...

    def filtering(self) -> int:
        """Publications queued for this subscriber's outbound middleware, not yet sent."""
        ...


class Publication:
    """One publication handed to every subscriber's outbound middleware, and its one shared frame.

    The frame is built when a subscriber first sends the data unchanged; every subscriber that
    sends it unchanged then sends the same bytes. ``frame()`` is None when the codec cannot
    encode the data (logged once).
    """

    __slots__ = ("_built", "_codec", "_frame", "_prepared", "channel", "data", "epoch", "offset")

    def __init__(
        self,
        channel: str,
        data: Any,
        prepared: str | None,
        codec: Codec,
        offset: int | None = None,
        epoch: str = "",
    ) -> None:
        self.channel = channel
        self.data = data
        self._prepared = prepared
        self._codec = codec
        self._frame: bytes | None = None
        self._built = False
        #: The position of a publication on a channel with history (None on a plain channel).
        self.offset = offset
        self.epoch = epoch

    def packet_data(self, data: Any) -> dict[str, Any]:
        """The ``#publish`` packet's ``data`` for this publication carrying ``data``."""
        if self.offset is None:
            return {"channel": self.channel, "data": data}
        return {"channel": self.channel, "data": data, "offset": self.offset, "epoch": self.epoch}

    def frame(self) -> bytes | None:
        if not self._built:
            self._built = True
            self._frame = self._build()
        return self._frame

    def _build(self) -> bytes | None:
        if self._prepared is not None:
            return frame_message(self._prepared)
        packet = {"event": "#publish", "data": self.packet_data(self.data)}
        try:
            return frame_message(self._codec.encode(packet))
        except RecursionError:  # a client's data, nested deeper than the codec writes
            log.info("dropped a publication on %r: nested too deeply", self.channel)
        except Exception as error:  # an app's data the codec cannot write
            log.warning("dropped a publication on %r: it cannot be encoded: %s", self.channel, error)
        return None


class Hub:
    """Channels of one worker: ``channel -> {subscriber}`` and the broker subscriptions behind them.

    ``outbound`` is the app's outbound middleware chain: while it is not empty, deliveries go to
    :meth:`Subscriber.deliver_filtered` instead of the shared frame.
    """

    def __init__(self, broker: Broker, nursery: Spawner, outbound: Sized, codec: Codec) -> None:
        self._broker = broker
        #: Sets a channel's subscription at a broker that never waits (in-process), else None.
        self._inline: Callable[[str, bool], None] | None = (
            broker.set_subscribed if isinstance(broker, InProcessDelivery) else None
        )
        self._codec = codec  # every socket of a worker speaks the worker's codec
        self._nursery = nursery
        self._outbound = outbound
        self._members: dict[str, dict[Subscriber, None]] = {}
        self._channels_of: dict[Subscriber, set[str]] = {}
        self._at_broker: set[str] = set()
        self._locks: dict[str, anyio.Lock] = {}
        self._to_release: set[str] = set()
        self._releasing = False
        self.deliveries = 0
        self.publications = 0
        #: Called with a channel whose last local subscriber left.
        self.on_channel_released: Callable[[str], None] | None = None
        #: Receivers of the server's own (reserved) channels, which have no subscribers.
        self.system: dict[str, Callable[[Any], None]] = {}
        broker.attach(self.deliver)

    @property
    def channel_count(self) -> int:
        return len(self._members)

    @property
    def subscription_count(self) -> int:
        """Memberships of all local subscribers (subscriber x channel)."""
        return sum(len(channels) for channels in self._channels_of.values())

    def delivered(self) -> None:
        """Count a delivery made by a subscriber's own (filtered) path."""
        self.deliveries += 1

    def members(self, channel: str) -> Collection[Subscriber] | None:
        """The local subscribers of ``channel`` (a live view; None when it has none)."""
        return self._members.get(channel)

    def filters_behind(self, channel: str, limit: int) -> bool:
        """Whether a subscriber of ``channel`` has more than ``limit`` publications waiting for its middleware."""
        members = self._members.get(channel)
        return members is not None and any(member.filtering() > limit for member in members)

    def channel_counts(self) -> list[tuple[str, int]]:
        """Every channel with local subscribers, and how many."""
        return [(channel, len(members)) for channel, members in self._members.items()]

    def subscribers(self, channel: str) -> int:
        return len(self._members.get(channel, ()))

    def channels_of(self, subscriber: Subscriber) -> frozenset[str]:
        """The channels ``subscriber`` is on."""
        return frozenset(self._channels_of.get(subscriber, ()))

    def is_member(self, subscriber: Subscriber, channel: str) -> bool:
        members = self._members.get(channel)
        return members is not None and subscriber in members

    def channel_total(self, subscriber: Subscriber) -> int:
        """How many channels ``subscriber`` is on."""
        return len(self._channels_of.get(subscriber, ()))

    async def subscribe(self, subscriber: Subscriber, channel: str) -> None:
        """Add ``subscriber`` to ``channel``; raises BrokerUnavailable if the broker refuses the channel."""
        self._members.setdefault(channel, {})[subscriber] = None
        channels = self._channels_of.get(subscriber)
        if channels is None:
            channels = self._channels_of[subscriber] = set()
        channels.add(channel)
        if self._inline is not None:
            self._inline(channel, True)
            return
        if channel in self._at_broker and channel not in self._locks:
            return  # the broker already sends this channel here (a release may be pending: it sees the member)
        try:
            await self._sync_broker(channel)
        except Exception:  # BrokerUnavailable, or a broker bug: roll the membership back
            self._remove(subscriber, channel)
            self._nursery.start_soon(self._sync_broker_quietly, channel)
            raise

    def unsubscribe(self, subscriber: Subscriber, channel: str) -> None:
        """Remove ``subscriber`` from ``channel``; the broker is told in the background if it was the last."""
        if self._remove(subscriber, channel):
            self._release_channel(channel)

    def remove(self, subscriber: Subscriber) -> None:
        """Take a subscriber that goes away out of every channel."""
        for channel in self._channels_of.pop(subscriber, ()):
            members = self._members.get(channel)
            if members is not None:
                members.pop(subscriber, None)
                if not members:
                    del self._members[channel]
                    self._release_channel(channel)

    def _release_channel(self, channel: str) -> None:
        if self.on_channel_released is not None:
            self.on_channel_released(channel)
        if self._inline is not None:
            self._inline(channel, False)
            return
        self._to_release.add(channel)
        if not self._releasing:
            self._releasing = True
            self._nursery.start_soon(self._release)

    async def _release(self) -> None:
        """Unsubscribe at the broker the channels left empty (one task for any number of them)."""
        try:
            while self._to_release:
                channel = self._to_release.pop()
                if channel not in self._members:  # nobody subscribed again meanwhile
                    await self._sync_broker_quietly(channel)
        finally:
            self._releasing = False

    def _remove(self, subscriber: Subscriber, channel: str) -> bool:
        """Remove membership; True when the channel has no local subscriber left."""
        channels = self._channels_of.get(subscriber)
        if channels is not None:
            channels.discard(channel)
            if not channels:
                del self._channels_of[subscriber]
        members = self._members.get(channel)
        if members is None:
            return False
        members.pop(subscriber, None)
        if members:
            return False
        del self._members[channel]
        return True

    async def _sync_broker(self, channel: str) -> None:
        """Make the broker subscription of ``channel`` match whether it has local subscribers."""
        lock = self._locks.get(channel)
        if lock is None:
            lock = self._locks[channel] = anyio.Lock()
        try:
            async with lock:
                wanted = channel in self._members
                if wanted and channel not in self._at_broker:
                    await self._broker.subscribe(channel)
                    self._at_broker.add(channel)
                elif not wanted and channel in self._at_broker:
                    self._at_broker.discard(channel)
                    await self._broker.unsubscribe(channel)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(channel, None)

    async def _sync_broker_quietly(self, channel: str) -> None:
        """Background variant: a failure is logged (the worker keeps serving), never raised."""
        try:
            await self._sync_broker(channel)
        except BrokerUnavailable as error:
            log.warning("broker: could not update subscription of %r: %s", channel, error)
        except Exception:
            log.exception("broker: updating the subscription of %r failed", channel)

    @property
    def codec(self) -> Codec:
        return self._codec

    def send(self, publication: Publication, subscribers: Iterable[Subscriber]) -> None:
        """Send ``publication`` to ``subscribers`` (of its channel): its one frame, or each one's middleware."""
        count = 0
        if self._outbound:
            for subscriber in subscribers:
                subscriber.deliver_filtered(publication)
            return
        frame = publication.frame()
        if frame is None:
            return
        for subscriber in subscribers:
            subscriber.link.send_frame(frame)
            count += 1
        self.deliveries += count

    def deliver(self, channel: str, data: Any, prepared: str | None = None) -> None:
        """Fan a broker message out to the local subscribers of ``channel`` (the hot path).

        ``prepared`` is the ``#publish`` packet of ``(channel, data)`` when the publisher had it
        (an in-process broker passes it on): it is sent as it is instead of encoding ``data``.
        """
        members = self._members.get(channel)
        if not members:
            receiver = self.system.get(channel)
            if receiver is not None:
                receiver(data)
            return
        self.publications += 1
        if self._outbound:
            publication = Publication(channel, data, prepared, self._codec)
            for subscriber in members:
                subscriber.deliver_filtered(publication)
            return
        if prepared is not None:
            frame = frame_message(prepared)
        else:
            packet = {"event": "#publish", "data": {"channel": channel, "data": data}}
            frame = frame_message(self._codec.encode(packet))
        for subscriber in members:
            subscriber.link.send_frame(frame)
        self.deliveries += len(members)
