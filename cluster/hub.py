"""Worker-local channel membership and fan-out.

The hub knows which local sockets are on which channel. It tells the broker about a channel on its
first local subscriber and after its last one leaves, and when the broker delivers a message it
encodes the ``#publish`` packet once, frames it once, and hands the same bytes to every
subscriber. Sockets with outbound middleware take a slower path of their own.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from hubbub.broker import Broker, BrokerUnavailable, InProcessDelivery
from hubbub.protocol import Codec

from .framing import frame_message
from .middleware import Action, ActionType, Middleware, run_middleware

if TYPE_CHECKING:
    from .socket import ServerSocket

__all__ = ["Hub"]

log = logging.getLogger("hubbub.hub")


class Hub:
    """Channels of one worker: ``channel -> {socket}`` and the broker subscriptions behind them."""

    def __init__(
        self, broker: Broker, nursery: trio.Nursery, outbound: list[Middleware], codec: Codec
    ) -> None:
        self._broker = broker
        #: Sets a channel's subscription at a broker that never waits (in-process), else None.
        self._inline: Callable[[str, bool], None] | None = (
            broker.set_subscribed if isinstance(broker, InProcessDelivery) else None
        )
        self._codec = codec  # every socket of a worker speaks the worker's codec
        self._nursery = nursery
        self._outbound = outbound
        self._members: dict[str, dict[ServerSocket, None]] = {}
        self._at_broker: set[str] = set()
        self._locks: dict[str, trio.Lock] = {}
        self._to_release: set[str] = set()
        self._releasing = False
        self.deliveries = 0
        self.publications = 0
        #: ``(channel, data, packet text)`` of the publish under way: a delivery of that very
        #: object sends the text instead of encoding it (set by ``Server.publish``).
        self.encoded: tuple[str, Any, str] | None = None
        broker.attach(self.deliver)

    @property
    def channel_count(self) -> int:
        return len(self._members)

    def subscribers(self, channel: str) -> int:
        return len(self._members.get(channel, ()))

    async def subscribe(self, socket: ServerSocket, channel: str) -> None:
        """Add ``socket`` to ``channel``; raises BrokerUnavailable if the broker refuses the channel."""
        members = self._members.setdefault(channel, {})
        members[socket] = None
        socket.channels.add(channel)
        if self._inline is not None:
            self._inline(channel, True)
            return
        if channel in self._at_broker and channel not in self._locks:
            return  # the broker already sends this channel here (a release may be pending: it sees the member)
        try:
            await self._sync_broker(channel)
        except Exception:  # BrokerUnavailable, or a broker bug: roll the membership back
            self._remove(socket, channel)
            self._nursery.start_soon(self._sync_broker_quietly, channel)
            raise

    def unsubscribe(self, socket: ServerSocket, channel: str) -> None:
        """Remove ``socket`` from ``channel``; the broker is told in the background if it was the last."""
        if self._remove(socket, channel):
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

    def remove_socket(self, socket: ServerSocket) -> None:
        """Take a closing socket out of every channel."""
        for channel in list(socket.channels):
            self.unsubscribe(socket, channel)

    def _remove(self, socket: ServerSocket, channel: str) -> bool:
        """Remove membership; True when the channel has no local subscriber left."""
        socket.channels.discard(channel)
        members = self._members.get(channel)
        if members is None:
            return False
        members.pop(socket, None)
        if members:
            return False
        del self._members[channel]
        return True

    async def _sync_broker(self, channel: str) -> None:
        """Make the broker subscription of ``channel`` match whether it has local subscribers."""
        lock = self._locks.get(channel)
        if lock is None:
            lock = self._locks[channel] = trio.Lock()
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

    def deliver(self, channel: str, data: Any) -> None:
        """Fan a broker message out to the local subscribers of ``channel`` (the hot path)."""
        members = self._members.get(channel)
        if not members:
            return
        self.publications += 1
        if self._outbound:
            for socket in members:
                self._queue_filtered(socket, channel, data)
            return
        encoded = self.encoded
        if encoded is not None and encoded[1] is data and encoded[0] == channel:
            frame = frame_message(encoded[2])
        else:
            packet = {"event": "#publish", "data": {"channel": channel, "data": data}}
            frame = frame_message(self._codec.encode(packet))
        for socket in members:
            socket.send_frame(frame)
        self.deliveries += len(members)

    def _queue_filtered(self, socket: ServerSocket, channel: str, data: Any) -> None:
        """Queue a delivery that must pass the outbound middleware; one drain task per socket keeps order."""
        queue = socket.outbound_queue
        if queue is None:
            queue = socket.outbound_queue = deque()
            socket.spawn(self._drain_filtered, socket)
        queue.append((channel, data))

    async def _drain_filtered(self, socket: ServerSocket) -> None:
        queue = socket.outbound_queue
        try:
            while queue:
                channel, data = queue.popleft()
                action = Action(ActionType.PUBLISH_OUT, socket=socket, channel=channel, data=data)
                if await run_middleware(self._outbound, action) is None and channel in socket.channels:
                    try:
                        socket.transmit("#publish", {"channel": channel, "data": action.data})
                    except RecursionError:  # middleware made it deeper than the codec writes
                        log.info(
                            "dropped a publication on %r for socket %s: nested too deeply", channel, socket.id
                        )
                        continue
                    self.deliveries += 1
        finally:
            socket.outbound_queue = None
