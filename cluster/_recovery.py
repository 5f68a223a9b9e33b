"""Subscribing to a channel with history: the position to start from, and recovery of what was missed.

A client may subscribe with the position (offset and epoch) of the last publication it got. The
worker then sends every publication after it, in order and once, before any live one, if the
history still holds them all; otherwise it says why not. The answer goes in the ``#subscribe``
response (see ``docs/recovery-protocol.md``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hubbub.broker import BrokerUnavailable, HistoryBroker, HistoryOptions, StreamPosition
from hubbub.protocol import InvalidActionError

from ._hub import Hub, Publication, Subscriber
from ._loop import Spawner
from ._positioned import PositionedFanout
from ._streams import ChannelStreams

__all__ = ["HistoryChannels", "Subscribed", "read_recover"]

EPOCH_CHANGED = "epoch changed"
TOO_MANY_MISSED = "too many missed"
UNAVAILABLE = "history unavailable"


def read_recover(subscription_data: Any) -> StreamPosition | None:
    """The position in a ``#subscribe``'s ``data.recover``; None when there is none (or it is empty).

    Raises :class:`InvalidActionError` for a malformed one.
    """
    if not isinstance(subscription_data, dict) or "recover" not in subscription_data:
        return None
    recover = subscription_data["recover"]
    if not isinstance(recover, dict):
        raise InvalidActionError("Subscribe recover must be an object with offset and epoch")
    offset, epoch = recover.get("offset"), recover.get("epoch")
    if type(offset) is not int or offset < 0:
        raise InvalidActionError(f"Subscribe recover offset must be an integer >= 0, got {offset!r}")
    if not isinstance(epoch, str):
        raise InvalidActionError(f"Subscribe recover epoch must be a string, got {epoch!r}")
    if not epoch:
        return None
    return StreamPosition(offset, epoch)


@dataclass(frozen=True, slots=True)
class Subscribed:
    """A subscription to a history channel: the response data, and what to send right after it."""

    answer: dict[str, Any]
    finish: Callable[[], None]


class HistoryChannels:
    """This worker's channels with history: their streams, fan-out, and subscribing with a position."""

    def __init__(self, hub: Hub, broker: HistoryBroker, nursery: Spawner) -> None:
        self._hub = hub
        self.fanout = PositionedFanout(hub)
        self.streams = ChannelStreams(broker, self.fanout, nursery)
        hub.on_channel_released = self._released

    def _released(self, channel: str) -> None:
        self.streams.forget(channel)
        self.fanout.forget(channel)

    async def subscribe(
        self, subscriber: Subscriber, channel: str, options: HistoryOptions, recover: StreamPosition | None
    ) -> Subscribed:
        """Add ``subscriber`` to ``channel`` from ``recover`` on (or from now); raises BrokerUnavailable.

        The caller sends :attr:`Subscribed.answer` and calls :attr:`Subscribed.finish` right after it,
        with no checkpoint between (that sends the recovered publications and lets live ones through).
        """
        fanout, hub = self.fanout, self._hub
        fanout.hold(subscriber, channel)
        try:
            await hub.subscribe(subscriber, channel)
            try:
                last, epoch = await self.streams.synced(channel, options)
            except BrokerUnavailable:
                hub.unsubscribe(subscriber, channel)
                raise
        except BaseException:
            fanout.release(subscriber, channel, (), 0, "")
            raise
        answer, replay, floor, epoch = await self._recover(channel, options, recover, last, epoch)
        stats = self.streams.stats.recoveries
        if recover is not None:
            key = answer.get("reason", "recovered")
            stats[key] = stats.get(key, 0) + 1

        def finish() -> None:
            now = self.streams.position(channel)
            delivered = now[0] if now is not None and now[1] == epoch else 0
            fanout.release(subscriber, channel, replay, floor, epoch, delivered)

        return Subscribed(answer, finish)

    async def _recover(
        self, channel: str, options: HistoryOptions, recover: StreamPosition | None, last: int, epoch: str
    ) -> tuple[dict[str, Any], list[Publication], int, str]:
        if recover is None:
            return {"offset": last, "epoch": epoch}, [], last, epoch
        if recover.epoch != epoch:
            return _not_recovered(EPOCH_CHANGED, last, epoch), [], last, epoch
        if recover.offset >= last:  # nothing missed (that this worker has delivered yet)
            return {"recovered": True, "offset": recover.offset, "epoch": epoch}, [], recover.offset, epoch
        try:
            page = await self.streams.read_since(channel, options, recover.offset)
        except BrokerUnavailable:
            return _not_recovered(UNAVAILABLE, last, epoch), [], last, epoch
        top = page.position
        if top.epoch != recover.epoch:
            return _not_recovered(EPOCH_CHANGED, top.offset, top.epoch), [], last, epoch
        entries = page.entries
        if (
            entries[0].offset if entries else top.offset + 1
        ) != recover.offset + 1 and top.offset > recover.offset:
            return _not_recovered(TOO_MANY_MISSED, top.offset, top.epoch), [], last, epoch
        make = self.fanout.publication
        replay = [make(channel, entry.data, entry.offset, top.epoch) for entry in entries]
        return {"recovered": True, "offset": top.offset, "epoch": top.epoch}, replay, top.offset, top.epoch


def _not_recovered(reason: str, offset: int, epoch: str) -> dict[str, Any]:
    return {"recovered": False, "reason": reason, "offset": offset, "epoch": epoch}
